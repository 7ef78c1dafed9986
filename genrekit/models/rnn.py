"""RNNs as in the paper: stacked LSTMs over chroma, log-mel or spectrogram frames, a GRU over the waveform.

Sequences run over time frames; the waveform is cut into frames of `frame` samples first (raw samples one
by one would be a sequence of 66,150 steps for 3 s). The last layer's final hidden state goes through
dropout to a linear head.
"""

from torch import nn

from ..constants import HOP_LENGTH, N_CHROMA, N_FFT, N_MELS
from .registry import register_model


class SequenceRNN(nn.Module):
    """LSTM or GRU layers over `(batch, features, steps)` frames (or framed raw samples)."""

    def __init__(self, n_classes, representation, input_size, *, hidden=64, layers=2, cell="lstm",
                 frame=None, dropout=0.3):
        super().__init__()
        self.representation, self.n_classes, self.frame = representation, n_classes, frame
        self.input_norm = nn.BatchNorm1d(input_size)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(input_size, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x):
        if self.frame:  # (batch, n) samples -> (batch, frame, steps)
            steps = x.shape[-1] // self.frame
            x = x[:, : steps * self.frame].reshape(x.shape[0], steps, self.frame).transpose(1, 2)
        _, state = self.rnn(self.input_norm(x).transpose(1, 2))
        hidden = state[0] if isinstance(state, tuple) else state
        return self.fc(self.dropout(hidden[-1]))


@register_model("rnn-chroma")
def rnn_chroma(n_classes, rows=N_CHROMA, **kwargs):
    """LSTM 256 -> LSTM 256 -> dense (the paper's chroma RNN)."""
    return SequenceRNN(n_classes, "chroma", rows, **{"hidden": 256, "layers": 2, **kwargs})


@register_model("rnn-logmel")
def rnn_logmel(n_classes, rows=N_MELS, **kwargs):
    """LSTM 64 -> LSTM 64 -> dense (the paper's spectrogram RNN, on log-mel frames)."""
    return SequenceRNN(n_classes, "logmel", rows, **{"hidden": 64, "layers": 2, **kwargs})


@register_model("rnn-spectrogram")
def rnn_spectrogram(n_classes, rows=1 + N_FFT // 2, **kwargs):
    """LSTM 64 -> LSTM 64 -> dense on STFT frames."""
    return SequenceRNN(n_classes, "spectrogram", rows, **{"hidden": 64, "layers": 2, **kwargs})


@register_model("rnn-waveform")
def rnn_waveform(n_classes, frame=HOP_LENGTH, **kwargs):
    """GRU 256 -> dense over the waveform cut into frames of `frame` samples (the paper's waveform RNN)."""
    return SequenceRNN(n_classes, "waveform", frame, frame=frame, **{"hidden": 256, "layers": 1, "cell": "gru", **kwargs})
