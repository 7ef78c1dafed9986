"""What decides a signal's representations (`FeatureParams`), apart from the torch code that computes them
(`genrekit.features`), so that scoring with onnxruntime needs neither torch nor librosa."""

import hashlib
import json
from dataclasses import asdict, dataclass

from .constants import HOP_LENGTH, N_CHROMA, N_FFT, N_MELS, REPRESENTATIONS, SAMPLE_RATE, TOP_DB
from .exceptions import ParameterError


@dataclass(frozen=True)
class FeatureParams:
    """Everything that decides what the representations of a signal are."""

    sr: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    n_chroma: int = N_CHROMA
    top_db: float = TOP_DB

    def key(self):
        """A stable text naming these parameters (for cache keys and checkpoints)."""
        return json.dumps(asdict(self), sort_keys=True)

    def digest(self):
        """A short hexadecimal name for these parameters (folder names)."""
        return hashlib.sha1(self.key().encode()).hexdigest()[:12]

    @property
    def n_bins(self):
        return 1 + self.n_fft // 2

    def n_frames(self, n_samples):
        """Frames of a centred STFT over `n_samples` samples."""
        return 1 + n_samples // self.hop_length

    def shape(self, representation, n_samples):
        """Per-item shape of a representation of a signal of `n_samples` samples."""
        rows = {"spectrogram": self.n_bins, "logmel": self.n_mels, "chroma": self.n_chroma}
        if representation == "waveform":
            return (n_samples,)
        return (rows[representation], self.n_frames(n_samples))


def check_representation(name):
    if name not in REPRESENTATIONS:
        raise ParameterError(f"unknown representation {name!r}; known: {', '.join(REPRESENTATIONS)}")
    return name
