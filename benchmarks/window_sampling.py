"""A song's genre from a sample of its windows against scoring every window, on long real recordings.

    .venv/bin/python benchmarks/window_sampling.py [--model default] [--windows 1 3 5 10] [--songs 20]

Inputs: the 30 s gtzan-mini originals (10 windows of 3 s each) and `--songs` 5-minute medleys per run,
each 10 gtzan-mini clips of one genre end to end (100 windows), written to a temporary folder. For each
`--windows` N, `genrekit.scoring.score_audio(max_windows=N)` scores N windows of the grid spread evenly
over the file (only they are decoded) and the song's genre is compared with the one every window gives:
agreement, accuracy against the GTZAN label (gtzan-mini holds train, valid and test clips of the model's
split, so accuracy here is not a held-out figure; agreement is the point), mean absolute difference of the
song probabilities, and seconds per file (median over the files, model loaded once, one process).

Writes benchmarks/results/window_sampling.{json,md}.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from common import SHARED, new_parser
from genrekit.atomic import write_text
from genrekit.datasets import load_dataset
from genrekit.evaluation import write_json
from genrekit.predict import load
from genrekit.scoring import score_audio, song_probabilities


def medleys(tracks, folder, n, seed=0):
    """`n` 5-minute WAVs, each 10 clips of one genre end to end, as (path, label)."""
    rng = np.random.default_rng(seed)
    by_label = {}
    for track in tracks:
        by_label.setdefault(track.label, []).append(track)
    labels = sorted(by_label)
    out = []
    for i in range(n):
        label = labels[i % len(labels)]
        picked = rng.choice(len(by_label[label]), size=10, replace=len(by_label[label]) < 10)
        parts = [sf.read(by_label[label][j].path, dtype="float32", always_2d=True) for j in picked]
        sr = parts[0][1]
        y = np.concatenate([data.mean(axis=1) for data, rate in parts if rate == sr])
        path = folder / f"medley-{i:02d}-{label}.wav"
        sf.write(path, y, sr)
        out.append((path, label))
    return out


def song_result(classifier, path, max_windows):
    """(song probabilities, seconds) of one file."""
    began = time.perf_counter()
    scores = score_audio(classifier.scorer, path, max_windows=max_windows)
    return song_probabilities(classifier.scorer, scores)[0], time.perf_counter() - began


def compare(classifier, files, windows):
    """Per N in `windows`: agreement with every window, accuracy, mean |dp|, median seconds per file."""
    full = [song_result(classifier, path, None) for path, _ in files]
    labels = [classifier.labels.index(label) for _, label in files]
    rows = {"all": {"agreement": 1.0, "accuracy": float(np.mean([p.argmax() == y for (p, _), y in zip(full, labels)])),
                    "mean_abs_diff": 0.0, "seconds": statistics.median(t for _, t in full)}}
    for n in windows:
        found = [song_result(classifier, path, n) for path, _ in files]
        rows[str(n)] = {"agreement": float(np.mean([p.argmax() == f.argmax() for (p, _), (f, _) in zip(found, full)])),
                        "accuracy": float(np.mean([p.argmax() == y for (p, _), y in zip(found, labels)])),
                        "mean_abs_diff": float(np.mean([np.abs(p - f).mean() for (p, _), (f, _) in zip(found, full)])),
                        "seconds": statistics.median(t for _, t in found)}
    return rows


def markdown(report):
    lines = [f"Model `{report['model']}`; load average {report['load_average']}.", ""]
    for name, rows in report["inputs"].items():
        lines += [f"## {name} ({report['files'][name]} files)", "",
                  "| windows | agreement with all | accuracy | mean abs diff | s per file |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {n} | {r['agreement']:.3f} | {r['accuracy']:.3f} | {r['mean_abs_diff']:.4f} | {r['seconds']:.3f} |"
                  for n, r in rows.items()]
        lines.append("")
    return "\n".join(lines)


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--songs", type=int, default=20, help="5-minute medleys.")
    args = parser.parse_args()
    classifier = load(args.model)
    tracks = [t for t in load_dataset(f"gtzan:{args.gtzan}") if t.label in classifier.labels]
    report = {"model": args.model, "inputs": {}, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {"gtzan-mini 30 s originals": [(Path(t.path), t.label) for t in tracks],
                  "5-minute medleys": medleys(tracks, Path(tmp), args.songs)}
        for name, files in inputs.items():
            report["inputs"][name] = compare(classifier, files, args.windows)
            report["files"][name] = len(files)
    report["load_average"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = markdown(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(report, args.out / "window_sampling.json")
    write_text(args.out / "window_sampling.md", "# Window sampling\n\n" + text +
               "\nCommand: `.venv/bin/python benchmarks/window_sampling.py`\n")


if __name__ == "__main__":
    main()
