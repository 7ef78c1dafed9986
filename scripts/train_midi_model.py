"""Train a model on the rendered MIDI corpus: a weighted ensemble of the paper's eight models (and optionally
the musicnn backbone). The bundled `fast` model was made with it until it became a student distilled from the
default model on real recordings (benchmarks/distillation.py --write-fast); the default model learns from real
recordings too (benchmarks/real_music.py --write-default).

    .venv/bin/python scripts/train_midi_model.py [--members cnn-logmel rnn-logmel ...] [--out DIR] [--name midi]

1. Renders ../shared/data/midi-genres (one 30 s excerpt per song, cached) and trains the members on its
   train split, early-stopped on its valid split (the benchmark settings; finished models are reused).
2. Fits the ensemble weights on the valid split and drops the members it gives no weight (smaller, faster).
3. Measures held-out accuracy on the MIDI test split and, as a check across domains, on the real
   recordings of ../shared/data/gtzan-mini whose genres the model knows (classical, country, hiphop, jazz,
   pop, rock; never used for training).
4. Writes DIR/NAME.pt and its card NAME.json (default ~/.cache/genrekit/models/midi.pt; `genrekit predict
   --model DIR/NAME.pt` runs it, exported to ONNX for onnxruntime on first use).

Label set and training mix: only the MIDI genres, trained only on renderings. Mixing in the real GTZAN
clips would teach the model "recorded or rendered" instead of genre, since blues, disco, metal and reggae
exist only as recordings and rnb only as renderings; with MIDI alone every genre has the same domain.
"""

import argparse
import json
import time
from pathlib import Path

from genrekit.atomic import write_text
from genrekit.cache import DEFAULT_CACHE_DIR, FeatureCache
from genrekit.datasets import labels_of, load_dataset, select
from genrekit.checkpoints import load_members
from genrekit.ensemble import Ensemble
from genrekit.evaluation import evaluate_checkpoint
from genrekit.midi.render import render_midi_corpus
from genrekit.models import PAPER_MODELS, list_models
from genrekit.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


BACKBONE = "backbone-musicnn"


def member_config(name, augment, epochs=10, patience=3, lr_schedule="constant"):
    """The benchmarks' settings by default (so their checkpoints are reused); the backbone's head trains on
    embeddings computed once, with more epochs (see benchmarks/backbone.py)."""
    if name == BACKBONE:
        return TrainConfig(model=name, epochs=100, patience=10, windows_per_clip=2)
    return TrainConfig(model=name, epochs=epochs, patience=patience, windows_per_clip=2, augment=augment,
                       lr_schedule=lr_schedule)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", nargs="+", default=list(PAPER_MODELS), choices=list_models(),
                        help="Members to train and weigh (default: the paper's eight; backbone-musicnn may join).")
    parser.add_argument("--midi-source", type=Path, default=SHARED / "midi-genres")
    parser.add_argument("--midi-audio", type=Path, default=DEFAULT_CACHE_DIR / "midi-genres-30s")
    parser.add_argument("--gtzan", type=Path, default=SHARED / "gtzan-mini")
    parser.add_argument("--augment", action="store_true", help="Train the members with augmentation (random "
                        "speed, pitch and noise); the backbone's head always trains on clean embeddings.")
    parser.add_argument("--epochs", type=int, default=10, help="Most epochs of the from-scratch members.")
    parser.add_argument("--patience", type=int, default=3,
                        help="Epochs without a better validation score before a from-scratch member stops.")
    parser.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                        help="Learning-rate schedule of the from-scratch members.")
    parser.add_argument("--runs", type=Path, default=None,
                        help="Checkpoints (default: the benchmarks' midi or midi-augment folder, so theirs are reused).")
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE_DIR / "models")
    parser.add_argument("--name", default="midi", help="Model to write (NAME.pt and NAME.json in --out).")
    args = parser.parse_args()
    began = time.perf_counter()
    tracks = list(render_midi_corpus(args.midi_source, args.midi_audio))
    labels = labels_of(tracks)
    cache = FeatureCache()
    runs = args.runs or DEFAULT_CACHE_DIR / "runs" / "benchmark-models" / ("midi-augment" if args.augment else "midi")
    paths = [train(member_config(name, args.augment, args.epochs, args.patience, args.lr_schedule), select(tracks, "train"), select(tracks, "valid"), runs,
                   labels=labels, cache=cache) for name in args.members]
    ensemble = Ensemble(load_members(paths), "weighted").fit(select(tracks, "valid")).prune()
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = ensemble.save(args.out / f"{args.name}.pt")

    midi_test = evaluate_checkpoint(model_path, select(tracks, "test"))
    real = [t for t in load_dataset(f"gtzan:{args.gtzan}") if t.label in labels]
    real_test = evaluate_checkpoint(model_path, real)
    card = {"labels": labels, "kind": "weighted ensemble", "augmented_training": args.augment,
            "members": {m.name: round(float(w), 4) for m, w in zip(ensemble.members, ensemble.combiner.weights_)},
            "training_data": f"{args.midi_source.name}: {len(select(tracks, 'train'))} rendered MIDI songs "
                             f"(30 s from the middle of each), weights fitted on {len(select(tracks, 'valid'))} "
                             "validation songs; artist-disjoint splits",
            "held_out": {"midi_test": {k: midi_test[k] for k in ("n", "accuracy", "macro_f1", "per_label_accuracy")},
                         "real_recordings_gtzan_mini": {k: real_test[k] for k in
                                                        ("n", "accuracy", "macro_f1", "per_label_accuracy")}},
            "chance": 1 / len(labels), "minutes": round((time.perf_counter() - began) / 60, 1)}
    write_text(args.out / f"{args.name}.json", json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
