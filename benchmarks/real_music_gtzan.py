"""Genre models learned from GTZAN's real recordings alone: the ten GTZAN genres from ../shared/data/gtzan-mini and
gtzan-extra (the member comparison behind the bundled default of 2026-12-04; today's default comes from
`genrekit train-bundled` and is measured by benchmarks/real_music.py).

    .venv/bin/python benchmarks/real_music_gtzan.py [--members ...] [--midi] [--refit]

Data: gtzan-mini and gtzan-extra merged as one GTZAN track set (files of one track id are one group, the
fault-filtered split decides train / valid; test clips and clips of no split are never trained on).
Excerpts shorter than a window are looped. Valid has no hiphop or reggae and one pop clip: figures are
given per genre.

Members (each trained on the train split, early-stopped on valid, resumable; checkpoints under the cache):
  musicnn-head     frozen MSD_musicnn, MLP head on its penultimate embeddings
  musicnn-layers   frozen MSD_musicnn, MLP head on all its pooled layers, penultimate embeddings and tags
  musicnn-layers-mixup  musicnn-layers trained with mixup (Beta(1, 1)) of its windows' features and labels
  musicnn-layers-mixup-x5  musicnn-layers-mixup trained with five seeds (`--seed` and the four after it), one
                   model averaging their heads' probabilities (one pass of musicnn)
  vgg-layers-mixup(-x5)  the same on frozen MSD_vgg (`network="msd_vgg"`): its pooled blocks, last block
                   and tags
  musicnn-midend   MSD_musicnn with its mid-end and dense layer adapted (fine-tuned) on frozen front-end
                   features
  musicnn-all      the whole MSD_musicnn network fine-tuned (its batch-norm statistics kept) at a low learning
                   rate, starting from the bundled default model (musicnn-layers: the head trained first)
  cnn-logmel       the paper's log-mel CNN, from scratch
all with augmentation (speed 0.8-1.25x, pitch +-2 semitones, noise 10-40 dB SNR); the musicnn members see
`--views` augmented windows per clip, embedded once.

Scored on valid through the prediction path (genrekit.evaluation): every member, and the weighted and
stacking ensembles of every subset of members. Ensemble figures come twice: fitted and scored on valid (as
the paper does, optimistic) and by 5-fold cross-validation over valid's track groups (fitted on four folds,
scored on the fifth): the choice is made by the latter, among the members and weighted averages only
(stacking fitted on valid would never predict hiphop or reggae, which valid lacks). Calibration (temperature scaling) is measured the
same way (ECE, 15 bins). `--reverse` adds an artist-disjoint check the other way (members trained on valid,
scored on train, on the genres valid has). `--midi` adds members trained on real clips plus the rendered
MIDI train split (the genres both share) to measure whether renderings help on real recordings.

`--refit` measures what more real data is worth: each half of valid (split at each genre's median GTZAN id,
so few artists are in both) is scored by the chosen members trained on train plus the other half, for the
epochs early stopping chose with train alone, against the members trained on train alone.
"""

import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from common import RESULTS, SHARED, inference_ms, load_benchmark_data, new_parser, write_report
from genrekit.atomic import write_text
from genrekit.cache import DEFAULT_CACHE_DIR, FeatureCache
from genrekit.checkpoints import load_checkpoint, load_members, save_checkpoint
from genrekit.combiners import fit_temperature, make_combiner, temper
from genrekit.datasets import class_counts, load_dataset, merge, select, split_by_group
from genrekit.ensemble import Ensemble
from genrekit.evaluation import classification_metrics, evaluate_checkpoint, expected_calibration_error
from genrekit.models.backbone import average_heads
from genrekit.models.musicnn import WEIGHTS
from genrekit.plots import plot_confusion, plot_per_label_accuracy
from genrekit.predict import BUNDLED_MODELS
from genrekit.training import TrainConfig, train

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
MEMBERS = {
    "musicnn-head": TrainConfig(model="backbone-musicnn", epochs=150, patience=20, lr=1e-3, windows_per_clip=4,
                                augment=True, model_kwargs={"fine_tune": "head", "hidden": 64}),
    "musicnn-layers": TrainConfig(model="backbone-musicnn", epochs=150, patience=20, lr=1e-3, windows_per_clip=4,
                                  augment=True, model_kwargs={"fine_tune": "head", "layers": "all", "hidden": 64}),
    "musicnn-midend": TrainConfig(model="backbone-musicnn", epochs=40, patience=8, lr=3e-4, windows_per_clip=4,
                                  augment=True, model_kwargs={"fine_tune": "midend", "hidden": 64}),
    "musicnn-all": TrainConfig(model="backbone-musicnn", epochs=20, patience=6, lr=5e-5, windows_per_clip=4,
                               augment=True, start_from=str(BUNDLED_MODELS["default"]),
                               model_kwargs={"fine_tune": "all", "layers": "all", "hidden": 64}),
    "cnn-logmel": TrainConfig(model="cnn-logmel", epochs=30, patience=8, windows_per_clip=4, augment=True),
}
MEMBERS["musicnn-layers-mixup"] = replace(MEMBERS["musicnn-layers"], mixup=1.0)
MEMBERS["vgg-layers-mixup"] = replace(MEMBERS["musicnn-layers-mixup"], model_kwargs={
    **MEMBERS["musicnn-layers-mixup"].model_kwargs, "network": "msd_vgg"})
AVERAGED = {"musicnn-layers-mixup-x5": ("musicnn-layers-mixup", 5), "vgg-layers-mixup-x5": ("vgg-layers-mixup", 5)}
"""Members that are another member trained with several seeds (`--seed` and the next ones), their heads
averaged in one model (`genrekit.models.backbone.average_heads`: one pass of the network for all)."""
SHARED_WITH_MIDI = ["classical", "country", "hiphop", "jazz", "pop", "rock"]


def real_tracks(args):
    return merge(load_dataset(f"gtzan:{args.gtzan}"), load_dataset(f"gtzan:{args.gtzan_extra}"))


def train_members(names, train_tracks, valid_tracks, args, folder, cache, refit_of=None):
    """{name: checkpoint path} of members trained on `train_tracks`, early-stopped on `valid_tracks`; or, with
    `refit_of` ({name: checkpoint path} of the same members trained that way), with nothing held out for the
    epochs early stopping chose there."""
    paths = {}
    if refit_of:
        valid_tracks, train_tracks = [], [t.replace(split="train") for t in train_tracks]
    for name in names:
        base, seeds = AVERAGED.get(name, (name, 1))
        if refit_of:
            metrics = load_checkpoint(refit_of[name])[1]["metrics"]
            epochs = metrics["best_epochs"] if "best_epochs" in metrics else [metrics["best_epoch"]]
        else:
            epochs = [None] * seeds
        out = args.runs / folder / name
        trained = [train(replace(MEMBERS[base], views=args.views, seed=args.seed + k, **({"epochs": e} if e else {})),
                         train_tracks, valid_tracks, out / f"seed{k}" if seeds > 1 else out, labels=GENRES,
                         cache=cache) for k, e in enumerate(epochs)]
        paths[name] = trained[0] if seeds == 1 else averaged_checkpoint(trained, out / "averaged.pt")
    return paths


def recipe(name):
    """The training configuration of member `name`."""
    return MEMBERS[AVERAGED.get(name, (name, 1))[0]]


def averaged_checkpoint(paths, out):
    """The checkpoints at `paths` (one member trained with several seeds) as one model averaging their heads."""
    models, infos = zip(*(load_checkpoint(path) for path in paths))
    save_checkpoint(out, average_heads(models), labels=infos[0]["labels"],
                    params=infos[0]["feature_params"], window_seconds=infos[0]["window_seconds"],
                    metrics={"best_epochs": [info["metrics"]["best_epoch"] for info in infos]})
    return out


def member_probs(paths, tracks):
    """(member probabilities [shape=(n_members, n_clips, n_labels)], targets) through the predict path."""
    probs, targets, _ = Ensemble(load_members(list(paths.values())), "equal").member_probs(tracks)
    return probs, targets


def cross_validated(kind, probs, y, groups, seed=0, calibrate=False):
    """Probabilities of each valid clip from a combiner (and temperature) fitted on the other folds."""
    out = np.zeros(probs.shape[1:])
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    for fit, held in folds.split(np.zeros(len(y)), y, groups):
        combiner = make_combiner(kind, seed).fit(probs[:, fit], y[fit])
        temperature = fit_temperature(combiner.predict_proba(probs[:, fit]), y[fit]) if calibrate else 1.0
        out[held] = temper(combiner.predict_proba(probs[:, held]), temperature)
    return out


def ensemble_rows(names, probs, y, groups):
    """Metrics of every member and of the weighted and stacking ensembles of every subset of them."""
    rows = {}
    for i, name in enumerate(names):
        rows[name] = {"valid": classification_metrics(y, probs[i].argmax(1), GENRES), "members": [name]}
    for size in range(2, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            chosen = probs[list(subset)]
            for kind in ("weighted", "stacking"):
                combiner = make_combiner(kind).fit(chosen, y)
                fitted = combiner.predict_proba(chosen)
                cv = cross_validated(kind, chosen, y, groups)
                label = f"{kind}: " + " + ".join(names[i] for i in subset)
                rows[label] = {"valid": classification_metrics(y, fitted.argmax(1), GENRES),
                               "valid_cv": classification_metrics(y, cv.argmax(1), GENRES),
                               "members": [names[i] for i in subset], "kind": kind,
                               "weights": getattr(combiner, "weights_", np.array([])).round(3).tolist()}
    return rows


def calibration(kind, probs, raw, y, groups):
    """ECE of the ensemble's valid probabilities, cross-validated, without (`raw`: `cross_validated` of `probs`)
    and with temperature scaling."""
    scaled = cross_validated(kind, probs, y, groups, calibrate=True)
    fitted = make_combiner(kind).fit(probs, y).predict_proba(probs)
    return {"ece_before": expected_calibration_error(raw, y), "ece_after": expected_calibration_error(scaled, y),
            "temperature": fit_temperature(fitted, y)}


def by_length(probs, y, valid, args):
    """Accuracy of `probs` on valid's whole 30 s clips (gtzan-mini; the test split is such clips) and on the rest
    (gtzan-extra's 2-3 s excerpts and 15 s classical clips)."""
    whole = np.array([Path(t.path).resolve().is_relative_to(args.gtzan.resolve()) for t in valid])
    return {part: classification_metrics(y[mask], probs[mask].argmax(1), GENRES)
            for part, mask in (("30 s clips", whole), ("excerpts and 15 s clips", ~whole))}


def reverse_check(names, tracks, args, cache):
    """Members trained on valid, early-stopped on a fifth of it, scored on train (genres valid has)."""
    valid = select(tracks, "valid")
    known = {t.label for t in valid}
    fit_tracks = [t.replace(split=None) for t in valid]
    fit_tracks = split_by_group(fit_tracks, valid=0.2, test=0.0, seed=args.seed)
    scored = [t.replace(split="valid") for t in select(tracks, "train") if t.label in known]
    paths = train_members(names, select(fit_tracks, "train"), select(fit_tracks, "valid"), args, "reverse", cache)
    probs, y = member_probs(paths, scored)
    return {name: classification_metrics(y, probs[i].argmax(1), GENRES) for i, name in enumerate(names)}


def valid_halves(valid):
    """Valid in two halves, each genre's clips split at the median GTZAN id: GTZAN numbers an artist's clips
    consecutively, so the halves share few artists (one at most per genre where a run crosses the median)."""
    halves = ([], [])
    for genre in sorted({t.label for t in valid}):
        ids = sorted({Path(t.path).stem for t in valid if t.label == genre})
        first = set(ids[:len(ids) // 2])
        for t in valid:
            if t.label == genre:
                halves[Path(t.path).stem not in first].append(t)
    return halves


def more_data_check(names, tracks, paths, alone, args, cache):
    """What adding valid-like clips to train is worth: each half of valid scored by members trained on train
    plus the other half, against the members trained on train alone (`alone`: their probabilities on valid)."""
    valid = select(tracks, "valid")
    halves = valid_halves(valid)
    probs, y = [], []
    for i, held in enumerate(halves):
        refitted = train_members(names, select(tracks, "train") + halves[1 - i], [], args, f"half-{i}", cache, paths)
        half_probs, half_y = member_probs(refitted, held)
        probs.append(half_probs)
        y.append(half_y)
    probs, y = np.concatenate(probs, axis=1), np.concatenate(y)
    order = {t.key: i for i, t in enumerate(valid)}
    alone = alone[:, [order[t.key] for t in halves[0] + halves[1]]]
    return {name: {"train_only": classification_metrics(y, alone[i].argmax(1), GENRES),
                   "with_other_half": classification_metrics(y, probs[i].argmax(1), GENRES)}
            for i, name in enumerate(names)}


def rendered_midi(args):
    """The rendered MIDI clips: `--midi-clips` (a manifest) or the whole corpus (rendered when missing)."""
    return load_dataset(f"csv:{args.midi_clips}") if args.midi_clips else load_benchmark_data("midi", args)


def midi_mix(names, tracks, args, cache):
    """Members trained on the real train clips plus the rendered MIDI train split of the shared genres."""
    rendered = [t for t in rendered_midi(args) if t.label in SHARED_WITH_MIDI and t.split == "train"]
    paths = train_members(names, select(tracks, "train") + rendered, select(tracks, "valid"), args, "with-midi", cache)
    probs, y = member_probs(paths, select(tracks, "valid"))
    return paths, {name: classification_metrics(y, probs[i].argmax(1), GENRES) for i, name in enumerate(names)}


def midi_test_shared(model_path, args):
    """Accuracy on the rendered MIDI test songs of the genres the model shares with MIDI."""
    rendered = [t for t in rendered_midi(args) if t.split == "test"]
    return evaluate_checkpoint(model_path, [t for t in rendered if t.label in SHARED_WITH_MIDI], progress=False)


def fmt(m):
    return f"{m['accuracy']:.3f} | {m['macro_f1']:.3f}"


def markdown(report):
    lines = [f"## Real GTZAN valid split ({report['valid_clips']} clips; train {report['train_clips']})", "",
             "| model | valid acc | valid F1 | 5-fold CV on valid acc | CV F1 | " + " | ".join(GENRES) + " |",
             "| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(GENRES)]
    for name, row in sorted(report["rows"].items(), key=lambda r: -r[1].get("valid_cv", r[1]["valid"])["accuracy"]):
        cv = row.get("valid_cv")
        shown = row["valid_cv"] if cv else row["valid"]
        genres = " | ".join("" if shown["per_label_accuracy"][g] is None else f"{shown['per_label_accuracy'][g]:.2f}"
                            for g in GENRES)
        lines.append(f"| {name} | {fmt(row['valid'])} | {fmt(cv) if cv else '- | -'} | {genres} |")
    lines += ["", "Members are single models (nothing fitted on valid but early stopping); per-genre figures are "
              "of the CV column where there is one.", ""]
    lines += ["## Cost per 30 s clip (one thread)", "", "| member | ms |", "| --- | ---: |"]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in report["cost_ms"].items()]
    lines += ["", f"## `{report['chosen']}` by clip length", "",
              "| clips | n | accuracy | " + " | ".join(GENRES) + " |",
              "| --- | ---: | ---: |" + " ---: |" * len(GENRES)]
    for part, m in report["by_length"].items():
        genres = " | ".join("" if m["per_label_accuracy"][g] is None else f"{m['per_label_accuracy'][g]:.2f}"
                            for g in GENRES)
        lines.append(f"| {part} | {m['n']} | {m['accuracy']:.3f} | {genres} |")
    c = report["calibration"]
    lines += ["", f"## Calibration of `{report['chosen']}`", "",
              f"ECE (15 bins, 5-fold CV on valid): {c['ece_before']:.3f} before, {c['ece_after']:.3f} after temperature "
              f"scaling (temperature {c['temperature']:.2f} on all of valid)."]
    if report.get("reverse"):
        lines += ["", "## Reverse check: trained on valid, scored on train (genres valid has)", "",
                  "| member | accuracy | macro-F1 |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {fmt(m)} |" for name, m in report["reverse"].items()]
    if report.get("more_data"):
        lines += ["", "## More real data: each half of valid scored by members trained on train plus the other half",
                  "", "Halves split at each genre's median GTZAN id (few artists in both); same epochs as early "
                  "stopping chose with train alone.", "",
                  "| member | train only | train + other half | " + " | ".join(GENRES) + " |",
                  "| --- | ---: | ---: |" + " ---: |" * len(GENRES)]
        for name, m in report["more_data"].items():
            genres = " | ".join("" if m["with_other_half"]["per_label_accuracy"][g] is None else
                                f"{m['train_only']['per_label_accuracy'][g]:.2f} -> "
                                f"{m['with_other_half']['per_label_accuracy'][g]:.2f}" for g in GENRES)
            lines.append(f"| {name} | {m['train_only']['accuracy']:.3f} | {m['with_other_half']['accuracy']:.3f} | "
                         f"{genres} |")
    if report.get("with_midi"):
        lines += ["", "## With the rendered MIDI train split added (classical, country, hiphop, jazz, pop, rock)", "",
                  "| member | valid accuracy, real only | with MIDI |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {report['rows'][name]['valid']['accuracy']:.3f} | {m['accuracy']:.3f} |"
                  for name, m in report["with_midi"].items()]
    return "\n".join(lines) + "\n"


def card_figures(metrics):
    """What a model card keeps of a held-out measurement."""
    return {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "per_label_accuracy")}


def write_bundled(ensemble, name, card):
    """`ensemble` as the bundled model `name` with its card (in the file and beside it as JSON)."""
    out = BUNDLED_MODELS[name]
    ensemble.save(out, card=card)
    write_text(out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--gtzan-extra", type=Path, default=SHARED / "gtzan-extra")
    parser.add_argument("--members", nargs="+", default=list(MEMBERS), choices=[*MEMBERS, *AVERAGED])
    parser.add_argument("--views", type=int, default=8, help="Augmented windows per clip for the musicnn members.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reverse", action="store_true", help="Also train on valid and score on train.")
    parser.add_argument("--midi", action="store_true", help="Also train members with the rendered MIDI songs.")
    parser.add_argument("--midi-clips", type=Path, help="A manifest of rendered MIDI clips (train ones for --midi, "
                        "test ones for the default model's MIDI figure; e.g. from `genrekit data render-midi --split "
                        "train,test`) instead of the whole rendered corpus.")
    parser.add_argument("--refit", action="store_true", help="Measure what more real data is worth (each half of "
                        "valid scored by the members trained on train and the other half).")
    parser.add_argument("--choose", help="The row (a member or 'weighted: A + B') to choose instead of the best by "
                        "(CV) accuracy.")
    parser.set_defaults(runs=DEFAULT_CACHE_DIR / "runs" / "real-music", out=RESULTS / "real_music_gtzan")
    args = parser.parse_args()
    began = time.perf_counter()
    if not WEIGHTS.is_file():
        raise SystemExit(f"{WEIGHTS}: musicnn weights missing")
    cache = FeatureCache(args.cache)
    tracks = real_tracks(args)
    valid = select(tracks, "valid")
    paths = train_members(args.members, select(tracks, "train"), valid, args, "real", cache)
    probs, y = member_probs(paths, valid)
    groups = np.array([t.group for t in valid])
    report = {"train_clips": len(select(tracks, "train")), "valid_clips": len(valid),
              "train_per_genre": dict(class_counts(select(tracks, "train"))),
              "valid_per_genre": dict(class_counts(valid)),
              "rows": ensemble_rows(args.members, probs, y, groups),
              "cost_ms": {name: inference_ms(path) for name, path in paths.items()}}
    # stacking learns valid's label distribution (valid has no hiphop or reggae, so it would never predict them):
    # the model is chosen among the members and the weighted averages, by (CV) accuracy, then fewer members
    candidates = {name: row for name, row in report["rows"].items() if row.get("kind", "weighted") == "weighted"}
    chosen = args.choose or max(candidates, key=lambda name: (
        candidates[name].get("valid_cv", candidates[name]["valid"])["accuracy"], -len(candidates[name]["members"])))
    if chosen not in candidates:
        raise SystemExit(f"--choose {chosen}: not a member or weighted average of this run ({', '.join(candidates)})")
    report["chosen"] = chosen
    row = report["rows"][chosen]
    chosen_probs = probs[[args.members.index(name) for name in row["members"]]]
    kind = row.get("kind", "weighted") if len(row["members"]) > 1 else "equal"
    raw = cross_validated(kind, chosen_probs, y, groups)
    report["by_length"] = by_length(raw, y, valid, args)
    report["calibration"] = calibration(kind, chosen_probs, raw, y, groups)
    if args.reverse:
        report["reverse"] = reverse_check(args.members, tracks, args, cache)
    if args.refit:
        report["more_data"] = more_data_check(row["members"], tracks, paths, chosen_probs, args, cache)
    if args.midi:
        report["with_midi"] = midi_mix(args.members, tracks, args, cache)[1]
    report["minutes"] = (time.perf_counter() - began) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    shown = row.get("valid_cv", row["valid"])
    plot_confusion(shown, args.out / "real_music_gtzan_confusion.png", title=f"{chosen} (valid, CV)")
    plot_per_label_accuracy({name: report["rows"][name].get("valid_cv", report["rows"][name]["valid"])
                             for name in [*args.members, chosen]}, args.out / "real_music_gtzan_per_genre.png",
                            title="Per-genre accuracy on the real GTZAN valid split")
    write_report(report, markdown(report), args.out, "real_music_gtzan", "Real music benchmark: GTZAN alone")


if __name__ == "__main__":
    main()
