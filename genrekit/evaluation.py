"""Clip-level scores of tracks through the prediction path, metrics, and the reports people read."""

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from .atomic import write_text
from .checkpoints import load_scorer, seen_clips
from .combiners import is_right
from .constants import EPS
from .datasets import label_masks, label_targets
from .digest import clip_id
from .exceptions import AudioError
from .progress import progress_bar
from .scoring import score_audio


def member_clip_log_probs(scorer, tracks, *, progress=True):
    """Every member's clip log-probabilities as `genrekit.predict` computes them, for the tracks that load.

    Returns (log-probabilities [shape=(n_members, n_clips, n_labels)], right answers (`label_targets`: label
    indices [shape=(n_clips,)], or masks [shape=(n_clips, n_labels)] where a clip has a label set), gate
    statistics [shape=(n_clips, 88)] or None, {track key: reason} of the tracks that failed).
    Labels the scorer does not know are an error.
    """
    label_masks(tracks, scorer.labels)  # unknown labels: an error before any work
    scores, scored, stats, failures = [], [], [], {}
    for track in progress_bar(tracks, desc="scoring", unit="clip", enabled=progress):
        try:
            found = score_audio(scorer, track.path, offset=track.start or 0.0, duration=track.duration)
        except AudioError as error:
            failures[track.key] = error.reason
            continue
        scores.append(found.clip_log_probs())
        scored.append(track)
        stats.append(found.stats)
    n = (len(scorer.members), 0, len(scorer.labels))
    log_probs = np.stack(scores, axis=1) if scores else np.zeros(n, np.float32)
    targets = label_targets(scored, scorer.labels) if scored else np.zeros(0, dtype=int)
    return log_probs, targets, (np.stack(stats) if scorer.gated and stats else None), failures


def clip_log_probs(scorer, tracks, *, progress=True):
    """(combined log-probabilities [shape=(n_clips, n_labels)], label indices) of the tracks that load."""
    log_probs, targets, stats, _ = member_clip_log_probs(scorer, tracks, progress=progress)
    return np.log(scorer.combine(log_probs, stats) + EPS), targets


def classification_metrics(y_true, y_pred, labels):
    """Accuracy, macro-F1, per-label accuracy (recall) and the confusion matrix (rows: true labels).

    `y_true` are label indices, or label sets as masks [shape=(n, n_labels)]: a prediction in the set is
    right (accuracy); macro-F1, per-label accuracy and the confusion matrix are over the clips with one
    right answer (`n_single` of them)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    right = is_right(y_pred, y_true) if len(y_true) else np.zeros(0, bool)
    if y_true.ndim == 2:
        single = y_true.sum(1) == 1
        y_true, y_pred = y_true[single].argmax(1), y_pred[single]
    classes = np.arange(len(labels))
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    support = matrix.sum(axis=1)
    per_label = {label: (float(matrix[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    return {"n": int(len(right)), "n_single": int(len(y_true)),
            "accuracy": float(np.mean(right)) if len(right) else 0.0,
            "macro_f1": float(f1_score(y_true, y_pred, labels=classes[support > 0], average="macro", zero_division=0)),
            "per_label_accuracy": per_label,
            "support": {label: int(s) for label, s in zip(labels, support)},
            "labels": list(labels), "confusion": matrix.tolist()}


def expected_calibration_error(probs, y, bins=15):
    """How far confidence is from accuracy (`y`: label indices or label-set masks): the clip-weighted mean of
    |accuracy - mean top probability| over `bins` equal-width bins of the top probability (0 for perfectly
    calibrated probabilities)."""
    probs, y = np.asarray(probs), np.asarray(y)
    confidence, right = probs.max(1), is_right(probs.argmax(1), y)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(np.mean(right[inside]) - confidence[inside].mean())
    return float(error)


def write_json(data, path):
    """Write JSON atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def metrics_markdown(metrics, title):
    """A markdown report: headline figures and per-label accuracy."""
    lines = [f"# {title}", "", f"- clips: {metrics['n']}", f"- accuracy: {metrics['accuracy']:.3f}",
             f"- macro-F1: {metrics['macro_f1']:.3f}",
             *([f"- **warning**: {metrics['overlap']}"] if metrics.get("overlap") else []),
             "", "| genre | clips | accuracy |", "| --- | ---: | ---: |"]
    for label, value in metrics["per_label_accuracy"].items():
        shown = "n/a" if value is None else f"{value:.3f}"
        lines.append(f"| {label} | {metrics['support'][label]} | {shown} |")
    return "\n".join(lines) + "\n"


def overlap_warning(model_path, tracks):
    """What to say when some of `tracks` were among the clips the model at `model_path` learned from (None
    when none were), or that the file does not record them."""
    seen = seen_clips(model_path)
    if seen is None:
        return (f"{Path(model_path).name} does not record the clips it learned from: not checked for overlap with "
                "these data")
    ids = [clip_id(track) for track in tracks]
    trained = sum(i in seen["trained"] for i in ids)
    tuned = sum(i in seen["tuned"] and i not in seen["trained"] for i in ids)
    if not trained and not tuned:
        return None
    return (f"{trained} of these {len(ids)} clips were in the model's training data and {tuned} more in the data "
            "it was tuned on (early stopping, settings, calibration): these figures are not held out")


def write_report(metrics, out_dir, name, title):
    """`name`.json, `name`.md, `name`.confusion.png and `name`.per_genre.png in `out_dir`, titled `title` and
    the number of clips."""
    from .plots import plot_confusion, plot_per_label_accuracy

    out_dir, title = Path(out_dir), f"{title}, n={metrics['n']}"
    write_json(metrics, out_dir / f"{name}.json")
    write_text(out_dir / f"{name}.md", metrics_markdown(metrics, title))
    plot_confusion(metrics, out_dir / f"{name}.confusion.png", title=title)
    plot_per_label_accuracy({title: metrics}, out_dir / f"{name}.per_genre.png", title=f"Per-genre accuracy: {title}")
    return out_dir / f"{name}.md"


def evaluate_checkpoint(path, tracks, *, progress=True):
    """Clip-level metrics of a model file (checkpoint, ensemble or `.onnx`) on `tracks` (labels it does not
    know are an error)."""
    scorer = load_scorer(path)
    log_probs, targets = clip_log_probs(scorer, tracks, progress=progress)
    return classification_metrics(targets, log_probs.argmax(1), scorer.labels)
