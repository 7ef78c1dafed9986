"""Pictures for people: the four representations of a clip, training curves, confusion matrices."""

from pathlib import Path

import librosa.display
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .exceptions import printable  # noqa: E402
from .feature_params import FeatureParams  # noqa: E402
from .palette import NOT_SCORED, genre_color  # noqa: E402


def save_figure(figure, path):
    """Write a figure as PNG atomically (temp file, then rename) and close it; every text in it is made
    `printable` first (titles and legends name files)."""
    for text in figure.findobj(matplotlib.text.Text):
        text.set_text(printable(text.get_text()))
    try:
        with atomic_path(path) as temp:
            figure.savefig(temp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def plot_representations(features, path, *, params=FeatureParams(), title=None, offset=0.0):
    """One PNG with the waveform, STFT spectrogram, log-mel spectrogram and chromagram of a clip that starts
    `offset` seconds into its file (the time axis counts from there)."""
    figure, axes = plt.subplots(4, 1, figsize=(11, 12), constrained_layout=True)
    times = offset + librosa.times_like(np.asarray(features["logmel"]), sr=params.sr, hop_length=params.hop_length)
    common = dict(sr=params.sr, hop_length=params.hop_length, x_axis="time", x_coords=times)
    librosa.display.waveshow(features["waveform"], sr=params.sr, ax=axes[0], color="tab:blue", offset=offset)
    axes[0].set(title="Waveform", ylabel="Amplitude", xlabel="Time (s)")
    panels = [("spectrogram", "STFT spectrogram (dB)", dict(y_axis="log"), "magma", "%+2.0f dB"),
              ("logmel", f"Log-mel spectrogram ({params.n_mels} mel bands, dB)", dict(y_axis="mel"), "magma", "%+2.0f dB"),
              ("chroma", "Chromagram (12 pitch classes)", dict(y_axis="chroma"), "viridis", "%.1f")]
    for ax, (name, label, extra, cmap, fmt) in zip(axes[1:], panels):
        image = librosa.display.specshow(np.asarray(features[name]), ax=ax, cmap=cmap, **common, **extra)
        ax.set(title=label, xlabel="Time (s)")
        figure.colorbar(image, ax=ax, format=fmt)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_confusion(metrics, path, *, title=None):
    """Confusion matrix heat map (rows: true genre, columns: predicted), counts in the cells."""
    matrix = np.asarray(metrics["confusion"])
    labels = metrics["labels"]
    figure, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1.0 + 0.55 * len(labels)), constrained_layout=True)
    image = ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="Predicted genre", ylabel="True genre", title=title or "Confusion matrix")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    figure.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(figure, path)


def plot_per_label_accuracy(results, path, *, title="Per-genre accuracy"):
    """Grouped bars: accuracy per genre for each named result (`{name: metrics}`), chance level dashed; genres
    without clips are left out."""
    names = list(results)
    chance = 1 / len(results[names[0]]["labels"])
    labels = [label for label in results[names[0]]["labels"]
              if any(results[name]["per_label_accuracy"].get(label) is not None for name in names)]
    width = 0.8 / len(names)
    width_inches = min(16, max(6, 0.25 * len(labels) * (len(names) + 1)))
    figure, ax = plt.subplots(figsize=(width_inches, 4.5), constrained_layout=True)
    for k, name in enumerate(names):
        values = [results[name]["per_label_accuracy"].get(label) or 0.0 for label in labels]
        ax.bar(np.arange(len(labels)) + (k - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xticks=range(len(labels)), xticklabels=labels, ylim=(0, 1), ylabel="Accuracy", title=title)
    ax.legend(fontsize="small")
    return save_figure(figure, path)


def plot_training_curves(history, path, *, title=None):
    """Training loss and validation accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    validated = [h for h in history if "valid_loss" in h]
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    left.plot([h["epoch"] for h in validated], [h["valid_loss"] for h in validated], marker="o", label="validation")
    left.set(xlabel="Epoch", ylabel="Cross-entropy", title="Loss")
    left.legend()
    right.plot([h["epoch"] for h in validated], [h["valid_accuracy"] for h in validated], marker="o", color="tab:green")
    right.set(xlabel="Epoch", ylabel="Clip accuracy", title="Validation accuracy", ylim=(0, 1))
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


TIMELINE_COLUMNS = 300
"""Most columns a timeline draws: a longer song's windows are averaged in runs (a 4-hour file has 4,800)."""
VISIBLE_SHARE = 0.01
"""A genre whose probability stays below this everywhere is invisible in a timeline: no legend entry."""


def timeline_columns(times, ends, timeline, columns=TIMELINE_COLUMNS):
    """(starts, ends, probabilities [shape=(n, n_labels)]) of the windows averaged in consecutive runs so
    that at most `columns` remain."""
    size = -(-len(times) // columns)
    if size == 1:
        return times, ends, timeline
    runs = range(0, len(times), size)
    return (np.array([times[i] for i in runs]), np.array([ends[min(i + size, len(ends)) - 1] for i in runs]),
            np.array([timeline[i:i + size].mean(0) for i in runs]))


CLOCK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
"""Seconds between a timeline's ticks: the first that gives at most ten."""


def clock(seconds, _position=None):
    """A time as m:ss, or h:mm:ss from an hour on."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def timeline_figure(prediction):
    """Genre probabilities over a song, stacked (the song's top genre at the bottom), each genre in its colour
    of `genrekit.palette`, each column from a window's start to its end (at most `TIMELINE_COLUMNS`: longer
    songs average runs of windows), a time axis in m:ss; a trailing piece shorter than a window (not scored)
    is greyed. The legend names what can be seen; the song-level result is in the title."""
    figure, ax = plt.subplots(figsize=(10, 3.8), constrained_layout=True)
    starts, ends, timeline = timeline_columns(prediction.times, prediction.ends, prediction.timeline)
    order = np.argsort(-prediction.probabilities)
    edges = np.column_stack([starts, ends]).ravel()
    areas = ax.stackplot(edges, np.repeat(timeline[:, order], 2, axis=0).T,
                         labels=[prediction.labels[i] for i in order],
                         colors=[genre_color(prediction.labels[i]) for i in order])
    shown = [area for area, i in zip(areas, order) if timeline[:, i].max() >= VISIBLE_SHARE]
    duration = max(prediction.duration, 1e-3)
    if duration - ends[-1] > VISIBLE_SHARE * duration:
        shown.append(ax.axvspan(ends[-1], duration, color=NOT_SCORED, label="not scored (< 1 window)"))
    ax.set(xlim=(0, duration), ylim=(0, 1), xlabel="Time", ylabel="Probability",
           title=f"{Path(prediction.source).name}: {prediction.genre} ({prediction.probabilities.max():.0%})")
    step = next((s for s in CLOCK_STEPS if duration / s <= 10), CLOCK_STEPS[-1])
    ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(step))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(clock))
    ax.legend(handles=shown, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return figure


def plot_timeline(prediction, path):
    """Write `timeline_figure` as a PNG."""
    return save_figure(timeline_figure(prediction), path)
