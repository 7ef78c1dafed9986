"""Clips per second for the four representations (waveform, STFT dB, log-mel, chroma): genrekit vs librosa.

Every audio file under a folder (recursively) is decoded and turned into all four representations by:

  ours                               genrekit.audio.load_audio + genrekit.features.compute_features
                                     (one torch STFT shared by all, chroma with tuning 0)
  librosa (defaults)                 librosa.load, then stft / melspectrogram / chroma_stft each from y,
                                     as a user would write it (chroma_stft estimates the tuning per clip)
  librosa (shared STFT, tuning=0)    librosa.load, one stft, mel and chroma derived from it, tuning=0.0

Same parameters everywhere: sr 22050, n_fft 2048, hop 512, 128 mels, top_db 80. Each worker process runs
one thread (OMP/MKL/NUMBA threads = 1, torch.set_num_threads(1)); a process pool spreads files across
`--workers`. Each worker first runs every method on one throwaway clip, so numba JIT compilation, imports
and filterbank building are not timed. Decode and feature seconds are summed over clips (worker-seconds);
clips/s is files / wall-clock time of the whole pass; passes of the methods are interleaved and the
best (fastest) of `--repeats` passes per method is kept.

Run:  .venv/bin/python benchmarks/features.py [--data DIR] [--workers N] [--repeats N] [--out FILE]
Writes a table to stdout and JSON to benchmarks/results/features.json (atomically).
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/torch/numba are imported, here and in spawned workers

import argparse
import json
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import librosa
import numpy as np
import torch
from tqdm import tqdm

from genrekit.audio import load_audio
from genrekit.constants import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE
from genrekit.datasets import audio_files
from genrekit.features import compute_features

REPO = Path(__file__).resolve().parent.parent
SR = SAMPLE_RATE
STFT = dict(n_fft=N_FFT, hop_length=HOP_LENGTH)


def ours(path):
    t0 = time.perf_counter()
    y = load_audio(path)
    t1 = time.perf_counter()
    compute_features(y)  # dict with waveform, spectrogram, logmel, chroma
    return t1 - t0, time.perf_counter() - t1, len(y)


def librosa_defaults(path):
    t0 = time.perf_counter()
    y, sr = librosa.load(path, sr=SR)
    t1 = time.perf_counter()
    _ = {"waveform": y,
         "spectrogram": librosa.amplitude_to_db(np.abs(librosa.stft(y, **STFT))),
         "logmel": librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=N_MELS, **STFT)),
         "chroma": librosa.feature.chroma_stft(y=y, sr=sr, **STFT)}
    return t1 - t0, time.perf_counter() - t1, len(y)


def librosa_shared(path):
    t0 = time.perf_counter()
    y, sr = librosa.load(path, sr=SR)
    t1 = time.perf_counter()
    power = np.abs(librosa.stft(y, **STFT)) ** 2
    _ = {"waveform": y,
         "spectrogram": librosa.power_to_db(power),
         "logmel": librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS)),
         "chroma": librosa.feature.chroma_stft(S=power, sr=sr, n_fft=N_FFT, tuning=0.0)}
    return t1 - t0, time.perf_counter() - t1, len(y)


METHODS = {"ours": ours, "librosa (defaults)": librosa_defaults, "librosa (shared STFT, tuning=0)": librosa_shared}


def init_worker(warmup_path, ready):
    """One thread; run every method once on a throwaway clip (JIT, filterbanks); wait until all workers are."""
    torch.set_num_threads(1)
    for method in METHODS.values():
        method(warmup_path)
    ready.wait()


def run(task):
    """Worker entry point: (method name, path) -> (decode s, features s, samples)."""
    method, path = task
    return METHODS[method](path)


def one_pass(pool, method, files, label):
    """Time one pass of `method` over `files` across the pool."""
    start = time.perf_counter()
    rows = list(tqdm(pool.imap_unordered(run, [(method, str(f)) for f in files]), total=len(files),
                     desc=label, leave=False, file=sys.stderr))
    wall = time.perf_counter() - start
    decode, features, samples = (sum(column) for column in zip(*rows))
    return {"method": method, "wall_s": wall, "decode_s": decode, "features_s": features,
            "clips_per_s": len(files) / wall, "samples": samples}


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/gtzan-mini",
                        help="folder of audio files, searched recursively (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per method, best kept (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/features.json",
                        help="JSON results (default: %(default)s)")
    args = parser.parse_args(argv)

    files = audio_files(args.data)
    if not files:
        parser.error(f"no audio files under {args.data}")
    print(f"{len(files)} files under {args.data}; {args.workers} worker(s), 1 thread each; "
          f"each worker warmed up on one throwaway clip (JIT, filterbanks) before timing; best of {args.repeats}")

    context = mp.get_context("spawn")
    ready = context.Barrier(args.workers + 1)
    with context.Pool(args.workers, initializer=init_worker, initargs=(str(files[0]), ready)) as pool:
        ready.wait()  # every worker is warm
        best = {}
        for attempt in range(args.repeats):  # methods interleaved, so background load hits all alike
            for method in METHODS:
                row = one_pass(pool, method, files, f"{method} [{attempt + 1}/{args.repeats}]")
                if method not in best or row["wall_s"] < best[method]["wall_s"]:
                    best[method] = row
    results = list(best.values())

    audio_seconds = results[0]["samples"] / SR
    ours_rate = results[0]["clips_per_s"]
    for row in results:
        row["speedup_of_ours"] = ours_rate / row["clips_per_s"]
        row["realtime_x"] = audio_seconds / row["wall_s"]

    header = f"{'method':<33}{'decode s':>10}{'features s':>12}{'clips/s':>10}{'x realtime':>12}{'ours speedup':>14}"
    print(header + "\n" + "-" * len(header))
    for row in results:
        print(f"{row['method']:<33}{row['decode_s']:>10.2f}{row['features_s']:>12.2f}{row['clips_per_s']:>10.1f}"
              f"{row['realtime_x']:>12.0f}{row['speedup_of_ours']:>13.2f}x")
    print(f"{len(files)} files, {audio_seconds:.0f} s of audio; decode/features s are summed over clips "
          f"(worker-seconds), clips/s is files / wall time")
    for row in results[1:]:
        verdict = "met" if row["speedup_of_ours"] >= 3 else "NOT met"
        print(f"goal ours >= 3x {row['method']}: {verdict} ({row['speedup_of_ours']:.2f}x)")

    write_json(args.out, {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "librosa": librosa.__version__, "numpy": np.__version__},
        "setup": {"data": str(args.data), "files": len(files), "audio_seconds": audio_seconds,
                  "workers": args.workers, "threads_per_worker": 1, "repeats_best_of": args.repeats,
                  "warmup": "one throwaway clip per worker and method before timing",
                  "sr": SR, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_mels": N_MELS},
        "results": results,
    })
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
