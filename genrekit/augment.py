"""Training-time augmentation with the paper's song variants: random speed, pitch shift, noise and level.

Each training window is cut from a clip's waveform and, independently with probability `probability`
each, played at a random speed (resampling: tempo and pitch together, log-uniform in `speed`), shifted in
pitch by a random number of semitones (uniform in +-`semitones`, tempo kept), mixed with white noise at
a random SNR (uniform in `snr_db`) and played louder or quieter (uniform in `gain_db`). The model's
representation is then computed from the augmented window, so every model (waveform or image) sees the
same kind of variation.

Pitch shifting uses librosa's phase vocoder, not Rubber Band as `genrekit.variants.pitch_shift` does:
on a 3 s window it is about 3x faster, and the robustness experiments then test with a shifter the model
never trained with.
"""

from dataclasses import asdict, dataclass

import librosa
import numpy as np
import torch

from .exceptions import ParameterError
from .features import extractor
from .scoring import loop_to
from .variants import add_noise, fit_length, speed


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random variants and how often each is applied."""

    speed: tuple = (0.8, 1.25)
    semitones: float = 2.0
    snr_db: tuple = (10.0, 40.0)
    gain_db: tuple = (-40.0, 10.0)
    probability: float = 0.5

    def __post_init__(self):
        low, high = self.speed
        if not 0 < low <= high:
            raise ParameterError(f"speed range must be positive and increasing, got {self.speed}")
        if self.semitones < 0 or not 0 <= self.probability <= 1 or self.snr_db[0] > self.snr_db[1] \
                or self.gain_db[0] > self.gain_db[1]:
            raise ParameterError(f"bad augmentation settings: {asdict(self)}")

    def window(self, y, length, sr, rng):
        """A random window of `length` samples from waveform `y`, augmented. Returns float32 [shape=(length,)]."""
        factor = np.exp(rng.uniform(*np.log(self.speed))) if rng.random() < self.probability else 1.0
        source = int(round(length * factor))
        y = loop_to(np.asarray(y, dtype=np.float32), source)
        start = int(rng.integers(0, len(y) - source + 1))
        window = y[start:start + source]
        if factor != 1.0:
            window = speed(window, sr, factor)
        if rng.random() < self.probability and self.semitones > 0:
            shift = rng.uniform(-self.semitones, self.semitones)
            window = librosa.effects.pitch_shift(window, sr=sr, n_steps=shift, res_type="soxr_hq")
        if rng.random() < self.probability:
            window = add_noise(window, rng.uniform(*self.snr_db), seed=int(rng.integers(2 ** 31)))
        if rng.random() < self.probability:
            window = window * np.float32(10.0 ** (rng.uniform(*self.gain_db) / 20.0))
        return fit_length(window, length)

    def batch(self, clips, indices, length, representation, params, rng):
        """Augmented windows of `length` samples from waveform `clips`, as `representation` tensors."""
        waves = torch.from_numpy(np.stack([self.window(clips.arrays[i], length, params.sr, rng) for i in indices]))
        if representation == "waveform":
            return waves
        with torch.no_grad():
            return extractor(params)(waves, (representation,))[representation]

