"""The `fast` model as a distilled student: a from-scratch log-mel CNN that learns the default model's
probabilities for real GTZAN clips beside their labels.

    .venv/bin/python benchmarks/distillation.py [--students ...] [--midi-clips M] [--write-fast]

Students (the paper's cnn-logmel, trained on the real train split of gtzan-mini and gtzan-extra, early-stopped
on valid, resumable; `--views` fixed augmented windows per training clip, which the teacher scores once):
  labels          labels only (teacher weight 0), on the same fixed views: what distillation adds
  distilled       half the target the teacher's probabilities, half the label
  teacher         the teacher's probabilities only
  distilled-32    32 views per clip, targets 0.7 the teacher's
  distilled-mixup distilled, with mixup (Beta(0.4, 0.4)) of its views and their targets
  distilled-midi  distilled, with the rendered MIDI train songs of the six genres MIDI shares with GTZAN added
                  (`--midi-clips`, a manifest from `genrekit data render-midi --split train,test`)

Reported beside the teacher (`--teacher`, by default the bundled default model) and the bundled fast model:
accuracy, macro-F1 and per-genre accuracy on the real valid split, accuracy on the rendered MIDI test songs of
the shared genres, and speed of each through onnxruntime (a 30 s clip and a 5-minute signal, model loaded
once, runs alternating), as x realtime and as a ratio to the teacher. `--write-fast` writes the student with
the best valid macro-F1 (valid's genres are unbalanced, and a student that gave up a genre could still win on
accuracy), calibrated (temperature scaling on valid), as genrekit/weights/fast.pt and its card fast.json.
"""

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import SHARED, new_parser, write_report
from real_music_gtzan import (GENRES, SHARED_WITH_MIDI, card_figures, midi_test_shared, real_tracks,
                              rendered_midi, write_bundled)
from genrekit.cache import DEFAULT_CACHE_DIR, FeatureCache
from genrekit.checkpoints import load_members
from genrekit.datasets import select
from genrekit.ensemble import Ensemble
from genrekit.evaluation import evaluate_checkpoint
from genrekit.plots import plot_per_label_accuracy
from genrekit.predict import BUNDLED_MODELS, cached_onnx_scorer
from genrekit.scoring import score_audio
from genrekit.training import TrainConfig, train

STUDENT = TrainConfig(model="cnn-logmel", epochs=50, patience=10, windows_per_clip=4, augment=True,
                      teacher_weight=0.5)
STUDENTS = {"labels": {"teacher_weight": 0.0}, "distilled": {}, "teacher": {"teacher_weight": 1.0},
            "distilled-midi": {}, "distilled-32": {"views": 32, "teacher_weight": 0.7},
            "distilled-mixup": {"mixup": 0.4}}


def student_config(name, args):
    return replace(STUDENT, **{"views": args.views, "seed": args.seed, "teacher": str(args.teacher),
                               **STUDENTS[name]})


def train_student(name, tracks, args, cache):
    config = student_config(name, args)
    train_tracks = select(tracks, "train")
    if name.endswith("-midi"):
        train_tracks += [t for t in rendered_midi(args) if t.label in SHARED_WITH_MIDI and t.split == "train"]
    return train(config, train_tracks, select(tracks, "valid"), args.runs / name, labels=GENRES, cache=cache)


def realtime(paths, repeats):
    """{name: {signal: x realtime}} through onnxruntime, every model on the same signals, runs alternating."""
    scorers = {name: cached_onnx_scorer(path)[0] for name, path in paths.items()}
    sr = next(iter(scorers.values())).params.sr
    rng = np.random.default_rng(0)
    signals = {"30 s clip": rng.standard_normal(30 * sr).astype(np.float32) * 0.1,
               "5-min signal": rng.standard_normal(300 * sr).astype(np.float32) * 0.1}
    times = {name: {signal: [] for signal in signals} for name in scorers}
    for repeat in range(repeats + 1):
        for signal, y in signals.items():
            for name, scorer in scorers.items():
                began = time.perf_counter()
                score_audio(scorer, y, sr=sr).clip_log_probs()
                if repeat:  # the first round warms up
                    times[name][signal].append(time.perf_counter() - began)
    return {name: {signal: len(signals[signal]) / sr / float(np.median(t)) for signal, t in by_signal.items()}
            for name, by_signal in times.items()}


def markdown(report):
    lines = [f"## Real GTZAN valid split ({report['valid_clips']} clips; train {report['train_clips']})", "",
             "| model | valid acc | valid F1 | MIDI test, shared genres | 30 s clip x realtime | 5-min x realtime "
             "| speed / teacher | " + " | ".join(GENRES) + " |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(GENRES)]
    for name, row in report["rows"].items():
        valid, speed = row["valid"], row["realtime"]
        genres = " | ".join("" if valid["per_label_accuracy"][g] is None else f"{valid['per_label_accuracy'][g]:.2f}"
                            for g in GENRES)
        midi = f"{row['midi']['accuracy']:.3f}" if row.get("midi") else "-"
        ratio = speed["30 s clip"] / report["rows"]["teacher"]["realtime"]["30 s clip"]
        lines.append(f"| {name} | {valid['accuracy']:.3f} | {valid['macro_f1']:.3f} | {midi} | {speed['30 s clip']:.0f} "
                     f"| {speed['5-min signal']:.0f} | {ratio:.1f} | {genres} |")
    lines += ["", f"Speed: onnxruntime with its default threads on {os.cpu_count()} cores, median of "
              f"{report['repeats']} alternating runs, features included; load average {report['load']}."]
    return "\n".join(lines) + "\n"


def write_fast(name, path, tracks, report, args):
    """The student `name`, calibrated on valid, as the bundled `fast` model and its card."""
    ensemble = Ensemble(load_members([path]), "weighted").fit(select(tracks, "valid"), calibrate=True)
    row = report["rows"][name]
    config = student_config(name, args)
    teacher = "the default model" if args.teacher == BUNDLED_MODELS["default"] else str(args.teacher)
    train_note = " and the rendered MIDI train songs of six shared genres" if name.endswith("-midi") else ""
    card = {"name": "fast", "version": time.strftime("%Y.%m.%d"), "labels": GENRES,
            "kind": f"single model (cnn-logmel distilled from {teacher}), "
                    f"calibrated (temperature {ensemble.temperature:.2f})",
            "members": {"cnn-logmel": 1.0},
            "training_data": f"real GTZAN recordings: {report['train_clips']} train clips of gtzan-mini and "
                             f"gtzan-extra (fault-filtered split){train_note}, {config.views} augmented views each, "
                             f"targets {config.teacher_weight:g} the probabilities of {teacher} and the rest the "
                             "label; early stopping "
                             f"and temperature on {report['valid_clips']} valid clips",
            "held_out": {"gtzan_valid": card_figures(row["valid"])},
            "speed_x_realtime": {signal: round(x) for signal, x in row["realtime"].items()},
            "chance": 1 / len(GENRES)}
    if row.get("midi"):
        card["held_out"]["midi_test_shared_genres"] = card_figures(row["midi"])
    write_bundled(ensemble, "fast", card)


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--gtzan-extra", type=Path, default=SHARED / "gtzan-extra")
    parser.add_argument("--students", nargs="+", default=["labels", "distilled"], choices=list(STUDENTS))
    parser.add_argument("--views", type=int, default=16, help="Augmented windows per training clip.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="Timed runs per model and signal.")
    parser.add_argument("--midi-clips", type=Path, help="A manifest of rendered MIDI clips: train ones for "
                        "distilled-midi, test ones for the MIDI figures.")
    parser.add_argument("--teacher", type=Path, default=BUNDLED_MODELS["default"], help="The model the students "
                        "learn from (default: the bundled default, which was trained on valid too, so students of it "
                        "score optimistically on valid; the train-only members real_music.py leaves in its runs "
                        "folder, e.g. real/musicnn-layers-mixup-x5/averaged.pt, do not).")
    parser.add_argument("--write-fast", action="store_true", help="Write the best student as the fast model.")
    parser.set_defaults(runs=DEFAULT_CACHE_DIR / "runs" / "distillation")
    args = parser.parse_args()
    if "distilled-midi" in args.students and not args.midi_clips:
        parser.error("distilled-midi needs --midi-clips")
    began = time.perf_counter()
    cache = FeatureCache(args.cache)
    tracks = real_tracks(args)
    valid = select(tracks, "valid")
    paths = {name: train_student(name, tracks, args, cache) for name in args.students}
    models = {"teacher": args.teacher, "fast (bundled)": BUNDLED_MODELS["fast"], **paths}
    speed = realtime(models, args.repeats)
    rows = {}
    for name, path in models.items():
        rows[name] = {"valid": evaluate_checkpoint(path, valid, progress=False), "realtime": speed[name]}
        if args.midi_clips:
            rows[name]["midi"] = midi_test_shared(path, args)
    report = {"train_clips": len(select(tracks, "train")), "valid_clips": len(valid), "rows": rows,
              "repeats": args.repeats, "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
              "minutes": (time.perf_counter() - began) / 60}
    args.out.mkdir(parents=True, exist_ok=True)
    plot_per_label_accuracy({name: row["valid"] for name, row in rows.items()}, args.out / "distillation_per_genre.png",
                            title="Students and teacher, per genre, real GTZAN valid split")
    write_report(report, markdown(report), args.out, "distillation", "Distillation benchmark: the fast model")
    if args.write_fast:
        best = max(paths, key=lambda name: (rows[name]["valid"]["macro_f1"], rows[name]["valid"]["accuracy"]))
        write_fast(best, paths[best], tracks, report, args)


if __name__ == "__main__":
    main()
