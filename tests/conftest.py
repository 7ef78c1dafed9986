"""Shared fixtures: generated audio on disk and the real clips in ../shared/data (skipped when absent)."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_DATA = Path(os.environ.get("GENREKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def tone(freq=440.0, seconds=1.0, sr=22050, amplitude=0.5, channels=1):
    """A sine of `freq` Hz, float32, shape (n,) or (n, channels)."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.stack([y] * channels, axis=1)


def write_tone(path, freq=440.0, seconds=1.0, sr=22050, **kwargs):
    """Write a sine to `path` (format from the extension) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(freq, seconds, sr, **kwargs), sr)
    return path


@pytest.fixture
def gtzan_mini():
    root = SHARED_DATA / "gtzan-mini"
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


@pytest.fixture
def midi_genres():
    root = SHARED_DATA / "midi-genres"
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root
