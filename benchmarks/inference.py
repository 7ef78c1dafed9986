"""Inference speed on this CPU: realtime factor (seconds of audio per second of compute) of a model or
ensemble, and of each of its members, with torch and with onnxruntime.

Inputs, generated in a temporary folder (synthesised loops, `genrekit.examples.example_clip`, plus a little
noise; nothing is read from ../shared):

  clip-30s        one 30 s clip, WAV, 22050 Hz mono (no resampling)
  song-5min-wav   a 5-minute song, WAV, 22050 Hz mono
  song-5min-flac  the same length as FLAC, 44.1 kHz stereo (decoding, downmix and resampling cost show)
  batch           100 (`--batch`) different 30 s WAV clips, tagged with `genrekit.library.tag_library` (its default
                  process pool, SHA-1 hashing and SQLite included) into a fresh database per repeat;
                  `Classifier.predict_many` in one process when the library module is not importable

Configurations: the full model (`--model`) and every member alone (saved as its own checkpoint), each with
torch (the checkpoint) and with onnxruntime (`genrekit.export.export_onnx`, loaded with
`genrekit.predict.load`). Every configuration runs in a fresh Python process, so its peak memory is its
own: `peak MB` is the process' peak resident set (VmHWM in /proc/self/status, the ru_maxrss of its own
address space; imports and model included), `loaded MB` the same figure just after loading the model,
before any audio. For the batch, the largest library worker process is in the JSON too
(`peak_rss_children_mb`, RUSAGE_CHILDREN ru_maxrss; forked workers count pages shared with the parent).

Each process: torch threads = `--threads` (default: all cores) for the STFT front end and the torch
models; onnxruntime with its default session options (intra-op threads = physical cores). The library's
pool workers use their own settings (one torch thread and one onnxruntime thread each). One untimed warm-up, then `--repeats`
repeats; the median is kept. Each repeat has two passes over the input:

  end to end   `Classifier.predict(path)` (or the library run for the batch): the realtime factor
  stages       the same work split up and timed piece by piece, in this process:
                 decode    `Classifier.blocks` alone (read, downmix, resample; blocks of whole windows)
                 features  `Classifier.windows`: the needed representations and their windows
                 model     the classifier's scorer on the windows (torch: every member timed on its own;
                           onnxruntime: the one graph holding all members)
                 combine   per-member song averages, the combiner on the song and on every window
                           (and the gate's statistics for a gated ensemble)
               for the batch, stage seconds are summed over the 100 files run one after another.
  "other" = end to end - sum of stages (Python overhead, library bookkeeping, pool start-up; timing noise
  between the passes can make it negative).

Goal: the full ensemble at >= 300x realtime.

`--networks` runs benchmarks/networks.py instead (per network: ms per 3 s patch with torch, onnxruntime fp32
and int8, against the original musicnn on TensorFlow on the same patches; int8 accuracy; cold start), with
the other arguments (its own), and writes benchmarks/results/networks.{json,md}.

Run:  .venv/bin/python benchmarks/inference.py [--model PATH] [--repeats 3] [--threads N]
                                               [--inputs clip-30s ...] [--no-members] [--batch 100]
      .venv/bin/python benchmarks/inference.py --networks [--repeats 15] [--threads 2]
Prints a table and where the time goes; writes benchmarks/results/inference.{json,md} (atomically).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
INPUTS = ("clip-30s", "song-5min-wav", "song-5min-flac", "batch")
GOAL_X = 300.0
CLIP_SECONDS, SONG_SECONDS = 30.0, 300.0


def library_tagger():
    """`genrekit.library.tag_library` when it is importable with the expected signature, else None."""
    import inspect

    try:
        from genrekit.library import tag_library
    except Exception:  # noqa: BLE001 - any failure means "fall back to predict_many"
        return None
    params = inspect.signature(tag_library).parameters
    if not {"root", "db_path", "classifier", "workers", "progress"} <= set(params):
        return None
    return tag_library


def peak_rss_mb():
    """Peak resident memory of this process' own address space: VmHWM from /proc/self/status. (getrusage's
    ru_maxrss would do on a fresh process, except that Linux carries the launching process' peak over
    fork + exec, so it would report the orchestrating process' size.) ru_maxrss where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------------- test audio


def make_audio(folder, batch):
    """Write the test inputs; returns {input name: [paths]}."""
    import numpy as np
    import soundfile as sf

    from genrekit.examples import example_clip

    def song(seconds, sr, seed):
        rng = np.random.default_rng(seed)
        y = example_clip(seconds, sr=sr, tempo=90.0 + 4 * (seed % 10), seed=seed)
        return (0.9 * y + 0.01 * rng.standard_normal(y.size)).astype(np.float32)

    folder = Path(folder)
    (folder / "batch").mkdir(parents=True)
    clip = folder / "clip-30s.wav"
    sf.write(clip, song(CLIP_SECONDS, 22050, 0), 22050, subtype="PCM_16")
    long_wav = folder / "song-5min.wav"
    sf.write(long_wav, song(SONG_SECONDS, 22050, 1), 22050, subtype="PCM_16")
    left = song(SONG_SECONDS, 44100, 1)
    long_flac = folder / "song-5min.flac"
    sf.write(long_flac, np.stack([left, np.roll(left, 441)], axis=1), 44100, subtype="PCM_16")
    clips = []
    for i in range(batch):  # every clip different, so the library's same-content reuse never kicks in
        path = folder / "batch" / f"clip-{i:03d}.wav"
        sf.write(path, song(CLIP_SECONDS, 22050, 100 + i), 22050, subtype="PCM_16")
        clips.append(path)
    return {"clip-30s": [clip], "song-5min-wav": [long_wav], "song-5min-flac": [long_flac], "batch": clips}


def prepare_models(model_path, folder, members):
    """[(name, kind, backend, path)]: the full model and (optionally) every member, as .pt and .onnx."""
    import torch

    from genrekit.checkpoints import read_model
    from genrekit.export import export_onnx

    folder = Path(folder)
    model_file = read_model(model_path)
    found, kind = model_file.members, model_file.kind
    full = f"ensemble ({kind})" if kind else f"model ({found[0].name})"
    configs = [(full, "full", "torch", str(model_path)),
               (full, "full", "onnxruntime", str(export_onnx(model_path, folder / "full.onnx")))]
    if kind and members:
        names = [member.name for member in found]
        for i, member in enumerate(found):
            name = member.name if names.count(member.name) == 1 else f"{member.name}#{i}"
            pt = folder / f"member-{i}.pt"
            torch.save(member.checkpoint, pt)
            configs.append((name, "member", "torch", str(pt)))
            configs.append((name, "member", "onnxruntime", str(export_onnx(pt, folder / f"member-{i}.onnx"))))
    return configs


# ---------------------------------------------------------------------------------------------- one configuration


def stage_pass(classifier, paths):
    """Seconds of decode / features / model (per member for torch) / combine, through genrekit.scoring's steps."""
    import numpy as np

    from genrekit.combiners import gate_frames, gate_statistics_of_frames
    from genrekit.scoring import (AudioScores, TorchScorer, block_windows, model_log_probs, signal_blocks,
                                  song_probabilities, window_length)

    scorer = classifier.scorer
    params, seconds = scorer.params, scorer.window_seconds
    by_member = isinstance(scorer, TorchScorer)
    member_s = {name: 0.0 for name in scorer.member_names} if by_member else {}
    t = {"decode_s": 0.0, "features_s": 0.0, "model_s": 0.0, "combine_s": 0.0}
    window = window_length("waveform", seconds, params)
    for path in paths:
        start = time.perf_counter()
        blocks = list(signal_blocks(path, params, seconds))
        t["decode_s"] += time.perf_counter() - start
        scores, frames, total = [], [], 0
        for block in blocks:
            if len(block) < window and total:
                continue  # as scoring: a short trailing piece is left out
            total += len(block)
            start = time.perf_counter()
            features, windows, _ = block_windows(block, params, seconds, scorer.representations)
            t["features_s"] += time.perf_counter() - start
            if by_member:
                outputs = []
                for name, model in zip(scorer.member_names, scorer.models):
                    start = time.perf_counter()
                    outputs.append(model_log_probs(model, windows[model.representation]))
                    member_s[name] += time.perf_counter() - start
                scores.append(np.stack(outputs))
            else:
                start = time.perf_counter()
                scores.append(scorer.member_log_probs(windows))
                t["model_s"] += time.perf_counter() - start
            start = time.perf_counter()
            if scorer.gated:
                frames.append(gate_frames(features))
            t["combine_s"] += time.perf_counter() - start
        start = time.perf_counter()
        stats = gate_statistics_of_frames(np.concatenate(frames, axis=1)) if scorer.gated else None
        song_probabilities(scorer, AudioScores(np.concatenate(scores, axis=1), np.zeros(0), stats, 0.0))
        t["combine_s"] += time.perf_counter() - start
    t["model_s"] += sum(member_s.values())
    t["members_s"] = member_s
    return t


def end_to_end(classifier, paths, batch_mode, tagger, scratch, run):
    """Wall seconds of the real path: predict per file, or the library run / predict_many for the batch."""
    start = time.perf_counter()
    if batch_mode and tagger is not None:
        summary = tagger(Path(paths[0]).parent, Path(scratch) / f"library-{run}.sqlite", classifier, progress=False)
        seconds = time.perf_counter() - start
        if summary.tagged != len(paths) or summary.failures:
            raise RuntimeError(f"library run tagged {summary.tagged} of {len(paths)} files: {summary.failures[:3]}")
        return seconds
    if batch_mode:
        results = classifier.predict_many(paths)
        seconds = time.perf_counter() - start
        bad = [r for r in results if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"predict_many failed on {len(bad)} files: {bad[0]}")
        return seconds
    for path in paths:
        classifier.predict(path)
    return time.perf_counter() - start


def worker(spec):
    """Measure one configuration (run in its own process); returns a result dict."""
    import multiprocessing

    import torch

    from genrekit.audio import audio_info
    from genrekit.predict import load

    torch.set_num_threads(spec["threads"])
    start = time.perf_counter()
    classifier = load(spec["path"])  # .pt -> torch, .onnx -> onnxruntime
    load_s = time.perf_counter() - start
    loaded_mb = peak_rss_mb()
    paths = spec["paths"]
    batch_mode = spec["input"] == "batch"
    tagger = library_tagger() if batch_mode else None
    audio_s = sum(audio_info(p).duration for p in paths)

    with tempfile.TemporaryDirectory(prefix="genrekit-inference-") as scratch:
        # warm-up: one untimed run of both passes (the batch: on a 2-file folder, so the pool starts once)
        warm = paths[:1]
        if batch_mode and tagger is not None:
            folder = Path(scratch) / "warm"
            folder.mkdir()
            for i, path in enumerate(paths[:2]):
                shutil.copy(path, folder / f"w{i}.wav")
            tagger(folder, Path(scratch) / "warm.sqlite", classifier, progress=False)
        else:
            end_to_end(classifier, warm, False, None, scratch, "warm")
        stage_pass(classifier, warm)

        e2e, stages = [], []
        for run in range(spec["repeats"]):  # the two passes interleaved, so background load hits both alike
            e2e.append(end_to_end(classifier, paths, batch_mode, tagger, scratch, run))
            stages.append(stage_pass(classifier, paths))
    for child in multiprocessing.active_children():  # reap library workers so RUSAGE_CHILDREN counts them
        child.join(timeout=30)

    median = statistics.median(e2e)
    def med(key):
        return statistics.median(s[key] for s in stages)
    members = {name: statistics.median(s["members_s"][name] for s in stages) for name in stages[0]["members_s"]}
    stage = {key: med(key) for key in ("decode_s", "features_s", "model_s", "combine_s")}
    if batch_mode:
        path_used = ("genrekit.library.tag_library (default workers: one process per core, 1 torch thread each)"
                     if tagger is not None else "Classifier.predict_many in one process (genrekit.library not importable)")
    else:
        path_used = "Classifier.predict"
    return {"audio_s": audio_s, "files": len(paths), "load_s": load_s, "end_to_end_path": path_used,
            "end_to_end_s": median, "end_to_end_all_s": e2e, "realtime_x": audio_s / median,
            "stages": {**stage, "members_s": members, "other_s": median - sum(stage.values())},
            "stages_realtime_x": audio_s / sum(stage.values()),
            "loaded_rss_mb": loaded_mb, "peak_rss_mb": peak_rss_mb(),
            "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 or None}


def run_config(spec):
    """Run `worker` in a fresh interpreter (own peak memory); returns its result or {"error": ...}."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec), "--worker-out", out.name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return {"error": f"exit {proc.returncode}: {tail}"}
        return json.loads(Path(out.name).read_text())


# ---------------------------------------------------------------------------------------------- report


def table(rows):
    header = (f"{'model':<26}{'backend':<13}{'input':<16}{'audio s':>8}{'x realtime':>11}{'decode':>8}"
              f"{'features':>9}{'model':>8}{'combine':>8}{'other':>8}{'loaded MB':>10}{'peak MB':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        head = f"{r['model']:<26}{r['backend']:<13}{r['input']:<16}"
        if "error" in r:
            lines.append(head + f"  FAILED: {r['error']}")
            continue
        s = r["stages"]
        lines.append(head + f"{r['audio_s']:>8.0f}{r['realtime_x']:>10.0f}x{s['decode_s']:>8.3f}{s['features_s']:>9.3f}"
                     f"{s['model_s']:>8.3f}{s['combine_s']:>8.3f}{s['other_s']:>8.3f}{r['loaded_rss_mb']:>10.0f}"
                     f"{r['peak_rss_mb']:>9.0f}")
    return lines


def breakdown(rows):
    """Where the end-to-end time of each full-model row goes, in shares."""
    lines = []
    for r in rows:
        if r["kind"] != "full" or "error" in r:
            continue
        s, total = r["stages"], r["end_to_end_s"]
        parallel = "tag_library" in r["end_to_end_path"]  # wall time of a process pool vs. serial stage seconds
        if parallel:
            total = sum(s[key] for key in ("decode_s", "features_s", "model_s", "combine_s"))
        parts = [("decode", s["decode_s"]), ("features", s["features_s"])]
        if s["members_s"]:
            parts += [(f"model {name}", sec) for name, sec in s["members_s"].items()]
        else:
            parts.append(("model (all members, one onnx graph)", s["model_s"]))
        parts += [("combine", s["combine_s"])] + ([] if parallel else [("other", s["other_s"])])
        verdict = "met" if r["realtime_x"] >= GOAL_X else "NOT met"
        lines.append(f"{r['model']} / {r['backend']} / {r['input']}: {r['realtime_x']:.0f}x realtime "
                     f"({r['end_to_end_s']:.3f} s for {r['audio_s']:.0f} s of audio) - goal >= {GOAL_X:.0f}x {verdict}")
        if parallel:
            lines.append(f"    (library run is a process pool: shares below are of the serial stage pass, "
                         f"{total:.3f} s in one process)")
        lines += [f"    {name:<40}{sec:>9.3f} s {100 * sec / total:>6.1f} %" for name, sec in parts]
    return lines


def markdown(meta, rows):
    out = ["# Inference speed", "", f"{meta['date']}; model `{meta['model']}`; {meta['machine']['cpu_count']} CPUs "
           f"({meta['machine'].get('cpu', 'CPU not recorded')}); "
           f"torch {meta['machine']['torch']} with {meta['setup']['torch_threads']} threads, onnxruntime "
           f"{meta['machine']['onnxruntime']} with default session options; median of {meta['setup']['repeats']} "
           "after one warm-up. Seconds are medians per stage; x realtime = audio seconds / end-to-end seconds. "
           "Peak memory: peak resident set (VmHWM) of a fresh process per row (imports and model included).", "",
           f"Batch path: {meta['setup']['batch_path']}.", "",
           "| model | backend | input | audio s | x realtime | decode s | features s | model s | combine s | "
           "other s | loaded MB | peak MB |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['backend']} | {r['input']} | failed: {r['error']} |" + " |" * 8)
            continue
        s = r["stages"]
        out.append(f"| {r['model']} | {r['backend']} | {r['input']} | {r['audio_s']:.0f} | {r['realtime_x']:.0f} | "
                   f"{s['decode_s']:.3f} | {s['features_s']:.3f} | {s['model_s']:.3f} | {s['combine_s']:.3f} | "
                   f"{s['other_s']:.3f} | {r['loaded_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    out += ["", f"## Where the time goes (goal: full ensemble >= {GOAL_X:.0f}x realtime)", "", "```"]
    out += breakdown(rows) + ["```", ""]
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--networks" in argv:
        import networks  # beside this file

        networks.main([a for a in argv if a != "--networks"])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint or ensemble .pt (default: the bundled genrekit/weights/default.pt)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, median kept (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads in each measuring process (default: all cores, %(default)s)")
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS), help="inputs to time (default: all)")
    parser.add_argument("--batch", type=int, default=100, help="clips in the batch input (default: %(default)s)")
    parser.add_argument("--no-members", action="store_true", help="time only the full model, not each member")
    parser.add_argument("--networks", action="store_true",
                        help="per-network figures instead (benchmarks/networks.py, which takes the other arguments)")
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.json",
                        help="JSON results; the markdown goes beside it (default: %(default)s)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from genrekit.atomic import write_text

    if args.worker:
        write_text(args.worker_out, json.dumps(worker(json.loads(args.worker))))
        return
    if args.repeats < 1 or args.threads < 1 or args.batch < 2:
        parser.error("--repeats and --threads must be >= 1, --batch >= 2")

    from genrekit.predict import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    if not model.is_file():
        hint = " (the bundled default model is not built yet: run benchmarks/real_music.py --write-default, or pass --model)" \
            if args.model is None else ""
        print(f"error: {model}: model not found{hint}", file=sys.stderr)
        sys.exit(2)
    if model.suffix == ".onnx":
        print(f"error: {model}: pass the .pt checkpoint or ensemble (the ONNX rows are exported from it)", file=sys.stderr)
        sys.exit(2)

    import onnxruntime
    import torch

    from common import cpu_name  # beside this file
    from genrekit.exceptions import GenrekitError

    tagger = library_tagger()
    batch_path = ("genrekit.library.tag_library, default workers (one process per core, 1 torch thread and "
                  "1 onnxruntime thread each), SHA-1 hashing and SQLite included, fresh database per repeat"
                  if tagger is not None else
                  "Classifier.predict_many over the files in one process (genrekit.library.tag_library is NOT "
                  "importable, so the library path could not be timed)")
    with tempfile.TemporaryDirectory(prefix="genrekit-inference-") as tmp:
        began = time.perf_counter()
        try:
            configs = prepare_models(model, Path(tmp) / "models", members=not args.no_members)
        except GenrekitError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        audio = make_audio(Path(tmp) / "audio", args.batch)
        print(f"model {model}: {len(configs) // 2} configuration(s) x torch/onnxruntime x {len(args.inputs)} input(s); "
              f"prepared in {time.perf_counter() - began:.0f} s")
        print(f"torch threads {args.threads} (of {os.cpu_count()} CPUs), onnxruntime default session options; "
              f"one warm-up, median of {args.repeats}; a fresh process per row (peak memory = its VmHWM)")
        print(f"batch: {batch_path}", flush=True)
        rows = []
        for name, kind, backend, path in configs:
            for input_name in args.inputs:
                spec = {"path": path, "input": input_name, "paths": [str(p) for p in audio[input_name]],
                        "repeats": args.repeats, "threads": args.threads}
                result = run_config(spec)
                label = f"batch-{args.batch}x30s" if input_name == "batch" else input_name
                row = {"model": name, "kind": kind, "backend": backend, "input": label, **result}
                rows.append(row)
                print(table([row])[-1], flush=True)

    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": str(model),
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "cpu": cpu_name(),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "onnxruntime": onnxruntime.__version__,
                        "load_average_at_end": os.getloadavg()},
            "setup": {"torch_threads": args.threads, "onnxruntime": "default SessionOptions (CPUExecutionProvider)",
                      "repeats_median_of": args.repeats, "repeats": args.repeats, "warmup": "one untimed run of both passes",
                      "batch": args.batch, "batch_path": batch_path, "goal_realtime_x": GOAL_X,
                      "peak_memory": "VmHWM (/proc/self/status) of a fresh process per row; peak_rss_children_mb: largest "
                                     "library worker (RUSAGE_CHILDREN ru_maxrss, shared pages included)",
                      "inputs": {"clip-30s": "30 s WAV 22050 Hz mono", "song-5min-wav": "300 s WAV 22050 Hz mono",
                                 "song-5min-flac": "300 s FLAC 44100 Hz stereo",
                                 f"batch-{args.batch}x30s": f"{args.batch} different 30 s WAVs, 22050 Hz mono"}},
            }
    print()
    print("\n".join(table(rows)))
    print("seconds: medians; decode/features/model/combine from the stage pass, other = end to end - stages; "
          "batch stages are summed over the files run one after another in the measuring process")
    print()
    print(f"where the time goes (goal: full ensemble >= {GOAL_X:.0f}x realtime):")
    print("\n".join(breakdown(rows)))
    write_text(args.out, json.dumps({**meta, "results": rows}, indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), markdown(meta, rows))
    print(f"saved {args.out} and {args.out.with_suffix('.md')}")
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
