"""The paper's four representations of a clip, computed in batches with torch from one shared STFT.

waveform     the mono signal itself                       [shape=(batch, n)]
spectrogram  STFT magnitude in dB                         [shape=(batch, 1 + n_fft/2, frames)]
logmel       log-power mel spectrogram (128 mel bands)    [shape=(batch, n_mels, frames)]
chroma       chromagram, 12 pitch classes, max-normalised [shape=(batch, 12, frames)]

The filterbanks come from librosa, and the results match `librosa.amplitude_to_db(abs(stft))`,
`librosa.power_to_db(melspectrogram)` and `librosa.feature.chroma_stft(tuning=0)` (tests check this).
Chroma uses a fixed A440 tuning: librosa's per-clip tuning estimate costs more than the rest together.
"""

from functools import lru_cache

import librosa
import numpy as np
import torch

from .constants import REPRESENTATIONS, TOP_DB
from .exceptions import ParameterError
from .feature_params import FeatureParams, check_representation

AMIN = 1e-10
"""Power floor before taking logs (librosa's default; 1e-5 in amplitude)."""


def power_to_db(power, *, top_db=TOP_DB):
    """10 log10(power) floored at AMIN and at `top_db` below each item's peak (librosa's power_to_db)."""
    db = 10.0 * torch.log10(torch.clamp(power, min=AMIN))
    if top_db is not None:
        peak = db.amax(dim=tuple(range(1, db.dim())), keepdim=True)
        db = torch.maximum(db, peak - top_db)
    return db


class FeatureExtractor(torch.nn.Module):
    """Signals -> representations; one STFT serves spectrogram, log-mel and chroma."""

    def __init__(self, params=FeatureParams()):
        super().__init__()
        self.params = params
        self.register_buffer("window", torch.hann_window(params.n_fft), persistent=False)
        mel = librosa.filters.mel(sr=params.sr, n_fft=params.n_fft, n_mels=params.n_mels)
        chroma = librosa.filters.chroma(sr=params.sr, n_fft=params.n_fft, n_chroma=params.n_chroma, tuning=0.0)
        self.register_buffer("mel_basis", torch.from_numpy(mel), persistent=False)
        self.register_buffer("chroma_basis", torch.from_numpy(chroma.astype(np.float32)), persistent=False)

    def power(self, y):
        """|STFT|^2 of a batch of signals [shape=(batch, n)] -> [shape=(batch, bins, frames)]."""
        spec = torch.stft(y, self.params.n_fft, self.params.hop_length, window=self.window,
                          center=True, pad_mode="constant", return_complex=True)
        return spec.real.square() + spec.imag.square()

    def forward(self, y, representations=REPRESENTATIONS):
        """Dict of the asked representations of `y` [shape=(batch, n) or (n,)], each with a batch axis."""
        y = torch.as_tensor(y, dtype=torch.float32)
        y = y.unsqueeze(0) if y.dim() == 1 else y
        if y.dim() != 2 or y.shape[-1] < 1:
            raise ParameterError(f"signals must have shape (batch, n) with n > 0, got {tuple(y.shape)}")
        wanted = [check_representation(name) for name in representations]
        out = {}
        if "waveform" in wanted:
            out["waveform"] = y
        if any(name != "waveform" for name in wanted):
            power = self.power(y)
            top_db = self.params.top_db
            if "spectrogram" in wanted:
                out["spectrogram"] = power_to_db(power, top_db=top_db)
            if "logmel" in wanted:
                out["logmel"] = power_to_db(torch.matmul(self.mel_basis, power), top_db=top_db)
            if "chroma" in wanted:
                chroma = torch.matmul(self.chroma_basis, power)
                peak = chroma.amax(dim=1, keepdim=True)
                out["chroma"] = chroma / torch.where(peak > torch.finfo(chroma.dtype).tiny, peak, 1.0)
        return out


@lru_cache(maxsize=4)
def extractor(params=FeatureParams()):
    """A shared `FeatureExtractor` for `params` (building the filterbanks takes a moment)."""
    return FeatureExtractor(params).eval()


def compute_features(y, params=FeatureParams(), representations=REPRESENTATIONS):
    """The representations of one signal as numpy arrays (no batch axis)."""
    with torch.inference_mode():
        out = extractor(params)(np.asarray(y, dtype=np.float32), representations)
    return {name: value[0].numpy() for name, value in out.items()}
