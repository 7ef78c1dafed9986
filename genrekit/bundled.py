"""The recipe of the bundled `default` model: real recordings in, weights and card out (`genrekit train-bundled`).

Data: GTZAN folders (gtzan-mini, gtzan-extra: the fault-filtered split) and real-extra (label sets, its
artist-disjoint split), merged under the taxonomy; only train and valid clips, never test. Twelve genres:
GTZAN's ten, electronic and rnb_soul.

Model: MSD_musicnn, frozen, each window brought to one loudness (`normalize_level`), and a linear head on
all its layers: a probe (`genrekit.probe`) fitted on each training clip's mean window features, once as it
is and once from augmented views (speed, pitch, noise, gain), by the set loss. Its L2 strength and the
temperature are chosen on the valid clips, where every figure of the card comes from. With `refit` the
shipped head is then fitted again on train and valid together (the card's figures stay those of the
train-only head, which saw no valid clip).

The window features are computed once and cached (`EmbeddingStore`), so a second run, or one after a crash,
only fits the head again (seconds).
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from .atomic import write_text
from .augment import Augmentation
from .cache import EmbeddingStore, FeatureCache
from .checkpoints import load_members, save_checkpoint
from .clips import ClipSet
from .combiners import fit_temperature, temper
from .datasets import class_counts, class_weights, load_dataset, merge, restrict_labels, select
from .digest import clip_ids
from .ensemble import Ensemble
from .evaluation import classification_metrics, expected_calibration_error
from .exceptions import DatasetError
from .feature_params import FeatureParams
from .models import create_model
from .predict import load
from .probe import clip_means, fit_probe, set_linear_head, standardisation

GENRES = ["blues", "classical", "country", "disco", "electronic", "hiphop", "jazz", "metal", "pop", "reggae",
          "rnb_soul", "rock"]
NETWORK = {"fine_tune": "head", "layers": "all", "hidden": 0}
"""The `backbone-musicnn` settings of the default model: frozen MSD_musicnn, a linear head on all its layers."""
L2_STRENGTHS = (0.003, 0.01, 0.03, 0.1)
"""The probe's L2 penalties tried; the one best on valid is kept."""
VIEWS = 8
"""Augmented windows per training clip, whose mean is the clip's augmented copy."""
WINDOW_SECONDS = 3.0


def bundled_tracks(gtzan=(), real_extra=(), renderings=(), labels=GENRES):
    """The train and valid tracks of the GTZAN folders and real-extra folders, and the train tracks of rendered
    MIDI manifests (`genrekit data render-midi`), merged and restricted to `labels` (a label set keeps its genres
    among them; clips left without any are dropped). Valid holds real recordings only."""
    datasets = [load_dataset(f"gtzan:{path}") for path in gtzan] + [load_dataset(f"real-extra:{path}")
                                                                     for path in real_extra]
    rendered = [[t.replace(source="rendered-midi") for t in select(load_dataset(f"csv:{path}"), "train")]
                for path in renderings]
    if not datasets:
        raise DatasetError("no data: give GTZAN folders and/or a real-extra folder")
    tracks = restrict_labels(merge(*datasets, *rendered), labels)
    return [track for track in tracks if track.split in ("train", "valid")]


class Features:
    """The window features of some tracks by the default model's frozen network: each clip's clean windows
    (those `genrekit.scoring` scores) and `VIEWS` augmented ones, computed once and cached."""

    def __init__(self, tracks, labels, cache, *, views=True, progress=True):
        self.model = create_model("backbone-musicnn", len(labels), **NETWORK).eval()
        store = EmbeddingStore(cache.root, self.model.embedding_key())
        clips = ClipSet.from_tracks(tracks, "waveform", labels, cache, window_seconds=WINDOW_SECONDS,
                                    progress=progress)
        if len(clips) < len(tracks):
            raise DatasetError(f"{len(tracks) - len(clips)} clip(s) failed to load")
        self.clean = clips.embedded(self.model.embed, WINDOW_SECONDS, store=store, progress=progress)
        self.views = clips.embedded_views(self.model.embed, WINDOW_SECONDS, Augmentation(), VIEWS, store=store,
                                          progress=progress) if views else None
        self.tracks, self.labels = tracks, labels


def fit_default(features, l2):
    """The default model: a probe with L2 strength `l2` fitted on `features` (clean and augmented clip means)."""
    mean, std = standardisation(features.clean)
    x = np.concatenate([clip_means(features.clean), clip_means(features.views)])
    masks = np.concatenate([features.clean.targets, features.views.targets])
    w, b = fit_probe((x - mean) / std, masks, class_weights(features.tracks, features.labels), l2)
    model = create_model("backbone-musicnn", len(features.labels), **NETWORK).eval()
    return set_linear_head(model, w, b, mean, std)


def valid_accuracy(model, valid):
    """Accuracy (label-set rule) of `model` on `valid` (`Features`), scored as `genrekit.scoring` does."""
    with torch.no_grad():
        logits = model.head(torch.from_numpy(clip_means(valid.clean)).float())
    return classification_metrics(valid.clean.targets, logits.argmax(1).numpy(), valid.labels)["accuracy"]


def save_model(model, labels, path, trained, tuned=()):
    """Write the default model's checkpoint, with the tracks it was `trained` and `tuned` on."""
    save_checkpoint(path, model, labels=labels, params=FeatureParams(), window_seconds=WINDOW_SECONDS,
                    seen={"trained": clip_ids(trained), "tuned": clip_ids(tuned)})
    return path


def cross_validated_temperature(probs, y, groups, folds=5):
    """Each clip's probabilities tempered by a temperature fitted on the other folds (by group)."""
    out = np.zeros_like(probs)
    fold_of = {group: i % folds for i, group in enumerate(sorted(set(groups)))}
    which = np.array([fold_of[g] for g in groups])
    for fold in range(folds):
        held = which == fold
        if held.any() and (~held).any():
            out[held] = temper(probs[held], fit_temperature(probs[~held], y[~held]))
    return out


def held_out_figures(ensemble, valid, *, progress=True):
    """Figures of `ensemble` (its combiner and temperature fitted here) on the valid tracks, all together and
    per source (`gtzan`, `real-extra:emotify`, ...; accuracy by the label-set rule; per-genre figures over clips
    with one genre), and its
    calibration: ECE before and after a temperature cross-validated by group, and the temperature fitted on
    all of them, which `ensemble` keeps."""
    probs, targets, _ = ensemble.member_probs(valid, progress=progress)  # indices, or masks for label sets
    if probs.shape[1] != len(valid):
        raise DatasetError(f"{len(valid) - probs.shape[1]} valid clip(s) failed to load")
    ensemble.fit_member_probs(probs, targets, calibrate=True)
    raw = ensemble.combiner.predict_proba(probs)
    figures = {"all valid": classification_metrics(targets, raw.argmax(1), ensemble.labels)}
    for name in sorted({t.source for t in valid}):
        rows = np.array([t.source == name for t in valid])
        figures[name] = classification_metrics(targets[rows], raw[rows].argmax(1), ensemble.labels)
    calibrated = cross_validated_temperature(raw, targets, np.array([t.group for t in valid]))
    calibration = {"ece_before": expected_calibration_error(raw, targets),
                   "ece_after": expected_calibration_error(calibrated, targets), "temperature": ensemble.temperature}
    return figures, calibration


def card_figures(metrics):
    """What a model card keeps of a held-out measurement."""
    return {k: metrics[k] for k in ("n", "n_single", "accuracy", "macro_f1", "per_label_accuracy", "support")}


def training_counts(tracks):
    """Clips per source and label (set) of the tracks, for the card."""
    return {source: dict(class_counts([t for t in tracks if t.source == source]))
            for source in sorted({t.source for t in tracks})}


def speed(model_path, seconds=30.0, repeats=5):
    """Milliseconds to score `seconds` of audio with torch on this machine (median of `repeats`), with its load."""
    classifier = load(model_path, backend="torch")
    y = np.random.default_rng(0).standard_normal(int(seconds * classifier.scorer.params.sr)).astype(np.float32) * 0.1
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        classifier.predict(y, sr=classifier.scorer.params.sr)
        times.append(time.perf_counter() - began)
    ms = 1000 * float(np.median(times))
    return {"ms_per_30s_torch": round(ms, 1), "x_realtime_torch": round(seconds * 1000 / ms),
            "load_average": round(os.getloadavg()[0], 2), "cpu_threads": torch.get_num_threads()}


def train_bundled(out, *, gtzan=(), real_extra=(), renderings=(), labels=GENRES, refit=True, name="default",
                  cache=None, progress=True):
    """Make the bundled model's recipe and write `out/NAME.pt` and its card `out/NAME.json` (the fitted heads
    along the way under the cache's `runs/bundled`); returns the card."""
    began = time.perf_counter()
    out = Path(out)
    cache = cache or FeatureCache()
    tracks = bundled_tracks(gtzan, real_extra, renderings, labels)
    train_tracks, valid = select(tracks, "train"), select(tracks, "valid")
    train_features = Features(train_tracks, labels, cache, progress=progress)
    valid_features = Features(valid, labels, cache, views=False, progress=progress)
    tried = {l2: valid_accuracy(fit_default(train_features, l2), valid_features) for l2 in L2_STRENGTHS}
    l2 = max(tried, key=lambda k: (tried[k], k))  # ties: the stronger penalty
    runs = cache.root / "runs" / "bundled"
    chosen = save_model(fit_default(train_features, l2), labels, runs / "train-only.pt", train_tracks, valid)
    ensemble = Ensemble(load_members([chosen]), "equal")
    figures, calibration = held_out_figures(ensemble, valid, progress=progress)
    ensemble.tuned_on = clip_ids(valid)  # the temperature
    if refit:
        both = Features(train_tracks + valid, labels, cache, progress=progress)
        ensemble.members = load_members([save_model(fit_default(both, l2), labels, runs / "refit.pt",
                                                    train_tracks + valid)])
    card = {"name": name, "version": time.strftime("%Y.%m.%d"), "labels": list(labels),
            "kind": "MSD_musicnn (frozen, every window brought to one loudness) and a linear head on all its layers, "
                    f"calibrated (temperature {ensemble.temperature:.2f})",
            "recipe": "genrekit train-bundled (genrekit.bundled): a set-loss logistic regression on each clip's mean "
                      f"window features, as is and from {VIEWS} augmented windows (speed, pitch, noise, gain); "
                      f"L2 {l2:g} chosen on valid ({', '.join(f'{k:g}: {v:.3f}' for k, v in tried.items())})"
                      + ("; the shipped head refitted on train + valid" if refit else ""),
            "l2": l2, "l2_tried": {f"{k:g}": v for k, v in tried.items()},
            "training_data": {"train": training_counts(train_tracks),
                              **({"valid (refit)": training_counts(valid)} if refit else {})},
            "held_out": {set_name: card_figures(m) for set_name, m in figures.items()},
            "held_out_note": "figures of the head fitted on train only" + (" (the shipped head also saw valid)"
                                                                           if refit else ""),
            "calibration": calibration, "minutes": round((time.perf_counter() - began) / 60, 1),
            "speed": speed(chosen)}  # the train-only head: the same network and head, so the same cost
    ensemble.save(out / f"{name}.pt", card=card)
    write_text(out / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return card
