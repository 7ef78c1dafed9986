import numpy as np
import pytest
import torch

from genrekit.clips import window_length
from genrekit.exceptions import ParameterError
from genrekit.features import FeatureParams, compute_features
from genrekit.models import create_model, list_models

PAPER_MODELS = ["cnn-chroma", "cnn-logmel", "cnn-spectrogram", "cnn-waveform",
                "rnn-chroma", "rnn-logmel", "rnn-spectrogram", "rnn-waveform"]


def test_registry_has_the_eight_models():
    assert list_models() == PAPER_MODELS
    assert list_models("rnn-*") == PAPER_MODELS[4:]
    with pytest.raises(ParameterError, match="unknown model 'cnn-mfcc'; known: cnn-chroma"):
        create_model("cnn-mfcc", 5)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_forward_shape_on_real_features(name, seconds):
    model = create_model(name, 7).eval()
    y = np.random.default_rng(0).standard_normal(int(seconds * 22050)).astype(np.float32) * 0.1
    x = torch.from_numpy(np.stack([compute_features(y)[model.representation]] * 3))
    assert x.shape[-1] == window_length(model.representation, seconds)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 7) and torch.isfinite(out).all()


def test_paper_rnn_sizes():
    assert create_model("rnn-chroma", 10).rnn.hidden_size == 256
    assert create_model("rnn-chroma", 10).rnn.num_layers == 2
    assert create_model("rnn-logmel", 10).rnn.hidden_size == 64
    gru = create_model("rnn-waveform", 10).rnn
    assert isinstance(gru, torch.nn.GRU) and gru.hidden_size == 256 and gru.input_size == FeatureParams().hop_length


def test_dropout_is_applied_in_training_mode():
    model = create_model("cnn-logmel", 4, dropout=0.9).train()
    x = torch.randn(2, 128, 44)
    assert not torch.allclose(model(x), model(x))
