"""Tagging throughput of the local pool and of the Ray engine on this machine, and what it projects to on a
cluster.

Input: `--files` different clips of `--seconds` s (`genrekit.examples.example_clip` loops plus a little noise,
22050 Hz WAV), generated in a temporary folder. Each run is `genrekit.library.tag_library` into a fresh
database (scan, SHA-1, decoding, the model, SQLite commits: the whole `genrekit tag`) with

  local-1, local-2   the local engine (`genrekit.engine`) with 1 worker (in this process) and 2 (a fresh pool per run)
  ray-1, ray-2       the ray engine (`genrekit.distributed`), 1 and 2 tasks at once, in one local Ray instance
                     (`ray.init(num_cpus=<CPUs>)`) kept for all of them, so its workers are warm

One untimed warm-up per configuration, then the median of `--repeats` runs. x realtime = seconds of audio
per wall second. Ray's fixed costs are timed on their own: `ray.init`, and the first run (its workers start
and load the model) against the warm ones. Ray's per-file overhead is measured twice: the extra worker
time per file of ray-N over local-N, and `ray_map` of an empty function (the cost of one task, without any
genrekit work). The driver's own CPU seconds per file (hashing, committing, submitting) bound a cluster:
the projection for N nodes is min(N x the per-node rate measured here, the driver's ceiling). Every run
records its UTC start and the load average (os.getloadavg) before and after: other work on the machine
shows there, and a second worker adds little on cores that other work already keeps busy.

Run:  .venv/bin/python benchmarks/distributed.py [--files 40] [--seconds 30] [--model default] [--repeats 2]
Prints a table; writes benchmarks/results/distributed.{json,md} (atomically).
"""

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import ray
import soundfile as sf

from genrekit.atomic import write_text
from genrekit.distributed import ray_map
from genrekit.examples import example_clip
from genrekit.library import tag_library
from genrekit.predict import load

RESULTS = Path(__file__).resolve().parent / "results"
NODES = (1, 2, 4, 8, 16, 32)


def make_files(folder, n, seconds, sr=22050):
    """`n` different clips (so the library's same-content reuse never kicks in)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        y = example_clip(seconds, sr=sr, tempo=90.0 + 3 * (i % 15), seed=i)[:int(seconds * sr)]
        sf.write(folder / f"clip-{i:03d}.wav", (y + 0.01 * rng.standard_normal(len(y))).astype(np.float32), sr)


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def timed_run(root, scratch, classifier, engine, workers):
    """One `tag_library` run into a fresh database: wall and driver CPU seconds, load before and after."""
    db = Path(tempfile.mkdtemp(dir=scratch)) / "lib.sqlite"
    record = {"started": now(), "load_before": os.getloadavg()}
    wall, cpu = time.perf_counter(), time.process_time()
    summary = tag_library(root, db, classifier, engine=engine, workers=workers, progress=False)
    record.update(wall_s=time.perf_counter() - wall, driver_cpu_s=time.process_time() - cpu,
                  load_after=os.getloadavg(), tagged=summary.tagged)
    if summary.tagged != summary.total:
        raise SystemExit(f"only {summary.tagged} of {summary.total} files tagged: {summary.failures[:3]}")
    return record


def measure(name, root, scratch, classifier, engine, workers, repeats, audio_seconds, files):
    timed_run(root, scratch, classifier, engine, workers)  # warm-up
    runs = [timed_run(root, scratch, classifier, engine, workers) for _ in range(repeats)]
    wall = statistics.median(r["wall_s"] for r in runs)
    row = {"config": name, "workers": workers, "wall_s": wall, "files_per_s": files / wall,
           "x_realtime": audio_seconds / wall, "driver_cpu_s_per_file": statistics.median(
               r["driver_cpu_s"] for r in runs) / files, "runs": runs}
    print(f"{name:8s} {wall:7.2f} s  {row['files_per_s']:6.2f} files/s  {row['x_realtime']:6.1f}x realtime  "
          f"load {runs[0]['load_before'][0]:.2f} -> {runs[-1]['load_after'][0]:.2f}", flush=True)
    return row


def nothing(item):
    return item


def task_overhead_ms(n, workers):
    """Worker milliseconds per task of `ray_map` over an empty function."""
    began = time.perf_counter()
    for _, future in ray_map(nothing, range(n), lambda i: (i,), count=n, workers=workers):
        future.result()
    return 1000 * (time.perf_counter() - began) * workers / n


def markdown(meta, rows, ray_costs, projection):
    lines = ["# Distributed tagging (local pool vs Ray)", "",
             f"{meta['finished']}; {meta['files']} x {meta['seconds']:g} s WAV clips ({meta['audio_seconds']:g} s of "
             f"audio); model `{meta['model']}` ({meta['backend']}); {meta['cpus']} CPUs; OMP_NUM_THREADS="
             f"{meta['OMP_NUM_THREADS']}; Ray {meta['ray']}; median of "
             f"{meta['repeats']} after one warm-up. Load average (1 min) before the first and after the last run of "
             "each row: the machine is shared, so other work shows there.", "",
             "| engine | workers | wall s | files/s | x realtime | driver CPU ms/file | load before -> after | "
             "runs started (UTC) |", "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        runs = row["runs"]
        lines.append(f"| {row['config'].split('-')[0]} | {row['workers']} | {row['wall_s']:.2f} | "
                     f"{row['files_per_s']:.2f} | {row['x_realtime']:.0f} | "
                     f"{1000 * row['driver_cpu_s_per_file']:.1f} | "
                     f"{runs[0]['load_before'][0]:.2f} -> {runs[-1]['load_after'][0]:.2f} | "
                     f"{', '.join(r['started'][11:19] for r in runs)} |")
    lines += ["", "Ray's costs:", "",
              f"- `ray.init` of a local instance: {ray_costs['init_s']:.1f} s; the first run (2 workers start, "
              f"import genrekit and load the model) {ray_costs['cold_extra_s']:.1f} s longer than a warm one.",
              f"- per file, over the local pool: {ray_costs['per_file_ms'][1]:+.1f} ms of worker time with 1 worker, "
              f"{ray_costs['per_file_ms'][2]:+.1f} ms with 2 (ray-N wall - local-N wall, x N / files).",
              f"- one task of an empty function through `ray_map`: {ray_costs['task_ms']:.2f} ms of worker time.",
              f"- ray-2 / local-2 throughput: {ray_costs['ray_vs_local']:.3f}; ray-2 / (2 x ray-1): "
              f"{ray_costs['scaling']:.3f}.", "",
              "Projection for N nodes like this one (files/s = N x ray-2's rate: the files are independent, so "
              f"only the driver is shared; at most the driver's ceiling of {projection['driver_ceiling']:.0f} "
              "files/s = 1 / its CPU seconds per file; the driver also reads every new file once to hash it, "
              "so shared storage must deliver files/s x the file size to it):", "",
              "| nodes | files/s | x realtime | 100,000 songs of 4 min |", "| ---: | ---: | ---: | ---: |"]
    for row in projection["rows"]:
        lines.append(f"| {row['nodes']} | {row['files_per_s']:.1f} | {row['x_realtime']:.0f} | "
                     f"{row['hours_100k_songs']:.1f} h |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="default", help="model file or bundled model (default, fast)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    classifier = load(args.model)
    cpus = os.cpu_count()
    audio_seconds = args.files * args.seconds
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "music"
        root.mkdir()
        make_files(root, args.files, args.seconds)
        run = partial(measure, root=root, scratch=scratch, classifier=classifier, repeats=args.repeats,
                      audio_seconds=audio_seconds, files=args.files)
        rows = [run(f"local-{n}", engine="local", workers=n) for n in (1, 2)]
        began = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
        init_s = time.perf_counter() - began
        try:
            cold = timed_run(root, scratch, classifier, "ray", 2)["wall_s"]
            rows += [run(f"ray-{n}", engine="ray", workers=n) for n in (1, 2)]
            task_ms = task_overhead_ms(400, 2)
        finally:
            ray.shutdown()
    by = {row["config"]: row for row in rows}
    ray_costs = {"init_s": init_s, "cold_extra_s": cold - by["ray-2"]["wall_s"], "task_ms": task_ms,
                 "per_file_ms": {n: 1000 * (by[f"ray-{n}"]["wall_s"] - by[f"local-{n}"]["wall_s"]) * n / args.files
                                 for n in (1, 2)},
                 "ray_vs_local": by["ray-2"]["files_per_s"] / by["local-2"]["files_per_s"],
                 "scaling": by["ray-2"]["files_per_s"] / (2 * by["ray-1"]["files_per_s"])}
    ceiling = 1 / by["ray-2"]["driver_cpu_s_per_file"]
    projection = {"driver_ceiling": ceiling, "rows": []}
    for nodes in NODES:
        rate = min(nodes * by["ray-2"]["files_per_s"], ceiling)
        projection["rows"].append({"nodes": nodes, "files_per_s": rate, "x_realtime": rate * args.seconds,
                                   "hours_100k_songs": 100_000 * 240 / (rate * args.seconds) / 3600})
    meta = {"finished": now(), "files": args.files, "seconds": args.seconds, "audio_seconds": audio_seconds,
            "model": args.model, "backend": classifier.backend, "cpus": cpus, "ray": ray.__version__,
            "repeats": args.repeats, "python": platform.python_version(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    text = markdown(meta, rows, ray_costs, projection)
    print(text)
    write_text(args.out / "distributed.json", json.dumps({"meta": meta, "rows": rows, "ray": ray_costs,
                                                          "projection": projection}, indent=1) + "\n")
    write_text(args.out / "distributed.md", text)


if __name__ == "__main__":
    main()
