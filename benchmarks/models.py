"""Train the paper's eight models and the classical baseline, evaluate them on held-out clips, one table.

Datasets:
  midi   the rendered MIDI corpus (../shared/data/midi-genres, one 30 s excerpt per song from its middle,
         rendered once and cached), artist-disjoint train/valid/test split from songs.csv;
  gtzan  ../shared/data/gtzan-mini, re-split by artist groups (valid 20 %, test 30 %): few artists, hard.

For each: accuracy and macro-F1 on the test split, training minutes, inference ms per 30 s clip (features
from the decoded signal plus the model over all windows, 2 threads), parameters. Prints the tables and writes
benchmarks/results/models.{json,md} and a per-genre figure per dataset. Checkpoints go to --runs (outside
the repository); re-running resumes or reuses finished models.

    python benchmarks/models.py                      # everything (about 40 min on 2 cores)
    python benchmarks/models.py --datasets midi --models cnn-logmel rnn-chroma --epochs 3
"""

import os
import time

import torch
from common import inference_ms, load_benchmark_data, new_parser, train_model

from genrekit.atomic import write_text
from genrekit.baseline import make_baseline, statistics_of
from genrekit.cache import FeatureCache
from genrekit.checkpoints import load_checkpoint
from genrekit.datasets import labels_of, select
from genrekit.evaluation import classification_metrics, evaluate_checkpoint, write_json
from genrekit.models import PAPER_MODELS
from genrekit.plots import plot_per_label_accuracy


def run_baseline(tracks, labels, cache, seed):
    began = time.perf_counter()
    x_train, used = statistics_of(select(tracks, "train"), cache, progress=False)
    svm = make_baseline(seed).fit(x_train, [labels.index(t.label) for t in used])
    minutes = (time.perf_counter() - began) / 60
    x_test, used = statistics_of(select(tracks, "test"), cache, progress=False)
    metrics = classification_metrics([labels.index(t.label) for t in used], svm.predict(x_test), labels)
    return metrics, minutes, x_train.shape[1] * len(svm[-1].support_vectors_)


FIGURE_NAMES = {"midi": "midi", "gtzan": "real_clips"}
"""Per-genre figure names, by data set (our figures, named so they are not taken for GTZAN's own files)."""


def benchmark_dataset(name, args):
    tracks = load_benchmark_data(name, args, args.seed)
    labels = labels_of(tracks)
    cache = FeatureCache(args.cache)
    rows, per_genre = [], {}
    for model in args.models:
        checkpoint = train_model(model, tracks, labels, args, args.runs / name, cache, seed=args.seed)
        info = load_checkpoint(checkpoint)[1]
        metrics = evaluate_checkpoint(checkpoint, select(tracks, "test"), progress=False)
        rows.append({"model": model, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                     "train_minutes": info["metrics"]["train_minutes"], "epochs": info["metrics"]["epochs_run"],
                     "inference_ms_per_30s": inference_ms(checkpoint),
                     "parameters": info["metrics"]["parameters"], "per_genre": metrics["per_label_accuracy"]})
        per_genre[model] = metrics
        print(f"{name} {model}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}", flush=True)
    metrics, minutes, size = run_baseline(tracks, labels, cache, args.seed)
    rows.append({"model": "baseline-svm", "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                 "train_minutes": minutes, "epochs": None, "inference_ms_per_30s": None, "parameters": size,
                 "per_genre": metrics["per_label_accuracy"]})
    per_genre["baseline-svm"] = metrics
    plot_per_label_accuracy(per_genre, args.out / f"models_{FIGURE_NAMES[name]}_per_genre.png",
                            title=f"Per-genre test accuracy, {name}")
    counts = {split: len(select(tracks, split)) for split in ("train", "valid", "test")}
    return {"labels": labels, "clips": counts, "chance": 1 / len(labels), "rows": rows}


def markdown(results):
    lines = []
    for name, result in results.items():
        lines += [f"## {name}: {result['clips']} clips, {len(result['labels'])} genres, chance {result['chance']:.3f}",
                  "", "| model | accuracy | macro-F1 | train min | epochs | inference ms / 30 s | parameters |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in sorted(result["rows"], key=lambda r: -r["accuracy"]):
            ms = "" if r["inference_ms_per_30s"] is None else f"{r['inference_ms_per_30s']:.0f}"
            lines.append(f"| {r['model']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['train_minutes']:.1f} | "
                         f"{r['epochs'] or ''} | {ms} | {r['parameters']:,} |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=["midi", "gtzan"], choices=["midi", "gtzan"])
    parser.add_argument("--models", nargs="+", default=list(PAPER_MODELS), choices=PAPER_MODELS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    began = time.perf_counter()
    results = {name: benchmark_dataset(name, args) for name in args.datasets}
    results["settings"] = {k: str(v) for k, v in vars(args).items()} | {"minutes": (time.perf_counter() - began) / 60}
    text = markdown({k: v for k, v in results.items() if k != "settings"})
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "models.json")
    write_text(args.out / "models.md", f"# Models benchmark\n\n{text}\nTotal: {results['settings']['minutes']:.1f} min\n")


if __name__ == "__main__":
    main()
