"""What the model and ensemble benchmarks share: data, training settings, where runs live, timing."""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from genrekit.atomic import write_text
from genrekit.cache import DEFAULT_CACHE_DIR
from genrekit.datasets import load_dataset, select, split_by_group
from genrekit.evaluation import write_json
from genrekit.midi.render import render_midi_corpus
from genrekit.predict import load
from genrekit.scoring import score_audio
from genrekit.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
WEIGHTED_MEMBERS = ("cnn-logmel", "rnn-spectrogram", "cnn-waveform")
"""The members the weighted ensemble over the eight models gives weight (ensemble benchmark, seed 0)."""


def cpu_name():
    """The CPU's model name and which of the instruction sets int8 and bf16 kernels depend on it has (the
    same benchmark differs between machine kinds: quote it with the figures)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", "").split()
    sets = [name for flag, name in (("avx512_vnni", "AVX-512 VNNI"), ("amx_int8", "AMX int8"), ("amx_bf16", "AMX bf16"))
            if flag in flags]
    return f"{fields.get('model name', platform.machine())}, " + (f"with {', '.join(sets)}" if sets else "no AVX-512 VNNI, no AMX")


def add_common_arguments(parser):
    """Data locations and training settings, the same for every benchmark."""
    parser.add_argument("--midi-source", type=Path, default=SHARED / "midi-genres")
    parser.add_argument("--midi-audio", type=Path, default=DEFAULT_CACHE_DIR / "midi-genres-30s",
                        help="Where the rendered clips are (rendered there when missing).")
    parser.add_argument("--gtzan", type=Path, default=SHARED / "gtzan-mini")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR, help="Feature cache.")
    parser.add_argument("--runs", type=Path, default=DEFAULT_CACHE_DIR / "runs" / "benchmark-models",
                        help="Checkpoints (outside the repository); finished models are reused.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--windows-per-clip", type=int, default=2)
    parser.add_argument("--window-seconds", type=float, default=3.0)
    return parser


def new_parser(doc):
    return add_common_arguments(argparse.ArgumentParser(description=doc,
                                                        formatter_class=argparse.RawDescriptionHelpFormatter))


def load_benchmark_data(name, args, seed=0):
    """Tracks with train/valid/test splits: the rendered MIDI corpus (artist-disjoint split from songs.csv)
    or gtzan-mini re-split by artist groups (valid 20 %, test 30 %)."""
    if name == "midi":
        return list(render_midi_corpus(args.midi_source, args.midi_audio))
    tracks = load_dataset(f"gtzan:{args.gtzan}")
    return split_by_group([t.replace(split=None) for t in tracks], valid=0.2, test=0.3, seed=seed)


def train_model(model, tracks, labels, args, run_dir, cache, *, seed=0, model_kwargs=None, augment=False,
                progress=True, **settings):
    """Train (or reuse) one model with the benchmark settings (`settings` override TrainConfig fields);
    returns its checkpoint path."""
    config = TrainConfig(model=model, **{"epochs": args.epochs, "patience": args.patience, "seed": seed,
                                         "windows_per_clip": args.windows_per_clip,
                                         "window_seconds": args.window_seconds, "augment": augment,
                                         "model_kwargs": model_kwargs or {}, **settings})
    return train(config, select(tracks, "train"), select(tracks, "valid"), run_dir, labels=labels, cache=cache,
                 workers=None if progress else 1, progress=progress)


def inference_ms(model, repeats=5, backend="torch"):
    """Median milliseconds to classify a 30 s clip from its decoded samples (features + all windows) with a model
    file or bundled model (`genrekit.predict.load`) run by `backend` (torch, or onnx: a bundled model's export)."""
    scorer = load(model, backend=backend).scorer
    y = np.random.default_rng(0).standard_normal(30 * scorer.params.sr).astype(np.float32) * 0.1
    times = []
    for _ in range(repeats + 1):
        began = time.perf_counter()
        score_audio(scorer, y, sr=scorer.params.sr).clip_log_probs()
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times[1:]))


def write_report(report, text, out, name, title):
    """Print `text`; write `report` as out/NAME.json and `text` as out/NAME.md under `title`, with the command
    that made it (benchmarks/NAME.py and this run's arguments) and `report["minutes"]`."""
    print(text)
    write_json(report, out / f"{name}.json")
    write_text(out / f"{name}.md", f"# {title}\n\n{text}\nCommand: `python benchmarks/{name}.py "
               f"{' '.join(sys.argv[1:])}`; {report['minutes']:.0f} min on this machine.\n")
