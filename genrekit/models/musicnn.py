"""musicnn (Pons & Serra, 2019), the MSD_musicnn tagger ported to PyTorch, as a frozen backbone for genres.

MusicnnFrontEnd   22050 Hz windows -> 16 kHz -> musicnn's log-mel patches [shape=(batch, 187, 96)]
Musicnn           patches -> penultimate embedding [shape=(batch, 200)] -> 50 MSD tag probabilities

`backbone.py` makes genre models of it (and of its sibling `vgg.Vgg`).

The weights (`weights/musicnn/msd_musicnn.pt`) are converted from the TensorFlow checkpoint in the `musicnn`
0.1.0 package (ISC licence, `LICENSE.txt` beside them) by `scripts/convert_musicnn.py`, which checks the port
against TensorFlow. The front end is plain convolutions and matrix products (no `torch.stft`), so the whole
model exports to ONNX.
"""

import math
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..constants import SAMPLE_RATE
from ..exceptions import GenrekitError
from .pretrained import register_network

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "musicnn" / "msd_musicnn.pt"
MUSICNN_SR = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
N_FRAMES = 187
"""Frames of musicnn's 3 s input patches."""
EMBEDDING_SIZE = 200
BN_EPS = 1e-3
"""TensorFlow's batch-norm epsilon (PyTorch's default is 1e-5)."""


class Resampler(nn.Module):
    """Band-limited resampling by a rational factor as one strided conv1d with a Kaiser-windowed sinc per output
    phase (torchaudio's polyphase scheme). The default band edge follows soxr's HQ filter (librosa.load's, so
    musicnn's): flat to 0.92, half amplitude at 0.955 and silent from 0.99 of the lower Nyquist frequency."""

    def __init__(self, orig_sr, new_sr, zero_crossings=96, rolloff=0.9575, beta=14.769656459379492):
        super().__init__()
        gcd = math.gcd(orig_sr, new_sr)
        self.orig, self.new = orig_sr // gcd, new_sr // gcd
        base = min(self.orig, self.new) * rolloff
        self.width = math.ceil(zero_crossings * self.orig / base)
        offsets = np.arange(-self.width, self.width + self.orig) / self.orig
        t = (offsets[None, :] - np.arange(self.new)[:, None] / self.new) * base
        t = np.clip(t, -zero_crossings, zero_crossings)
        window = np.i0(beta * np.sqrt(1 - (t / zero_crossings) ** 2)) / np.i0(beta)
        kernel = np.sinc(t) * window * base / self.orig
        self.register_buffer("kernel", torch.from_numpy(kernel[:, None, :].astype(np.float32)), persistent=False)

    def forward(self, y):
        """[shape=(batch, n)] -> [shape=(batch, ceil(n * new / orig))]."""
        length = (y.shape[-1] * self.new + self.orig - 1) // self.orig  # no negative floor division: ONNX truncates
        padded = F.pad(y.unsqueeze(1), (self.width, self.width + self.orig))
        return F.conv1d(padded, self.kernel, stride=self.orig).transpose(1, 2).flatten(1)[:, :length]


LEVEL_DBFS = -20.0
"""The RMS level every window is brought to by `normalize_level`."""
MAX_GAIN_DB = 60.0
"""The most `normalize_level` raises a window: up to -80 dBFS RMS (`is_silent`'s threshold) comes to
`LEVEL_DBFS`; anything quieter is raised by this much only, so a near-silent fade stays quiet."""


def normalize_level(y, level_dbfs=LEVEL_DBFS, max_gain_db=MAX_GAIN_DB):
    """Windows [shape=(batch, n)] brought to an RMS of `level_dbfs` each (at most `max_gain_db` louder): the same
    music at any level gives the same output. Scaled by each window's peak first, so samples of any finite
    size (1e30 or 1e-30) neither overflow nor vanish."""
    peak = y.abs().amax(-1, keepdim=True)
    unit = y / peak.clamp_min(1e-30)
    rms = unit.square().mean(-1, keepdim=True).sqrt() * peak
    floor = 10.0 ** ((level_dbfs - max_gain_db) / 20.0)
    return unit * (10.0 ** (level_dbfs / 20.0) * peak / rms.clamp_min(floor))


class MusicnnFrontEnd(nn.Module):
    """musicnn's input: 16 kHz audio, power STFT (512, hop 256, centred, zero-padded as librosa does), the
    96-band librosa mel filterbank and log10(10000 x + 1); the STFT is a conv1d with fixed DFT kernels. With
    `level` each window is first brought to one loudness (`normalize_level`), so genres do not depend on it."""

    def __init__(self, sr=SAMPLE_RATE, n_frames=N_FRAMES, level=False):
        super().__init__()
        self.n_frames, self.level = n_frames, level
        self.resample = Resampler(sr, MUSICNN_SR)
        angle = 2 * np.pi * np.outer(np.arange(N_FFT // 2 + 1), np.arange(N_FFT)) / N_FFT
        dft = np.concatenate([np.cos(angle), -np.sin(angle)]) * torch.hann_window(N_FFT, dtype=torch.float64).numpy()
        mel = librosa.filters.mel(sr=MUSICNN_SR, n_fft=N_FFT, n_mels=N_MELS)
        self.register_buffer("dft", torch.from_numpy(dft[:, None, :].astype(np.float32)), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel), persistent=False)

    def logmel(self, y):
        """Log-mel frames of 16 kHz signals [shape=(batch, n)] -> [shape=(batch, 1 + n // 256, 96)]."""
        spec = F.conv1d(F.pad(y.unsqueeze(1), (N_FFT // 2, N_FFT // 2)), self.dft, stride=HOP_LENGTH)
        real, imag = spec.chunk(2, dim=1)
        power = real.square() + imag.square()
        return torch.log10(10000 * torch.matmul(self.mel_basis, power) + 1).transpose(1, 2)

    def patch(self, frames):
        """The first `n_frames` frames; shorter inputs are repeated to fill them (musicnn's "repeat-pad")."""
        repeats = (self.n_frames + frames.shape[1] - 1) // frames.shape[1]
        return frames.repeat(1, repeats, 1)[:, :self.n_frames]

    def forward(self, y):
        """Windows at `sr` [shape=(batch, n)] -> one patch each [shape=(batch, n_frames, 96)]."""
        return self.patch(self.logmel(self.resample(normalize_level(y) if self.level else y)))


def conv_block(conv, norm):
    """musicnn's (and its vgg's) convolution block: convolution, ReLU, then batch norm."""
    return nn.Sequential(conv, nn.ReLU(), norm)


CONSTANT_FILTER = 1e-8
"""A front-end filter whose weights' magnitudes sum to less than this outputs the ReLU of its bias whatever
its input (to ~1e-7: the input norm keeps log-mel values within +-10). 488 of MSD_musicnn's 561 front-end
filters are such (trained to zero): neither the front end nor the first mid-end convolution computes them."""


def constant_filters(conv):
    """Indices of the filters of `conv` whose output does not depend on its input (`CONSTANT_FILTER`)."""
    return (conv.weight.detach().flatten(1).abs().sum(1) < CONSTANT_FILTER).nonzero().flatten().tolist()


def frequency_max(block, x):
    """A front-end block's output max-pooled over frequency [shape=(batch, channels, frames)]. With fixed
    batch-norm statistics (eval mode) two exact shortcuts apply:
    - the pooling runs on the convolution's output, before the ReLU and the batch norm, which then see a
      tensor ~60x smaller: ReLU commutes with max, and so does a channel's batch norm where its scale is
      positive; where it is negative it commutes with min, which is max of the channel's negated convolution,
      negated;
    - only the filters that depend on their input are convolved (`CONSTANT_FILTER`); the others' channels
      are their constant ReLU(bias)."""
    conv, relu, norm = block
    if norm.training:
        return block(x).amax(3)
    constant = constant_filters(conv)
    varying = sorted(set(range(conv.out_channels)) - set(constant))
    sign = torch.where(norm.weight[varying] < 0, -1.0, 1.0)
    pooled = relu(F.conv2d(x, conv.weight[varying] * sign[:, None, None, None], conv.bias[varying] * sign).amax(3)
                  * sign[:, None])
    if constant:  # the constant channels beside the computed ones, then every channel back in its place
        fixed = relu(conv.bias[constant])[None, :, None].expand(pooled.shape[0], -1, pooled.shape[2])
        order = np.argsort(varying + constant).tolist()
        pooled = torch.cat([pooled, fixed], 1)[:, order]
    return F.batch_norm(pooled, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps)


def convolve_varying(conv, x, constant):
    """`conv` (1-D, on all of `x`'s channels) of `x` whose `constant` channels hold one value each along time:
    the varying channels are convolved window by window, the constant ones once for the whole batch (the
    zero padding at the ends makes their share depend on the position, not on the window)."""
    if not constant:
        return conv(x)
    varying = sorted(set(range(x.shape[1])) - set(constant))
    padding = conv.padding
    return (F.conv1d(x[:, varying], conv.weight[:, varying], conv.bias, padding=padding)
            + F.conv1d(x[:1, constant], conv.weight[:, constant], padding=padding))


class Musicnn(nn.Module):
    """The MSD_musicnn network: timbral (7x38, 7x67) and temporal (128, 64, 32 frames) convolutions max-pooled
    over frequency, three 1-D mid-end convolutions with residual connections, then max and mean over time,
    a 200-unit dense layer (the penultimate embedding) and 50 sigmoid tag outputs."""

    def __init__(self, n_mels=N_MELS, n_tags=50, timbral=204, temporal=51, midend=64, units=EMBEDDING_SIZE):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(conv_block(nn.Conv2d(1, timbral, (7, int(share * n_mels))),
                                                nn.BatchNorm2d(timbral, eps=BN_EPS)) for share in (0.4, 0.7))
        self.temporal = nn.ModuleList(conv_block(nn.Conv2d(1, temporal, (length, 1)),
                                                 nn.BatchNorm2d(temporal, eps=BN_EPS)) for length in (128, 64, 32))
        front = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList(conv_block(nn.Conv1d(c_in, midend, 7, padding=3),
                                               nn.BatchNorm1d(midend, eps=BN_EPS)) for c_in in (front, midend, midend))
        self.pool_norm = nn.BatchNorm1d(2 * (front + 3 * midend), eps=BN_EPS)
        self.dense = nn.Linear(2 * (front + 3 * midend), units)
        self.dense_norm = nn.BatchNorm1d(units, eps=BN_EPS)
        self.output = nn.Linear(units, n_tags)
        self.layers_size = 2 * (front + 3 * midend) + units + n_tags
        """Width of `layers`: pooled layers (1506), penultimate embedding (200) and tag logits (50)."""

    def front(self, patches):
        """The front end's features [shape=(batch, 561, frames)] of log-mel patches [shape=(batch, frames, 96)]:
        timbral and temporal convolutions, max-pooled over frequency (most of the network's cost)."""
        x = self.input_norm(patches.unsqueeze(1))
        front = [frequency_max(block, F.pad(x, (0, 0, 3, 3))) for block in self.timbral]
        for block in self.temporal:  # TensorFlow's "same" padding: the extra row goes after
            length = block[0].kernel_size[0]
            front.append(frequency_max(block, F.pad(x, (0, 0, (length - 1) // 2, length // 2))))
        return torch.cat(front, 1)

    def constant_front(self):
        """The front end's output channels that are constants (their filters' weights are zero)."""
        channels, offset = [], 0
        for block in (*self.timbral, *self.temporal):
            channels += [offset + i for i in constant_filters(block[0])]
            offset += block[0].out_channels
        return channels

    def pooled(self, front):
        """Every layer's features max- and mean-pooled over time, batch-normed [shape=(batch, 1506)] (the dense
        layer's input) from front-end features: front end and the three mid-end convolutions."""
        conv, relu, norm = self.midend[0]
        features = [front, norm(relu(convolve_varying(conv, front, self.constant_front())))]
        for block in self.midend[1:]:
            features.append(block(features[-1]) + features[-1])
        features = torch.cat(features, 1)
        pooled = torch.stack([features.amax(2), features.mean(2)], 2).flatten(1)  # TF's order: max, mean per channel
        return self.pool_norm(pooled)

    def back(self, front):
        """Penultimate-layer embeddings [shape=(batch, 200)] of front-end features: the mid-end convolutions,
        max and mean over time and the dense layer."""
        return self.dense_norm(torch.relu(self.dense(self.pooled(front))))

    def layers(self, patches):
        """Pooled layers, penultimate embeddings and tag logits of patches, side by side [shape=(batch, 1756)]."""
        pooled = self.pooled(self.front(patches))
        embedding = self.dense_norm(torch.relu(self.dense(pooled)))
        return torch.cat([pooled, embedding, self.output(embedding)], 1)

    def embed(self, patches):
        """Penultimate-layer embeddings [shape=(batch, 200)] of log-mel patches [shape=(batch, frames, 96)]."""
        return self.back(self.front(patches))

    def forward(self, patches):
        """MSD tag probabilities (rows of musicnn's taggram) [shape=(batch, 50)]."""
        return torch.sigmoid(self.output(self.embed(patches)))


@register_network("msd_musicnn", weights=WEIGHTS, adaptable=True,
                  description="MSD_musicnn (Pons & Serra 2019): musically motivated CNN trained to tag the Million "
                              "Song Dataset; 3 s patches of 96-band log-mel at 16 kHz; 200-d penultimate embedding")
def load_musicnn(path=WEIGHTS):
    """The MSD_musicnn port with its converted weights, in eval mode."""
    if not Path(path).is_file():
        raise GenrekitError(f"{path}: musicnn weights not found (scripts/convert_musicnn.py writes them)")
    model = Musicnn()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
