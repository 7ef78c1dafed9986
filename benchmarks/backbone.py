"""The pretrained musicnn backbone (issue 6) against the from-scratch models, on two data sets.

* Rendered MIDI (artist-disjoint train/valid/test): the paper's eight models (seed 0, the models
  benchmark's checkpoints) and `backbone-musicnn` (frozen MSD_musicnn embeddings + a small MLP head, up to
  100 epochs with patience 10 since its epochs run on embeddings computed once),
  ensembles fitted on valid: weighted average and stacking over the eight, over the eight plus the backbone,
  the bundled model's three members with and without the backbone, and the backbone alone.
* gtzan-mini (the 93 real clips that are kept, 42 artists from tracks.csv), leave-one-artist-out (42 folds),
  every clip tested once:
  - the backbone's embeddings with a logistic-regression probe (train the probe on the other artists'
    windows, score a clip by its windows' mean log-probability);
  - per fold, cnn-logmel, rnn-spectrogram, cnn-waveform and backbone-musicnn trained on the other artists
    (20 % of them held out as valid), then weighted ensembles fitted on valid. The folds train in parallel
    (--workers), one thread each; the backbone's embeddings are stored once and reused by every fold.
    `--folds k` uses artist-grouped k-fold instead (faster).

Writes benchmarks/results/backbone.{json,md} and backbone_real_clips_per_genre.png.

    python benchmarks/backbone.py --midi-audio <rendered clips>
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from common import WEIGHTED_MEMBERS, load_benchmark_data, new_parser, train_model
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from genrekit.atomic import write_text
from genrekit.cache import EmbeddingStore, FeatureCache, fill_cache
from genrekit.clips import ClipSet
from genrekit.datasets import labels_of, load_dataset, select, split_by_group
from genrekit.checkpoints import load_members
from genrekit.combiners import make_combiner
from genrekit.ensemble import Ensemble
from genrekit.evaluation import classification_metrics, write_json
from genrekit.models import PAPER_MODELS, create_model
from genrekit.plots import plot_per_label_accuracy

BACKBONE = "backbone-musicnn"
BACKBONE_SETTINGS = {"epochs": 100, "patience": 10}
"""The head trains on embeddings computed once, so its epochs take milliseconds: give it more of them."""


def settings(name):
    return BACKBONE_SETTINGS if name == BACKBONE else {}


def member_probs(paths, tracks):
    """(probabilities [shape=(n_members, n_valid, C)], valid targets, test probabilities, test targets)."""
    ensemble = Ensemble(load_members(paths), "equal")
    valid, valid_y, _ = ensemble.member_probs(select(tracks, "valid"), progress=False)
    test, test_y, _ = ensemble.member_probs(select(tracks, "test"), progress=False)
    return valid, valid_y, test, test_y


def combine(kind, chosen, valid, valid_y, test):
    """Test probabilities of a `kind` combiner over the member indices `chosen`, fitted on valid."""
    if len(chosen) == 1:
        return test[chosen[0]]
    return make_combiner(kind).fit(valid[chosen], valid_y).predict_proba(test[chosen])


def midi_results(args, cache):
    tracks = load_benchmark_data("midi", args)
    labels = labels_of(tracks)
    names = list(PAPER_MODELS) + [BACKBONE]
    began = time.perf_counter()
    paths = [train_model(name, tracks, labels, args, args.runs / "midi", cache, **settings(name)) for name in names]
    minutes = (time.perf_counter() - began) / 60
    valid, valid_y, test, test_y = member_probs(paths, tracks)
    index = {name: i for i, name in enumerate(names)}
    eight, trio = list(range(len(PAPER_MODELS))), [index[name] for name in WEIGHTED_MEMBERS]
    rows = {
        "backbone-musicnn alone": ("equal", [index[BACKBONE]]),
        "best single from scratch (cnn-logmel)": ("equal", [index["cnn-logmel"]]),
        "weighted, eight from scratch": ("weighted", eight),
        "weighted, eight + backbone": ("weighted", eight + [index[BACKBONE]]),
        "stacking, eight from scratch": ("stacking", eight),
        "stacking, eight + backbone": ("stacking", eight + [index[BACKBONE]]),
        "weighted, bundled model's three": ("weighted", trio),
        "weighted, bundled model's three + backbone": ("weighted", trio + [index[BACKBONE]]),
    }
    table = {name: classification_metrics(test_y, combine(kind, chosen, valid, valid_y, test).argmax(1), labels)
             for name, (kind, chosen) in rows.items()}
    weights = make_combiner("weighted").fit(valid[trio + [index[BACKBONE]]], valid_y).weights_
    return {"table": table, "labels": labels, "backbone_train_minutes": minutes,
            "weights_three_plus_backbone": dict(zip([*WEIGHTED_MEMBERS, BACKBONE], weights.round(3).tolist()))}


def gtzan_tracks(args, cache):
    """gtzan-mini's clips that decode, without their given splits."""
    tracks = [t.replace(split=None) for t in load_dataset(f"gtzan:{args.gtzan}")]
    status = fill_cache(tracks, cache, progress=False)
    return [t for t in tracks if not status[t.key].startswith("failed")]


def with_learnable(metrics, tracks, y_true, y_pred):
    """Add the accuracy on clips of genres with more than one artist: in gtzan-mini blues, classical,
    reggae and rock each come from a single artist, so no artist-disjoint protocol can learn them."""
    artists = {}
    for track in tracks:
        artists.setdefault(track.label, set()).add(track.group)
    chosen = np.array([len(artists[t.label]) > 1 for t in tracks])
    metrics["learnable_genres"] = sorted(label for label, groups in artists.items() if len(groups) > 1)
    metrics["learnable_accuracy"] = float(np.mean(np.asarray(y_true)[chosen] == np.asarray(y_pred)[chosen]))
    return metrics


def probe_loao(tracks, labels, cache, window_seconds):
    """Leave-one-artist-out accuracy of a logistic-regression probe on frozen musicnn window embeddings."""
    model = create_model(BACKBONE, len(labels)).eval()
    clips = ClipSet.from_tracks(tracks, "waveform", labels, cache, window_seconds=window_seconds, progress=False)
    embedded = clips.embedded(model.embed, window_seconds, store=EmbeddingStore(cache.root, model.embedding_key()))
    groups = np.array([t.group for t in tracks])
    predicted = np.zeros(len(tracks), dtype=int)
    for artist in np.unique(groups):
        held = groups == artist
        x = np.concatenate([embedded.arrays[i] for i in np.flatnonzero(~held)])
        y = np.concatenate([[clips.targets[i]] * len(embedded.arrays[i]) for i in np.flatnonzero(~held)])
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x, y)
        for i in np.flatnonzero(held):
            log_probs = np.full((len(embedded.arrays[i]), len(labels)), -np.inf)
            log_probs[:, probe.classes_] = probe.predict_log_proba(embedded.arrays[i])
            predicted[i] = log_probs.mean(0).argmax()
    metrics = classification_metrics(clips.targets, predicted, labels)
    return with_learnable(metrics, tracks, clips.targets, predicted), len(np.unique(groups))


FOLD_ROWS = {"weighted, three from scratch": ("weighted", [0, 1, 2]), "backbone-musicnn alone": ("equal", [3]),
             "weighted, three + backbone": ("weighted", [0, 1, 2, 3])}
"""The ensembles compared on each fold, over the members (*WEIGHTED_MEMBERS, BACKBONE)."""


def run_fold(fold, fold_tracks, labels, args, cache):
    """Train the members on one fold's train/valid tracks; (test targets, {row: test predictions})."""
    run_dir = args.runs / ("gtzan-loao" if args.folds == 0 else f"gtzan-{args.folds}fold") / f"fold{fold:02d}"
    paths = [train_model(name, fold_tracks, labels, args, run_dir, cache, progress=False, **settings(name))
             for name in (*WEIGHTED_MEMBERS, BACKBONE)]
    valid, valid_y, test, test_y = member_probs(paths, fold_tracks)
    return test_y, {name: combine(kind, chosen, valid, valid_y, test).argmax(1) for name, (kind, chosen) in FOLD_ROWS.items()}


def gtzan_cross_validation(tracks, labels, args, cache):
    """Pooled test predictions of each of FOLD_ROWS over artist folds (leave-one-artist-out when
    `args.folds` is 0, else artist-grouped k-fold); every clip is tested once. In each fold the members train
    on the other artists, 20 % of which are held out as valid to fit the ensemble weights."""
    groups = [t.group for t in tracks]
    if args.folds == 0:
        splits = LeaveOneGroupOut().split(tracks, groups=groups)
    else:
        splitter = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0)
        splits = splitter.split(tracks, [t.label for t in tracks], groups)
    folds = []
    for fold, (rest, held) in enumerate(splits):
        fold_tracks = split_by_group([tracks[i] for i in rest], valid=0.2, test=0.0, seed=fold)
        folds.append((fold_tracks + [tracks[i].replace(split="test") for i in held], held))
    targets, tested, predicted = [], [], {name: [] for name in FOLD_ROWS}
    with ProcessPoolExecutor(args.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        jobs = [pool.submit(run_fold, fold, fold_tracks, labels, args, cache)
                for fold, (fold_tracks, _) in enumerate(folds)]
        for job, (_, held) in zip(tqdm(jobs, desc="folds", unit="fold"), folds):
            test_y, fold_predicted = job.result()
            targets += list(test_y)
            tested += [tracks[i] for i in held]
            for name in FOLD_ROWS:
                predicted[name] += list(fold_predicted[name])
    return {name: with_learnable(classification_metrics(targets, predicted[name], labels), tested, targets,
                                 predicted[name]) for name in FOLD_ROWS}


def markdown(report):
    probe = report["gtzan"]["probe_loao"]
    lines = ["## gtzan-mini (real clips, 10 genres, chance 0.100)", "",
             f"Learnable accuracy: on the clips of the genres with more than one artist "
             f"({', '.join(probe['learnable_genres'])}); the other genres have a single artist each, so no "
             "artist-disjoint protocol can learn them.", "",
             "| protocol | model | accuracy | macro-F1 | learnable accuracy |", "| --- | --- | ---: | ---: | ---: |"]
    lines.append(f"| leave-one-artist-out ({report['gtzan']['artists']} folds) | musicnn embeddings + "
                 f"logistic-regression probe | {probe['accuracy']:.3f} | {probe['macro_f1']:.3f} | "
                 f"{probe['learnable_accuracy']:.3f} |")
    protocol = report["gtzan"]["protocol"]
    lines += [f"| {protocol} | {name} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | "
              f"{m['learnable_accuracy']:.3f} |" for name, m in report["gtzan"]["cross_validation"].items()]
    if "midi" in report:
        lines += ["", "## Rendered MIDI test split (7 genres, chance 0.143)", "", "| model | accuracy | macro-F1 |",
                  "| --- | ---: | ---: |"]
        lines += [f"| {name} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |"
                  for name, m in report["midi"]["table"].items()]
        lines += ["", "Weights of the bundled model's three + backbone: "
                  f"{report['midi']['weights_three_plus_backbone']}"]
    return "\n".join(lines) + "\n"


def plot_gtzan(report, path):
    """Per-genre accuracy on gtzan-mini of the probe and the fold ensembles."""
    gtzan = report["gtzan"]
    results = {"probe (leave-one-artist-out)": gtzan["probe_loao"], **gtzan["cross_validation"]}
    return plot_per_label_accuracy(results, path, title=f"Real clips (gtzan-mini), {gtzan['protocol']}")


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--skip-midi", action="store_true")
    parser.add_argument("--folds", type=int, default=0,
                        help="gtzan-mini protocol of the ensembles: 0 = leave-one-artist-out, k = artist-grouped k-fold.")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="Folds trained at once.")
    args = parser.parse_args()
    cache = FeatureCache(args.cache)
    report = {}
    tracks = gtzan_tracks(args, cache)
    labels = labels_of(tracks)
    probe, artists = probe_loao(tracks, labels, cache, args.window_seconds)
    print(f"gtzan-mini leave-one-artist-out probe: accuracy {probe['accuracy']:.3f}")
    protocol = f"leave-one-artist-out ({artists} folds)" if args.folds == 0 else f"artist-grouped {args.folds}-fold"
    report["gtzan"] = {"probe_loao": probe, "artists": artists, "protocol": protocol,
                       "cross_validation": gtzan_cross_validation(tracks, labels, args, cache)}
    if not args.skip_midi:
        report["midi"] = midi_results(args, cache)
    text = markdown(report)
    print(text)
    write_json(report, args.out / "backbone.json")
    write_text(args.out / "backbone.md", "# Pretrained musicnn backbone\n\n" + text)
    plot_gtzan(report, args.out / "backbone_real_clips_per_genre.png")


if __name__ == "__main__":
    main()
