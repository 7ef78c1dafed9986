"""Pictures for people: the four representations of a clip, training curves, confusion matrices."""

import os
import tempfile
from pathlib import Path

import librosa.display
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .features import FeatureParams  # noqa: E402


def save_figure(figure, path):
    """Write a figure as PNG atomically (temp file, then rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".png.tmp")
    os.close(handle)
    try:
        figure.savefig(temp, format="png", dpi=110, bbox_inches="tight")
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
        plt.close(figure)
    return path


def plot_representations(features, path, *, params=FeatureParams(), title=None):
    """One PNG with the waveform, STFT spectrogram, log-mel spectrogram and chromagram of a clip."""
    figure, axes = plt.subplots(4, 1, figsize=(11, 12), constrained_layout=True)
    common = dict(sr=params.sr, hop_length=params.hop_length, x_axis="time")
    librosa.display.waveshow(features["waveform"], sr=params.sr, ax=axes[0], color="tab:blue")
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
