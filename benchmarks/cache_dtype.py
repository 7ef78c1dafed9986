"""What storing the cached spectrograms compactly costs: float32 against the cache's dtypes (`STORED_DTYPES`:
the waveform float32, the STFT and log-mel dB images and chroma float16), on real clips of gtzan-mini.

For every clip (all of gtzan-mini, or `--limit` of them):

  features   max |float32 - stored| per representation, over all bins of all clips
  model      the bundled `fast` model (torch; cnn-logmel, rnn-spectrogram, cnn-waveform, weighted) scores the
             clip's 3 s windows cut from the float32 features and from the cached ones: max |difference| of
             the clip's genre probabilities, clips whose top genre changes, and accuracy on the clips of its
             genres both ways. (The bundled `default` model reads only the waveform, stored float32, so
             caching cannot change it; prediction computes features afresh and never reads the cache.)
  size       bytes per clip of a cache entry, all float32 against as stored (and scaled to 30 s of audio)
  load time  per clip, median of `--repeats` passes over every entry (files in the page cache, as on a second
             epoch): the whole entry read as float32 arrays, and what training does per clip (memory-map, cut
             4 windows of 3 s, float32); and, for scale, the median time to compute an entry (a miss)

Run:  .venv/bin/python benchmarks/cache_dtype.py [--gtzan DIR] [--limit N] [--repeats 5]
Writes a table to stdout and benchmarks/results/cache_dtype.{json,md} (atomically). Entries go to a
temporary folder, removed at the end.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from genrekit.atomic import write_text
from genrekit.audio import load_audio
from genrekit.cache import STORED_DTYPES, FeatureCache
from genrekit.constants import REPRESENTATIONS
from genrekit.datasets import load_dataset
from genrekit.features import compute_features
from genrekit.predict import load
from genrekit.scoring import clip_log_probs, cut_windows, window_frames, window_length, window_starts

REPO = Path(__file__).resolve().parents[1]
TRAINING_WINDOWS = 4


def windows_of(features, scorer, starts=None):
    """The scorer's windows of a clip's features (every window, or those at `starts`, in samples)."""
    params, seconds = scorer.params, scorer.window_seconds
    if starts is None:
        starts = window_starts(len(features["waveform"]), window_length("waveform", seconds, params))
    return {rep: cut_windows(features[rep], window_frames(starts, rep, params), window_length(rep, seconds, params))
            for rep in scorer.representations}


def probabilities(scorer, features):
    """The clip's genre probabilities, as `genrekit.scoring.song_probabilities` combines them."""
    return scorer.combine(clip_log_probs(scorer.member_log_probs(windows_of(features, scorer)))[:, None])[0]


def entry_bytes(folder):
    return sum(path.stat().st_size for path in Path(folder).glob("*.npy"))


def load_entry(folder):
    return {rep: np.load(folder / f"{rep}.npy").astype(np.float32) for rep in REPRESENTATIONS}


def training_read(folder, scorer, rng):
    """What a training step reads of a clip: memory-mapped arrays, a few random windows, float32."""
    features = {rep: np.load(folder / f"{rep}.npy", mmap_mode="r") for rep in scorer.representations}
    samples = window_length("waveform", scorer.window_seconds, scorer.params)
    last = max(len(features["waveform"]) - samples, 0)
    return windows_of(features, scorer, sorted(rng.integers(0, last + 1, TRAINING_WINDOWS)))


def median_seconds(function, folders, repeats):
    passes = []
    for _ in range(repeats + 1):  # the first pass warms the page cache
        began = time.perf_counter()
        for folder in folders:
            function(folder)
        passes.append((time.perf_counter() - began) / len(folders))
    return float(np.median(passes[1:]))


def run(args):
    torch.set_num_threads(1)
    scorer = load("fast", backend="torch").scorer
    tracks = load_dataset(f"gtzan:{args.gtzan}")[: args.limit]
    diffs = {rep: 0.0 for rep in REPRESENTATIONS}
    prob_diff, flips, right, known = 0.0, 0, {"float32": 0, "stored": 0}, 0
    with tempfile.TemporaryDirectory() as temp:
        cache = FeatureCache(Path(temp) / "stored")
        full, stored = [], []
        compute = []
        for k, track in enumerate(tracks):
            began = time.perf_counter()
            reference = compute_features(load_audio(track.path, sr=scorer.params.sr))
            compute.append(time.perf_counter() - began)
            cached = cache.load(track)  # computed, stored as STORED_DTYPES, read back as float32
            for rep in REPRESENTATIONS:
                diffs[rep] = max(diffs[rep], float(np.abs(reference[rep] - cached[rep]).max()))
            p32, p16 = probabilities(scorer, reference), probabilities(scorer, cached)
            prob_diff = max(prob_diff, float(np.abs(p32 - p16).max()))
            flips += int(p32.argmax() != p16.argmax())
            if track.label in scorer.labels:
                known += 1
                right["float32"] += int(scorer.labels[p32.argmax()] == track.label)
                right["stored"] += int(scorer.labels[p16.argmax()] == track.label)
            folder = Path(temp) / "float32" / str(k)
            folder.mkdir(parents=True)
            for rep, value in reference.items():
                np.save(folder / f"{rep}.npy", value.astype(np.float32))
            full.append(folder)
            stored.append(cache.entry_path(track))
        rng = np.random.default_rng(0)
        timing = {name: {"load_ms": 1000 * median_seconds(load_entry, folders, args.repeats),
                         "training_read_ms": 1000 * median_seconds(lambda f: training_read(f, scorer, rng), folders,
                                                                   args.repeats),
                         "mb_per_clip": float(np.mean([entry_bytes(f) for f in folders])) / 1e6}
                  for name, folders in (("float32", full), ("stored", stored))}
        seconds = float(np.mean([len(load_entry(f)["waveform"]) for f in stored])) / scorer.params.sr
        for name in timing:
            timing[name]["mb_per_30s"] = timing[name]["mb_per_clip"] * 30 / seconds
    return {"clips": len(tracks), "mean_clip_seconds": seconds, "stored_dtypes": {k: np.dtype(v).name for k, v in
                                                                                  STORED_DTYPES.items()},
            "max_abs_feature_diff": diffs, "fast_model": {"max_abs_probability_diff": prob_diff,
                                                          "top_genre_changed": flips, "clips_of_its_genres": known,
                                                          "accuracy": {k: v / max(known, 1) for k, v in right.items()}},
            "timing": timing, "compute_ms": 1000 * float(np.median(compute))}


def markdown(meta, result):
    t32, t16 = result["timing"]["float32"], result["timing"]["stored"]
    fast = result["fast_model"]
    lines = [
        "# Cached features: float32 against the stored dtypes", "",
        f"{meta['date']}; {result['clips']} gtzan-mini clips (mean {result['mean_clip_seconds']:.1f} s); stored: "
        + ", ".join(f"{k} {v}" for k, v in result["stored_dtypes"].items()) + f"; {meta['cpus']} CPUs, 1 thread.", "",
        "| representation | max abs difference |", "| --- | ---: |",
        *[f"| {rep} | {value:.4g} |" for rep, value in result["max_abs_feature_diff"].items()], "",
        f"Bundled `fast` model on the clips: max abs difference of the genre probabilities "
        f"{fast['max_abs_probability_diff']:.2g}; top genre changed on {fast['top_genre_changed']} of "
        f"{result['clips']} clips; accuracy on the {fast['clips_of_its_genres']} clips of its genres "
        f"{fast['accuracy']['float32']:.3f} (float32) / {fast['accuracy']['stored']:.3f} (stored).", "",
        "| storage | MB per clip | MB per 30 s | load entry ms | training read ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {t['mb_per_clip']:.2f} | {t['mb_per_30s']:.2f} | {t['load_ms']:.2f} | "
          f"{t['training_read_ms']:.2f} |"
          for name, t in (("float32", t32), ("stored (float16 images)", t16))], "",
        "Load entry: every representation read whole as float32; training read: memory-mapped, "
        f"{TRAINING_WINDOWS} windows of 3 s cut, float32 (median per clip of the passes, files in the page cache). "
        f"Computing an entry (decode and the four representations, a cache miss): {result['compute_ms']:.0f} ms "
        "per clip (median).",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gtzan", type=Path, default=REPO.parent / "shared" / "data" / "gtzan-mini")
    parser.add_argument("--limit", type=int, default=None, help="At most this many clips (default: all).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cache_dtype.json")
    args = parser.parse_args()
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}
    result = run(args)
    text = markdown(meta, result)
    print(text)
    write_text(args.out, json.dumps({**meta, **result}, indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), text)


if __name__ == "__main__":
    main()
