"""Per-network speed on this CPU: ms per 3 s patch and x realtime of each pretrained network, with torch,
onnxruntime fp32, onnxruntime int8 and the original musicnn 0.1.0 package on TensorFlow as the baseline, on
the same patches in one run (ratios to TensorFlow); accuracy of the ONNX variants on the real GTZAN valid
split; what batching windows across files would gain; cold start of the command line.

Network: MSD_musicnn (genrekit/models/musicnn.py), the one the bundled default model runs (frozen musicnn +
an MLP head). Input: a 30 s clip (the first gtzan-mini clip when --gtzan-mini exists, else synthesised), cut
into its 10 windows of 3 s, and genrekit's log-mel patches of them (`MusicnnFrontEnd`) [shape=(10, 187, 96)].

Variants, each timed on the batch of 10 per call, all in one loop (A B C ... A B C ...) so that background load
hits them alike; one warm-up, median of --repeats (the ratio to TensorFlow: median of the rounds' ratios):

  tensorflow   musicnn 0.1.0's own graph (scripts/musicnn_tf.py, built once), 2 intra-op threads, in a
               subprocess of a throwaway venv (--tf-env, made on first use as scripts/convert_musicnn.py says:
               tensorflow-cpu 2.21.0, tf-keras 2.21.0, numpy, then musicnn 0.1.0 --no-deps; TensorFlow is
               never a genrekit dependency): patches -> penultimate embeddings (sess.run timed)
  torch        genrekit's port on the same patches -> penultimate embeddings, 2 and 1 threads; and the whole
               default model on the 3 s waveform windows -> genre log-probs (front end and head included)
  onnx fp32    `genrekit.export.export_onnx` of the default model: waveform windows -> genre log-probs
               (resampler, STFT and mel included, which TensorFlow is not timed for: a conservative ratio)
  ... every filter   the torch and onnx fp32 rows again with all 561 front-end filters computed (the port as
               it was before it left out the 488 whose weights are zero, `genrekit.models.musicnn.CONSTANT_FILTER`):
               what that reformulation gains, on the same patches in the same rounds
  onnx int8    the same graph quantized statically (onnxruntime.quantization.quantize_static: QDQ, per-channel
               int8 weights, uint8 activations, MinMax calibration on the middle window of every GTZAN *train*
               clip): only the two timbral (7x38, 7x67) convolutions; the front end's DFT and resampler
               convolutions and the single-column temporal ones stay fp32 (the temporal ones run ~8x slower
               as int8 QLinearConv). Kept only if its valid accuracy is within 0.5 points of fp32.

Batch size: the onnx fp32 export on 1, 4, 10, 32 and 64 windows per call (the clip's windows tiled), 1 and
--threads threads, alternating: ms per window against one call per clip of 10 windows, which is what
`predict`, `tag` (one thread per worker) and the server do now. Batching windows across files pays only
where the bigger batch is clearly cheaper per window.

Checks that the same network is timed: max |TF - torch| of the penultimate embeddings on the patches, and
max |int8 - fp32| of the genre probabilities. Accuracy: `genrekit.evaluation.clip_log_probs` of the fp32 and
int8 exports (1 thread) on the valid split of gtzan-mini + gtzan-extra. Cold start: wall seconds of fresh
processes (median of 3 after one untimed run, which fills the ONNX cache): `python -c "import genrekit.predict"`,
`genrekit --help`, `genrekit predict clip.wav`. The machine's load average is quoted at start and end.

Run:  .venv/bin/python benchmarks/networks.py [--repeats 15] [--threads 2]   (or benchmarks/inference.py --networks)
Prints the figures; writes benchmarks/results/networks.{json,md} (atomically).
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SHARED = REPO.parent / "shared" / "data"
TF_ENV = Path(tempfile.gettempdir()) / "musicnn-env"
TF_PACKAGES = [["tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "numpy"], ["--no-deps", "musicnn==0.1.0"]]
TF_ENVIRON = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
NETWORK = "MSD_musicnn"
CLIP_SECONDS = 30.0
BATCH_SIZES = (1, 4, 10, 32, 64)
KEEP_POINTS = 0.5
"""A faster variant is kept only if its valid accuracy is within this many points of fp32."""


# ---------------------------------------------------------------------------------------------- TensorFlow side


def tf_python(env):
    """The throwaway venv's python with TensorFlow and musicnn 0.1.0, made (or completed) on first use."""
    python = Path(env) / "bin" / "python"
    check = [str(python), "-c", "import tensorflow, musicnn"]
    if python.is_file() and subprocess.run(check, capture_output=True, env={**os.environ, **TF_ENVIRON}).returncode == 0:
        return python
    print(f"making the TensorFlow venv {env} (tensorflow-cpu 2.21.0, musicnn 0.1.0) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    for packages in TF_PACKAGES:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def tf_worker(patches_path, threads):
    """The TensorFlow side (runs in the venv): build musicnn's graph once, save its embeddings of the patches,
    then time one `sess.run` of them per line read from stdin."""
    from importlib.metadata import version

    sys.path.insert(0, str(REPO / "scripts"))
    from musicnn_tf import TensorFlowMusicnn

    patches = np.load(patches_path)
    model = TensorFlowMusicnn(n_frames=patches.shape[1], n_mels=patches.shape[2], threads=threads)
    np.save(Path(patches_path).with_suffix(".tf-embedding.npy"), model(patches)[0])
    print("ready", version("tensorflow-cpu"), version("musicnn"), flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        model(patches)
        print(f"seconds {time.perf_counter() - start}", flush=True)


class TensorFlowTimer:
    """The TF worker as a persistent subprocess: `()` times one run of the patches, in seconds."""

    def __init__(self, python, patches_path, threads):
        self.log = Path(patches_path).with_suffix(".tf.log")
        with open(self.log, "w") as log:  # TensorFlow's start-up chatter, shown only if it fails
            self.proc = subprocess.Popen([str(python), __file__, "--tf-worker", str(patches_path), "--threads",
                                          str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         text=True, env={**os.environ, **TF_ENVIRON})
        ready, *self.versions = self.proc.stdout.readline().split() or [""]
        if ready != "ready":
            raise RuntimeError(f"the TensorFlow worker failed (exit {self.proc.wait()}): "
                               f"{self.log.read_text()[-2000:]}")
        self.embedding = np.load(Path(patches_path).with_suffix(".tf-embedding.npy"))

    def __call__(self):
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline().split()[1])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ---------------------------------------------------------------------------------------------- inputs and int8


def clip_windows(path, params, seconds, duration=None, offset=0.0):
    """The scoring grid's waveform windows of a file (or a span of it) [shape=(n, samples)]."""
    from genrekit.scoring import block_windows, signal_blocks

    y = np.concatenate(list(signal_blocks(path, params, seconds, offset=offset, duration=duration)))
    return block_windows(y, params, seconds, ["waveform"])[1]["waveform"]


def test_windows(scorer, gtzan_mini, folder):
    """(10 waveform windows of a 30 s clip, the clip's path, where it came from): the first complete 30 s
    gtzan-mini original, else a synthesised clip."""
    import soundfile as sf

    from genrekit.audio import audio_info
    from genrekit.constants import AUDIO_EXTENSIONS
    from genrekit.examples import example_clip

    clips = sorted(p for p in Path(gtzan_mini).rglob("*") if p.suffix in AUDIO_EXTENSIONS) \
        if Path(gtzan_mini).is_dir() else []
    clips = [p for p in clips if audio_info(p).duration >= CLIP_SECONDS]
    if clips:
        source = clips[0]
    else:
        source = Path(folder) / "synth.wav"
        rng = np.random.default_rng(0)
        y = example_clip(CLIP_SECONDS, sr=scorer.params.sr, tempo=96.0, seed=0)
        sf.write(source, (0.9 * y + 0.01 * rng.standard_normal(y.size)).astype(np.float32), scorer.params.sr)
    windows = clip_windows(source, scorer.params, scorer.window_seconds, duration=CLIP_SECONDS)
    clip = Path(folder) / "clip.wav"
    sf.write(clip, windows.reshape(-1), scorer.params.sr, subtype="PCM_16")
    return windows, clip, str(source.relative_to(REPO.parent) if source.is_relative_to(REPO.parent) else "synthesised")


def timbral_convolutions(model):
    """Names of the Conv nodes with 2-D kernels wider than one column: musicnn's two timbral convolutions (the
    front end's DFT and resampler convolutions are 1-D, the temporal ones one column wide)."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    return [node.name for node in model.graph.node if node.op_type == "Conv"
            and len(shapes.get(node.input[1], [])) == 4 and min(shapes[node.input[1]][2:]) > 1]


def quantize_int8(fp32_path, out_path, windows, batch=16):
    """onnxruntime static int8 (QDQ) of the timbral convolutions, calibrated (MinMax) on `windows`."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({"waveform": windows[s:s + batch]} for s in range(0, len(windows), batch))

        def get_next(self):
            return next(self.batches, None)

    pre = Path(out_path).with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    nodes = timbral_convolutions(onnx.load(str(pre)))
    if len(nodes) != 2:
        raise RuntimeError(f"expected musicnn's two timbral convolutions in {fp32_path}, found {nodes}")
    quantize_static(str(pre), str(out_path), Windows(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                    nodes_to_quantize=nodes, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return nodes


def accuracy(onnx_path, tracks):
    """Accuracy of an ONNX export on tracks, through the prediction path (1 onnxruntime thread)."""
    from genrekit.checkpoints import load_scorer
    from genrekit.evaluation import clip_log_probs

    log_probs, targets = clip_log_probs(load_scorer(onnx_path, threads=1), tracks, progress=False)
    return float(np.mean(log_probs.argmax(1) == targets)), log_probs


# ---------------------------------------------------------------------------------------------- timing


@contextlib.contextmanager
def every_filter():
    """musicnn computes all its front-end filters, also those whose weights are zero (as before the port left
    them out)."""
    with mock.patch("genrekit.models.musicnn.constant_filters", lambda conv: []):
        yield


def with_every_filter(fn):
    def run():
        with every_filter():
            return fn()
    return run


def alternate(variants, repeats):
    """{name: [seconds]}: every variant once per round (one warm-up round untimed), `repeats` rounds."""
    times = {name: [] for name in variants}
    for round_ in range(repeats + 1):
        for name, run in variants.items():
            seconds = run()
            if round_:
                times[name].append(seconds)
    return times


def timed(fn, *args):
    def run():
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start
    return run


def with_threads(threads, fn):
    import torch

    def run():
        torch.set_num_threads(threads)
        return fn()
    return run


def batch_sizes(path, windows, threads, repeats, sizes=BATCH_SIZES):
    """Rows of ms per window of the ONNX export at each batch size and thread count, alternating."""
    from genrekit.checkpoints import load_onnx

    variants = {}
    for n_threads in sorted({1, threads}):
        session = load_onnx(path, threads=n_threads)
        for size in sizes:
            batch = np.resize(windows, (size, windows.shape[1]))
            variants[size, n_threads] = timed(session.member_log_probs, {"waveform": batch})
    times = alternate(variants, repeats)
    return [{"batch": size, "threads": n_threads, "ms_per_window": 1000 * statistics.median(values) / size,
             "vs_batch_10": statistics.median(values) / size
             / (statistics.median(times[len(windows), n_threads]) / len(windows))}
            for (size, n_threads), values in times.items()]


def cold_start(clip, repeats=3):
    """Median wall seconds of fresh processes (after one untimed run each)."""
    entry = Path(sys.executable).with_name("genrekit")
    cli = [str(entry)] if entry.is_file() else [sys.executable, "-c", "from genrekit.cli import main; main()"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    commands = {'python -c "import genrekit.predict"': [sys.executable, "-c", "import genrekit.predict"],
                "genrekit --help": cli + ["--help"],
                "genrekit predict clip.wav (30 s)": cli + ["predict", str(clip)]}
    out = {}
    for name, command in commands.items():
        walls = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - start)
        out[name] = {"median_s": statistics.median(walls[1:]), "all_s": walls[1:]}
    return out


# ---------------------------------------------------------------------------------------------- the run


def measure(args, folder):
    import onnxruntime
    import torch

    from genrekit.checkpoints import load_onnx, load_scorer
    from genrekit.datasets import load_dataset, merge
    from genrekit.export import export_onnx
    from genrekit.predict import DEFAULT_MODEL

    folder = Path(folder)
    load_start = os.getloadavg()
    scorer = load_scorer(DEFAULT_MODEL)
    classifier = scorer.models[0]
    windows, clip, source = test_windows(scorer, args.gtzan_mini, folder)
    with torch.inference_mode():
        patches = classifier.frontend(torch.from_numpy(windows))
    np.save(folder / "patches.npy", patches.numpy())
    n, seconds = len(windows), scorer.window_seconds
    print(f"{NETWORK}: {n} patches of {seconds:g} s ({source}), log-mel {tuple(patches.shape)}", flush=True)

    fp32 = export_onnx(DEFAULT_MODEL, folder / "fp32.onnx")
    with every_filter():
        every = export_onnx(DEFAULT_MODEL, folder / "fp32-every-filter.onnx")
    have_gtzan = Path(args.gtzan_mini).is_dir() and Path(args.gtzan_extra).is_dir()
    tracks = merge(load_dataset(f"gtzan:{args.gtzan_mini}"), load_dataset(f"gtzan:{args.gtzan_extra}")) \
        if have_gtzan else []
    onnx_paths, quantized = {"onnx fp32": fp32, "onnx fp32 every filter": every}, None
    if have_gtzan:
        train = [t for t in tracks if t.split == "train"]
        calibration = np.stack([w[len(w) // 2] for w in (clip_windows(t.path, scorer.params, seconds, t.duration,
                                                                       t.start or 0.0) for t in train)])
        quantized = quantize_int8(fp32, folder / "int8.onnx", calibration)
        onnx_paths["onnx int8"] = folder / "int8.onnx"
        print(f"int8: {quantized} quantized, calibrated on {len(calibration)} windows of {len(train)} train clips",
              flush=True)

    tf = TensorFlowTimer(tf_python(args.tf_env), folder / "patches.npy", args.threads)
    try:
        backbone = classifier.backbone
        with torch.inference_mode():
            embedding = backbone.embed(patches).numpy()
        variants = {("tensorflow", args.threads, "patches"): tf}
        for threads in (args.threads, 1):
            variants[("torch", threads, "patches")] = with_threads(threads, timed(backbone.embed, patches))
            variants[("torch every filter", threads, "patches")] = with_every_filter(
                with_threads(threads, timed(backbone.embed, patches)))
        variants[("torch", args.threads, "waveform")] = with_threads(
            args.threads, timed(scorer.member_log_probs, {"waveform": windows}))
        sessions = {}
        for name, path in onnx_paths.items():
            for threads in (args.threads, 1):
                sessions[name, threads] = load_onnx(path, threads=threads)
                variants[(name, threads, "waveform")] = timed(sessions[name, threads].member_log_probs,
                                                             {"waveform": windows})
        with torch.inference_mode():
            times = alternate(variants, args.repeats)
    finally:
        tf.close()
    load_timing = os.getloadavg()

    tf_times = times[("tensorflow", args.threads, "patches")]
    rows = []
    for (name, threads, scope), values in times.items():
        ms = 1000 * statistics.median(values) / n
        paired = statistics.median(tf_s / s for tf_s, s in zip(tf_times, values))  # the same round's TF run
        rows.append({"network": NETWORK, "variant": name, "threads": threads,
                     "input": "log-mel patches -> penultimate embedding" if scope == "patches"
                     else f"{seconds:g} s waveform -> genre log-probs (front end + network + head)",
                     "ms_per_patch": ms, "ms_per_patch_all": [1000 * v / n for v in values],
                     "min_ms_per_patch": 1000 * min(values) / n, "realtime_x": 1000 * seconds / ms,
                     "speed_vs_tensorflow": paired})
    with torch.inference_mode(), every_filter():
        every_embedding = backbone.embed(patches).numpy()
    checks = {"max_abs_tf_vs_torch_embedding": float(np.abs(tf.embedding - embedding).max()),
              "max_abs_every_filter_vs_torch_embedding": float(np.abs(every_embedding - embedding).max()),
              "embedding_max_abs": float(np.abs(embedding).max())}
    result = {"network": NETWORK, "patches": {"n": n, "seconds": seconds, "source": source,
                                             "shape": list(patches.shape)},
              "rows": rows, "checks": checks, "int8_quantized_nodes": quantized,
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
              "tensorflow_cpu": tf.versions[0], "musicnn": tf.versions[1]}
    if quantized:
        probs = {name: np.exp(sessions[name, args.threads].member_log_probs({"waveform": windows})) for name in onnx_paths}
        checks["max_abs_int8_vs_fp32_window_probs"] = float(np.abs(probs["onnx int8"] - probs["onnx fp32"]).max())
        valid = [t for t in tracks if t.split == "valid"]
        scores = {name: accuracy(path, valid) for name, path in onnx_paths.items()}
        fp32_acc, int8_acc = scores["onnx fp32"][0], scores["onnx int8"][0]
        result["accuracy"] = {"split": f"GTZAN valid (gtzan-mini + gtzan-extra), {len(valid)} clips",
                              "onnx fp32": fp32_acc, "onnx int8": int8_acc,
                              "onnx fp32 every filter": scores["onnx fp32 every filter"][0],
                              "int8_agrees_with_fp32": float(np.mean(scores["onnx int8"][1].argmax(1)
                                                                     == scores["onnx fp32"][1].argmax(1))),
                              "int8_kept": bool(int8_acc >= fp32_acc - KEEP_POINTS / 100)}
    result["batch_sizes"] = batch_sizes(fp32, windows, args.threads, args.repeats)
    result["cold_start"] = cold_start(clip)
    result["load_average"] = {"start": load_start, "after_timing": load_timing, "end": os.getloadavg()}
    return result


def report(meta, result):
    """The figures as text lines (printed, and the body of the markdown)."""
    load = result["load_average"]
    lines = [f"{result['network']}: {result['patches']['n']} patches of {result['patches']['seconds']:g} s "
             f"({result['patches']['source']}); median of {meta['repeats']} alternating rounds after one warm-up; "
             f"{meta['cpu_count']} CPUs ({meta.get('cpu', 'CPU not recorded')}), load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load['start'])} "
             f"at start, {'/'.join(f'{x:.1f}' for x in load['after_timing'])} after timing",
             "", f"{'variant':<22}{'threads':>8}  {'ms/patch':>9}{'(min)':>8}{'x realtime':>11}{'vs TF':>8}  input",
             "-" * 118]
    for r in result["rows"]:
        lines.append(f"{r['variant']:<22}{r['threads']:>8}  {r['ms_per_patch']:>9.2f}{r['min_ms_per_patch']:>8.2f}"
                     f"{r['realtime_x']:>10.0f}x{r['speed_vs_tensorflow']:>7.2f}x  {r['input']}")
    checks = result["checks"]
    lines += ["", "ms/patch: median (min) over the rounds; x realtime = patch seconds / median; vs TF = median over "
              "the rounds of TensorFlow's time / the row's time in the same round (> 1: faster than the original musicnn)",
              f"same network: max |TF - torch| penultimate embedding {checks['max_abs_tf_vs_torch_embedding']:.2e} "
              f"(values up to {checks['embedding_max_abs']:.1f}); every filter against the 73 varying ones: "
              f"{checks['max_abs_every_filter_vs_torch_embedding']:.2e}"]
    if result.get("accuracy"):
        acc = result["accuracy"]
        kept = "within" if acc["int8_kept"] else "NOT within"
        lines += [f"int8 ({', '.join(result['int8_quantized_nodes'])} quantized): max |int8 - fp32| window "
                  f"probability {checks['max_abs_int8_vs_fp32_window_probs']:.3f}",
                  f"accuracy on {acc['split']}: fp32 {100 * acc['onnx fp32']:.1f} % (every filter "
                  f"{100 * acc['onnx fp32 every filter']:.1f} %), int8 {100 * acc['onnx int8']:.1f} % "
                  f"(top-1 agreement {100 * acc['int8_agrees_with_fp32']:.1f} %): {kept} {KEEP_POINTS} points of fp32, "
                  f"int8 {'kept' if acc['int8_kept'] else 'rejected (not adopted)'}"]
    else:
        lines.append("int8 and accuracy: skipped (no gtzan-mini/gtzan-extra: calibration needs the train clips)")
    lines += ["", "onnx fp32, windows per call (a 30 s clip is 10): ms per window, and its ratio to 10 per call",
              f"{'batch':>6}{'threads':>8}{'ms/window':>11}{'vs 10':>7}"]
    lines += [f"{r['batch']:>6}{r['threads']:>8}{r['ms_per_window']:>11.2f}{r['vs_batch_10']:>7.2f}"
              for r in result["batch_sizes"]]
    lines += ["", "cold start (wall, fresh process, median of 3 after one untimed run):"]
    lines += [f"  {name:<36}{c['median_s']:>7.2f} s" for name, c in result["cold_start"].items()]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="alternating rounds, median kept (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the multi-threaded rows (default: %(default)s)")
    parser.add_argument("--gtzan-mini", type=Path, default=SHARED / "gtzan-mini")
    parser.add_argument("--gtzan-extra", type=Path, default=SHARED / "gtzan-extra")
    parser.add_argument("--tf-env", type=Path, default=TF_ENV, help="TensorFlow venv, made if missing (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "networks.json",
                        help="JSON results; the markdown goes beside it (default: %(default)s)")
    parser.add_argument("--tf-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tf_worker:
        tf_worker(args.tf_worker, args.threads)
        return
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")

    from common import cpu_name  # beside this file
    from genrekit.atomic import write_text

    with tempfile.TemporaryDirectory(prefix="genrekit-networks-") as folder:
        result = measure(args, folder)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "repeats": args.repeats,
            "cpu_count": os.cpu_count(), "cpu": cpu_name(), "platform": platform.platform(), "python": platform.python_version(),
            "command": "benchmarks/networks.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    lines = report(meta, result)
    print("\n" + "\n".join(lines))
    write_text(args.out, json.dumps({**meta, **result}, indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), "\n".join(["# Per-network speed", "", f"{meta['date']}; "
                                                        f"`{meta['command']}`", "", "```", *lines, "```", ""]))
    print(f"saved {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
