"""The bundled default model on real recordings: held-out figures, loudness, renderings, the demo, fast, cost.

    .venv/bin/python benchmarks/real_music.py --real-extra ~/genrekit-data/real-extra \
        [--midi-clips midi-clips/manifest.csv] [--model genrekit/weights/default.pt]

1. Makes the default's recipe (`genrekit.bundled.train_bundled`) without the refit, in `--runs`: that model saw
   no valid clip, so its valid figures are honest (the shipped model is the same recipe refitted on train and
   valid, which can no longer be measured there). GTZAN valid (gtzan-mini + gtzan-extra) and real-extra valid,
   per source and per genre, by the label-set rule (a prediction in the clip's set is right; per-genre
   figures over clips with one genre); confusion matrices drawn.
2. Loudness (the shipped model): the first three gtzan-mini clips of each genre played 0 to 40 dB quieter:
   how many keep their genre.
3. Clips outside the taxonomy (real-extra clips whose label set is empty: Latin, folk, ...; never trained on):
   how often `--min-confidence 0.5` marks them uncertain, against the in-taxonomy valid clips.
4. Rendered MIDI test songs (`genrekit data render-midi ... --split train,test`; never trained on) and the
   demo's four example songs (the shipped model).
5. `fast` against the default on both valid sets (the genres `fast` has), and the cost of a 30 s clip
   with torch and onnxruntime.
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, SHARED, cpu_name, inference_ms, write_report
from genrekit.audio import load_audio
from genrekit.bundled import GENRES, bundled_tracks, train_bundled
from genrekit.cache import DEFAULT_CACHE_DIR, FeatureCache
from genrekit.datasets import load_dataset, select
from genrekit.evaluation import classification_metrics, clip_log_probs
from genrekit.examples import write_example_songs
from genrekit.plots import plot_confusion, plot_per_label_accuracy
from genrekit.predict import BUNDLED_MODELS, load
from genrekit.probe import clip_means

LEVELS_DB = (0, -10, -20, -30, -40)


def held_out(classifier, valid):
    """Metrics of `classifier` on the valid tracks: all, per set, with each clip's label set restricted to the
    classifier's genres (clips left without one are not scored)."""
    known = [t.replace(label="|".join(g for g in t.label_set if g in classifier.labels)) for t in valid]
    known = [t for t in known if t.label]
    sets = {"all valid": known, **{name: [t for t in known if t.source == name]
                                   for name in sorted({t.source for t in known})}}
    out = {}
    for name, tracks in sets.items():
        log_probs, targets = clip_log_probs(classifier.scorer, tracks, progress=False)
        out[name] = classification_metrics(targets, log_probs.argmax(1), classifier.labels)
    out["real-extra"] = _pooled(out, [name for name in out if name.startswith("real-extra")], classifier.labels)
    return out


def _pooled(metrics, names, labels):
    """Accuracy over several sets (clip-weighted): what the issue's targets name."""
    n = sum(metrics[name]["n"] for name in names)
    return {"n": n, "accuracy": sum(metrics[name]["accuracy"] * metrics[name]["n"] for name in names) / max(n, 1),
            "labels": list(labels)}


def without_rnb_soul(args, l2):
    """rnb_soul kept or not: per-genre recall on valid of the recipe's train-only probe with twelve genres and
    with eleven (clips whose set is only rnb_soul left out of both comparisons' accuracy)."""
    from genrekit.bundled import Features, fit_default

    out = {}
    for name, labels in (("twelve", GENRES), ("eleven", [g for g in GENRES if g != "rnb_soul"])):
        tracks = bundled_tracks(args.gtzan, [args.real_extra], args.renderings, labels)
        features = Features(select(tracks, "train"), labels, FeatureCache(), progress=False)
        valid = Features(select(tracks, "valid"), labels, FeatureCache(), views=False, progress=False)
        model = fit_default(features, l2)
        with torch.no_grad():
            predicted = model.head(torch.from_numpy(clip_means(valid.clean)).float()).argmax(1).numpy()
        shared = np.array([bool(set(t.label_set) - {"rnb_soul"}) for t in valid.tracks])
        right = valid.clean.targets[np.arange(len(predicted)), predicted]
        metrics = classification_metrics(valid.clean.targets, predicted, labels)
        out[name] = {"accuracy_on_shared_clips": float(right[shared].mean()), "n_shared": int(shared.sum()),
                     "per_label_accuracy": metrics["per_label_accuracy"], "support": metrics["support"]}
    return out


def level_sweep(classifier, gtzan):
    """For the first three clips of each GTZAN genre: the genre at each level, and how many keep the 0 dB one."""
    tracks = sorted(load_dataset(f"gtzan:{gtzan}"), key=lambda t: t.path)
    clips = [path for genre in sorted({t.label for t in tracks})
             for path in [t.path for t in tracks if t.label == genre][:3]]
    genres = {db: [] for db in LEVELS_DB}
    for path in clips:
        y = load_audio(path)
        for db in LEVELS_DB:
            genres[db].append(classifier.predict(y * np.float32(10 ** (db / 20)), sr=22050).genre)
    return {"clips": len(clips), "kept": {db: sum(a == b for a, b in zip(genres[0], genres[db])) for db in LEVELS_DB},
            "right_at_0_db": sum(Path(p).parent.name == g for p, g in zip(clips, genres[0]))}


def uncertainty(classifier, outside, inside, threshold=0.5):
    """Share of clips whose top probability is under `threshold` (marked uncertain by `--min-confidence`)."""
    def share(tracks):
        top = [classifier.predict(t.path).top(1)[0][1] for t in tracks]
        return {"n": len(top), "uncertain": float(np.mean(np.array(top) < threshold))}

    return {"threshold": threshold, "outside the taxonomy": share(outside), "in the taxonomy (valid)": share(inside)}


def demo_songs(classifier):
    """The genre named for each of the demo's example songs (rendered from MIDI; never trained on)."""
    with tempfile.TemporaryDirectory() as folder:
        songs = [p for p in write_example_songs(Path(folder)) if p.stem != "example-loop"]
        return {p.stem.removeprefix("example-"): classifier.predict(p).top(2) for p in songs}


def fmt_sets(metrics):
    order = ["all valid", "gtzan", "real-extra", *sorted(n for n in metrics if n.startswith("real-extra:"))]
    return [f"| {name} | {metrics[name]['n']} | {metrics[name]['accuracy']:.3f} |" for name in order if name in metrics]


def markdown(report):
    lines = ["## Held out: valid clips, the recipe fitted on train only", "",
             "| set | clips | accuracy (label-set rule) |", "| --- | ---: | ---: |", *fmt_sets(report["valid"]), "",
             "Per genre (clips with one genre; recall):", "", "| set | " + " | ".join(GENRES) + " |",
             "| --- |" + " ---: |" * len(GENRES)]
    for name, m in report["valid"].items():
        if "per_label_accuracy" in m:
            lines.append(f"| {name} | " + " | ".join(
                "" if m["per_label_accuracy"][g] is None else f"{m['per_label_accuracy'][g]:.2f} ({m['support'][g]})"
                for g in GENRES) + " |")
    lines += ["", f"Calibration (ECE, 15 bins): {report['card']['calibration']['ece_before']:.3f} before, "
              f"{report['card']['calibration']['ece_after']:.3f} after temperature scaling (cross-validated by "
              f"group; temperature {report['card']['calibration']['temperature']:.2f}). Recipe: "
              f"{report['card']['recipe']}.", ""]
    twelve, eleven = report["rnb_soul"]["twelve"], report["rnb_soul"]["eleven"]
    lines += ["## rnb_soul: twelve genres or eleven (train-only probe, valid)", "",
              f"Accuracy on the {twelve['n_shared']} valid clips with a genre besides rnb_soul: "
              f"{twelve['accuracy_on_shared_clips']:.3f} with rnb_soul, {eleven['accuracy_on_shared_clips']:.3f} "
              f"without; rnb_soul recall {twelve['per_label_accuracy']['rnb_soul']:.2f} on "
              f"{twelve['support']['rnb_soul']} clips. Per genre (with / without): " + ", ".join(
                  f"{g} {twelve['per_label_accuracy'][g]:.2f} / {eleven['per_label_accuracy'][g]:.2f}"
                  for g in eleven["per_label_accuracy"] if twelve["per_label_accuracy"][g] is not None), ""]
    sweep = report["levels"]
    lines += ["## Loudness (shipped model)", "",
              f"{sweep['clips']} gtzan-mini clips (three per genre), genre kept against 0 dB: " + ", ".join(
                  f"{db} dB {kept}/{sweep['clips']}" for db, kept in sweep["kept"].items()), ""]
    u = report["uncertainty"]
    lines += ["## Clips outside the taxonomy (shipped model)", "",
              f"Marked uncertain at --min-confidence {u['threshold']}: " + "; ".join(
                  f"{name}: {v['uncertain']:.2f} of {v['n']}" for name, v in u.items() if name != "threshold"), ""]
    if "midi_test" in report:
        m = report["midi_test"]
        lines += ["## Rendered MIDI test songs (shipped model; their artists never trained on)", "",
                  f"{m['n']} songs: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}; per genre " + ", ".join(
                      f"{g} {a:.2f}" for g, a in m["per_label_accuracy"].items() if a is not None), ""]
    lines += ["## The demo's example songs (shipped model)", "", "| song | top two |", "| --- | --- |"]
    lines += [f"| {song} | " + ", ".join(f"{g} {p:.2f}" for g, p in top) + " |" for song, top in report["demo"].items()]
    lines += ["", "## fast against default (valid clips of the genres fast has)", "",
              "| model | set | clips | accuracy |", "| --- | --- | ---: | ---: |"]
    for model, metrics in report["fast_vs_default"].items():
        lines += [f"| {model} |{row[1:]}" for row in fmt_sets(metrics)]
    lines += ["", f"## Cost of a 30 s clip ({report['cpu']}, load {report['load']:.1f})", "",
              "| model | torch ms | onnxruntime ms | x realtime (onnxruntime) |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {c['torch']:.0f} | {c['onnx']:.0f} | {30000 / c['onnx']:.0f} |"
              for name, c in report["cost"].items()]
    return "\n".join(lines) + "\n"


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-extra", type=Path, default=os.environ.get("GENREKIT_REAL_EXTRA"), required=
                        "GENREKIT_REAL_EXTRA" not in os.environ, help="The folder build.py laid real-extra out in.")
    parser.add_argument("--gtzan", type=Path, nargs="+", default=[SHARED / "gtzan-mini", SHARED / "gtzan-extra"])
    parser.add_argument("--renderings", type=Path, nargs="*", default=[], help="Manifest(s) of rendered MIDI songs "
                        "whose train split the recipe learns from too (as the shipped model did: its card says).")
    parser.add_argument("--midi-clips", type=Path, help="A manifest of rendered MIDI clips (its test split is scored).")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODELS["default"], help="The shipped model.")
    parser.add_argument("--runs", type=Path, default=DEFAULT_CACHE_DIR / "runs" / "real-music-train-only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    began = time.perf_counter()
    card = train_bundled(args.runs, gtzan=args.gtzan, real_extra=[args.real_extra], renderings=args.renderings,
                         refit=False)
    valid = select(bundled_tracks(args.gtzan, [args.real_extra]), "valid")
    train_only = load(args.runs / "default.pt", backend="torch")
    shipped, fast = load(args.model, backend="torch"), load("fast", backend="torch")
    report = {"card": card, "valid": held_out(train_only, valid)}
    for name, metrics in report["valid"].items():
        if "confusion" in metrics:
            plot_confusion(metrics, args.out / f"real_music_confusion_{name.replace(':', '_').replace(' ', '_')}.png",
                           title=f"default (train-only recipe) on {name} valid, n={metrics['n']}")
    plot_per_label_accuracy({name: m for name, m in report["valid"].items() if "per_label_accuracy" in m},
                            args.out / "real_music_per_genre.png", title="Per-genre recall on valid (train-only recipe)")
    report["rnb_soul"] = without_rnb_soul(args, card["l2"])
    report["levels"] = level_sweep(shipped, args.gtzan[0])
    outside = [t for t in load_dataset(f"real-extra:{args.real_extra}") if not t.label_set]
    report["uncertainty"] = uncertainty(shipped, outside, [t for t in valid if t.source.startswith("real-extra")])
    if args.midi_clips:
        rendered = [t for t in select(load_dataset(f"csv:{args.midi_clips}"), "test") if t.label in GENRES]
        log_probs, targets = clip_log_probs(shipped.scorer, rendered, progress=False)
        report["midi_test"] = classification_metrics(targets, log_probs.argmax(1), shipped.labels)
    report["demo"] = demo_songs(shipped)
    report["fast_vs_default"] = {"default (train-only recipe)": held_out(train_only, [
        t for t in valid if set(t.label_set) & set(fast.labels)]), "fast": held_out(fast, valid)}
    report["cost"] = {name: {"torch": inference_ms(model), "onnx": inference_ms(model, backend="onnx")}
                      for name, model in (("default", "default"), ("fast", "fast"))}
    report["cpu"], report["load"] = cpu_name(), os.getloadavg()[0]
    report["minutes"] = (time.perf_counter() - began) / 60
    write_report(report, markdown(report), args.out, "real_music", "The bundled default on real recordings")


if __name__ == "__main__":
    main()
