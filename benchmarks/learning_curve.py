"""What more real training audio is worth: the default model's recipe trained on growing parts of the real train
split, scored on the real valid split, and the trend extrapolated.

    .venv/bin/python benchmarks/learning_curve.py [--members musicnn-layers-mixup] [--fractions 0.25 0.5 0.75 1]
                                                  [--draws 3]

Each part keeps `fraction` of every genre's train tracks (whole track groups, at least one per genre), drawn
`--draws` times with different seeds; each member (a `real_music.py` recipe) is trained on it with training
seed `--seed` + draw and early-stopped on valid, as `real_music.py` trains it (fraction 1: the whole train
split, one run per training seed, so every fraction carries the spread across seeds). The x axis is minutes
of train audio, since the clips range from 2 s excerpts to 30 s clips. A least-squares line of accuracy
against log2(minutes) over the draws gives the gain per doubling of the train audio (with its standard
error) and where it would reach `--goal` if the trend held (an extrapolation, not a promise: learning curves
flatten). Writes benchmarks/results/learning_curve.{json,md} and learning_curve.png.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import SHARED, new_parser, write_report
from real_music_gtzan import GENRES, MEMBERS, member_probs, real_tracks, train_members
from genrekit.audio import audio_info
from genrekit.cache import DEFAULT_CACHE_DIR, FeatureCache
from genrekit.datasets import select
from genrekit.evaluation import classification_metrics
from genrekit.plots import plt, save_figure


def part_of(train, fraction, seed):
    """`fraction` of each genre's track groups of `train` (at least one), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    kept = set()
    for genre in sorted({t.label for t in train}):
        groups = sorted({t.group for t in train if t.label == genre})
        kept.update(rng.permutation(groups)[:max(1, round(fraction * len(groups)))])
    return [t for t in train if t.group in kept]


def minutes_of(tracks):
    infos = [audio_info(t.path) for t in tracks]
    return sum(info.frames / info.samplerate for info in infos) / 60


def trend(points, goal):
    """A least-squares line of accuracy against log2(train minutes) over `points`: its slope (accuracy gained
    per doubling) with standard error, intercept, and the minutes at which it reaches `goal` (None if never)."""
    x = np.log2([p["minutes"] for p in points])
    (slope, intercept), cov = np.polyfit(x, [p["accuracy"] for p in points], 1, cov=True)
    return {"slope": float(slope), "slope_se": float(np.sqrt(cov[0, 0])), "intercept": float(intercept),
            "minutes_for_goal": float(2 ** ((goal - intercept) / slope)) if slope > 0 else None}


def plot(report, path):
    """Valid accuracy against train minutes (log scale) per member, its trend line and the goal."""
    figure, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for name, points in report["points"].items():
        line = ax.scatter([p["minutes"] for p in points], [p["accuracy"] for p in points], label=name)
        fit = report["trend"][name]
        x = np.geomspace(min(p["minutes"] for p in points), fit["minutes_for_goal"] or report["train_minutes"], 50)
        ax.plot(x, fit["intercept"] + fit["slope"] * np.log2(x), "--", color=line.get_facecolor()[0])
    ax.axhline(report["goal"], color="grey", linewidth=1, label=f"goal {report['goal']:.0%}")
    ax.set(xscale="log", xlabel="Minutes of real train audio", ylabel="Accuracy on the real GTZAN valid split",
           title="Learning curve (dashed: least-squares trend, extrapolated)")
    ax.legend(fontsize="small")
    return save_figure(figure, path)


def markdown(report):
    lines = ["| member | fraction | draw | train clips | train minutes | valid accuracy | macro-F1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, points in report["points"].items():
        lines += [f"| {name} | {p['fraction']:g} | {p['draw']} | {p['clips']} | {p['minutes']:.1f} | "
                  f"{p['accuracy']:.3f} | {p['macro_f1']:.3f} |" for p in points]
    lines.append("")
    for name, fit in report["trend"].items():
        reach = (f"{fit['minutes_for_goal']:.0f} minutes of train audio ({fit['minutes_for_goal'] / 60:.1f} h, "
                 f"{fit['minutes_for_goal'] / report['train_minutes']:.1f}x today's)"
                 if fit["minutes_for_goal"] else "never")
        lines.append(f"- {name}: {fit['slope'] * 100:+.1f} (standard error {fit['slope_se'] * 100:.1f}) points per "
                     f"doubling of the train audio; "
                     f"{report['goal']:.0%} on valid at {reach} if the line held.")
    return "\n".join(lines) + "\n"


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--gtzan-extra", type=Path, default=SHARED / "gtzan-extra")
    parser.add_argument("--members", nargs="+", default=["musicnn-layers-mixup"], choices=list(MEMBERS))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--draws", type=int, default=3, help="Parts drawn (and training seeds) per fraction.")
    parser.add_argument("--goal", type=float, default=0.85)
    parser.add_argument("--views", type=int, default=8, help="Augmented windows per clip for the musicnn members.")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(runs=DEFAULT_CACHE_DIR / "runs" / "learning-curve")
    args = parser.parse_args()
    began = time.perf_counter()
    cache = FeatureCache(args.cache)
    tracks = real_tracks(args)
    train, valid = select(tracks, "train"), select(tracks, "valid")
    report = {"goal": args.goal, "train_minutes": minutes_of(train), "points": {name: [] for name in args.members}}
    for fraction in sorted(args.fractions):
        for draw in range(args.draws):
            part = train if fraction >= 1 else part_of(train, fraction, seed=draw)
            folder = f"seed{draw}" if fraction >= 1 else f"part-{fraction:g}-{draw}"
            print(f"fraction {fraction:g}, draw {draw}: {len(part)} clips", file=sys.stderr)
            seeded = argparse.Namespace(**{**vars(args), "seed": args.seed + draw})
            paths = train_members(args.members, part, valid, seeded, folder, cache)
            probs, y = member_probs(paths, valid)
            minutes = minutes_of(part)
            for i, name in enumerate(args.members):
                metrics = classification_metrics(y, probs[i].argmax(1), GENRES)
                report["points"][name].append({"fraction": fraction, "draw": draw, "clips": len(part),
                                               "minutes": minutes, "accuracy": metrics["accuracy"],
                                               "macro_f1": metrics["macro_f1"]})
    report["trend"] = {name: trend(points, args.goal) for name, points in report["points"].items()}
    report["minutes"] = (time.perf_counter() - began) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    plot(report, args.out / "learning_curve.png")
    write_report(report, markdown(report), args.out, "learning_curve", "Learning curve on real music")


if __name__ == "__main__":
    main()
