"""A built-in example clip that the project synthesises itself (no third-party audio shipped)."""

import numpy as np
import soundfile as sf

from .constants import SAMPLE_RATE

_CHORDS = ((60, 64, 67), (67, 71, 74), (69, 72, 76), (65, 69, 72))  # C G Am F
_MELODY = (76, 74, 72, 74, 76, 76, 76, 74, 74, 74, 76, 79, 79, 76, 74, 72)


def _note(midi, seconds, sr, *, harmonics=(1.0, 0.5, 0.25)):
    t = np.arange(int(seconds * sr)) / sr
    freq = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(amp * np.sin(2 * np.pi * freq * (k + 1) * t) for k, amp in enumerate(harmonics))
    return tone * np.exp(-3.0 * t)


def _drum(kind, seconds, sr, rng):
    t = np.arange(int(seconds * sr)) / sr
    if kind == "kick":
        return np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * t)) * t) * np.exp(-12 * t)
    return rng.standard_normal(t.size) * np.exp(-(40 if kind == "hat" else 18) * t) * (0.3 if kind == "hat" else 0.8)


def example_clip(seconds=12.0, *, sr=SAMPLE_RATE, tempo=110.0, seed=0):
    """A pop-like loop (chords, melody, drums) of `seconds` s as mono float32 peaking at -1 dBFS."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / tempo
    y = np.zeros(int(seconds * sr) + sr)
    for i in range(int(seconds / beat)):
        at = int(i * beat * sr)
        parts = [_drum("kick" if i % 2 == 0 else "snare", beat, sr, rng), _drum("hat", beat / 2, sr, rng)]
        if i % 4 == 0:
            parts.append(0.4 * sum(_note(n - 12, 4 * beat, sr) for n in _CHORDS[(i // 4) % 4]))
        parts.append(0.5 * _note(_MELODY[i % len(_MELODY)], beat, sr))
        for part in parts:
            y[at:at + part.size] += part[: y.size - at]
    y = y[: int(seconds * sr)]
    return (y / np.abs(y).max() * 10 ** (-1 / 20)).astype(np.float32)


def write_example_clip(path, seconds=12.0):
    """Write the example clip as a 16-bit WAV and return its path."""
    sf.write(str(path), example_clip(seconds), SAMPLE_RATE, subtype="PCM_16")
    return path
