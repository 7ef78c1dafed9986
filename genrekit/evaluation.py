"""Clip-level prediction from windows, metrics, and the reports people read."""

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from .atomic import write_text


def predict_clip_log_probs(model, clips, length, *, batch_size=64):
    """Log-probabilities per clip [shape=(n_clips, n_classes)]: the mean of its windows' log-probabilities,
    renormalised."""
    model.eval()
    scores = []
    with torch.inference_mode():
        for i in range(len(clips)):
            windows = torch.from_numpy(clips.windows(i, length))
            log_probs = torch.cat([torch.log_softmax(model(windows[s:s + batch_size]), dim=1)
                                   for s in range(0, len(windows), batch_size)])
            scores.append(torch.log_softmax(log_probs.mean(0), dim=0))
    return torch.stack(scores).numpy() if scores else np.zeros((0, model.n_classes), np.float32)


def classification_metrics(y_true, y_pred, labels):
    """Accuracy, macro-F1, per-label accuracy (recall) and the confusion matrix (rows: true labels)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.arange(len(labels))
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    support = matrix.sum(axis=1)
    per_label = {label: (float(matrix[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    return {"n": int(len(y_true)),
            "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
            "macro_f1": float(f1_score(y_true, y_pred, labels=classes[support > 0], average="macro", zero_division=0)),
            "per_label_accuracy": per_label,
            "support": {label: int(s) for label, s in zip(labels, support)},
            "labels": list(labels), "confusion": matrix.tolist()}


def write_json(data, path):
    """Write JSON atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def metrics_markdown(metrics, title):
    """A markdown report: headline figures and per-label accuracy."""
    lines = [f"# {title}", "", f"- clips: {metrics['n']}", f"- accuracy: {metrics['accuracy']:.3f}",
             f"- macro-F1: {metrics['macro_f1']:.3f}", "", "| genre | clips | accuracy |", "| --- | ---: | ---: |"]
    for label, value in metrics["per_label_accuracy"].items():
        shown = "n/a" if value is None else f"{value:.3f}"
        lines.append(f"| {label} | {metrics['support'][label]} | {shown} |")
    return "\n".join(lines) + "\n"


def write_report(metrics, out_dir, name, title):
    """`name`.json, `name`.md, `name`.confusion.png and `name`.per_genre.png in `out_dir`."""
    from .plots import plot_confusion, plot_per_label_accuracy

    out_dir = Path(out_dir)
    write_json(metrics, out_dir / f"{name}.json")
    write_text(out_dir / f"{name}.md", metrics_markdown(metrics, title))
    plot_confusion(metrics, out_dir / f"{name}.confusion.png", title=title)
    plot_per_label_accuracy({title: metrics}, out_dir / f"{name}.per_genre.png", title=f"Per-genre accuracy: {title}")
    return out_dir / f"{name}.md"


def evaluate_checkpoint(path, tracks, *, cache=None, workers=None, progress=True):
    """Clip-level metrics of a saved model or ensemble on `tracks` (labels it does not know are an error)."""
    from .ensemble import load_predictor

    predictor = load_predictor(path)
    log_probs, targets = predictor.clip_log_probs(tracks, cache, workers=workers, progress=progress)
    return classification_metrics(targets, log_probs.argmax(1), predictor.labels)
