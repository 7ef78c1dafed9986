"""CNNs: 1-D convolutions on the raw waveform, 2-D on the spectrogram, log-mel and chroma images.

Each maps a batch of one representation (`(batch, n)` samples or `(batch, rows, frames)`) to class
logits: a batch norm on the input, convolution blocks with batch norm, ReLU and pooling, then global
mean+max pooling, dropout and a linear head.

`se=True` adds squeeze-and-excitation channel gating after every block (the paper's "selective
activation" inside a network): each input turns its feature channels up or down.
"""

import torch
from torch import nn

from ..constants import N_CHROMA, N_FFT, N_MELS
from .registry import register_model


class SqueezeExcite(nn.Module):
    """Channel gates in (0, 1) computed from the globally pooled channels (Hu et al., 2018)."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(channels, max(channels // reduction, 4)), nn.ReLU(),
                                  nn.Linear(max(channels // reduction, 4), channels), nn.Sigmoid())

    def forward(self, x):
        gates = self.gate(x.flatten(2).mean(-1))
        return x * gates.view(*gates.shape, *([1] * (x.dim() - 2)))


def _block(conv, norm, pool, channels, se):
    return nn.Sequential(conv, norm, nn.ReLU(), *([SqueezeExcite(channels)] if se else []), pool)


class GlobalPoolHead(nn.Module):
    """Mean and max over every axis after the channels, dropout, then a linear classifier."""

    def __init__(self, channels, n_classes, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * channels, n_classes)

    def forward(self, x):
        x = x.flatten(2)
        return self.fc(self.dropout(torch.cat([x.mean(-1), x.amax(-1)], dim=1)))


class ImageCNN(nn.Module):
    """2-D CNN over a `(rows, frames)` time-frequency image; frequency is pooled only while rows remain."""

    def __init__(self, n_classes, representation, rows, *, channels=(16, 32, 64, 64), row_pool=1, dropout=0.3,
                 se=False):
        super().__init__()
        self.representation, self.n_classes = representation, n_classes
        self.input_norm = nn.BatchNorm2d(1)
        self.row_pool = nn.AvgPool2d((row_pool, 1)) if row_pool > 1 else nn.Identity()
        blocks, c_in, height = [], 1, rows // row_pool
        for c_out in channels:
            pool = (2 if height >= 4 else 1, 2)
            blocks.append(_block(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.MaxPool2d(pool), c_out, se))
            c_in, height = c_out, height // pool[0]
        self.features = nn.Sequential(*blocks)
        self.head = GlobalPoolHead(c_in, n_classes, dropout)

    def forward(self, x):
        return self.head(self.features(self.row_pool(self.input_norm(x.unsqueeze(1)))))


class WaveformCNN(nn.Module):
    """1-D CNN over raw samples: a strided wide first layer, then narrower convolutions and pooling by 4."""

    def __init__(self, n_classes, *, channels=(16, 32, 64, 128), first_kernel=64, first_stride=4, dropout=0.3,
                 se=False):
        super().__init__()
        self.representation, self.n_classes = "waveform", n_classes
        self.input_norm = nn.BatchNorm1d(1)
        blocks, c_in = [], 1
        for i, c_out in enumerate(channels):
            kernel, stride = (first_kernel, first_stride) if i == 0 else (9, 1)
            blocks.append(_block(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                                 nn.BatchNorm1d(c_out), nn.MaxPool1d(4), c_out, se))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = GlobalPoolHead(c_in, n_classes, dropout)

    def forward(self, x):
        return self.head(self.features(self.input_norm(x.unsqueeze(1))))


@register_model("cnn-waveform")
def cnn_waveform(n_classes, **kwargs):
    return WaveformCNN(n_classes, **kwargs)


@register_model("cnn-spectrogram")
def cnn_spectrogram(n_classes, rows=1 + N_FFT // 2, **kwargs):
    return ImageCNN(n_classes, "spectrogram", rows, row_pool=kwargs.pop("row_pool", 8), **kwargs)


@register_model("cnn-logmel")
def cnn_logmel(n_classes, rows=N_MELS, **kwargs):
    return ImageCNN(n_classes, "logmel", rows, **kwargs)


@register_model("cnn-chroma")
def cnn_chroma(n_classes, rows=N_CHROMA, **kwargs):
    return ImageCNN(n_classes, "chroma", rows, **kwargs)
