import numpy as np
import pytest
import torch

from genrekit.scoring import window_length
from genrekit.exceptions import ParameterError
from genrekit.feature_params import FeatureParams
from genrekit.features import compute_features
from genrekit.models import PAPER_MODELS, create_model, list_models

EIGHT = ["cnn-chroma", "cnn-logmel", "cnn-spectrogram", "cnn-waveform",
         "rnn-chroma", "rnn-logmel", "rnn-spectrogram", "rnn-waveform"]


def test_registry_has_the_eight_models_and_the_musicnn_backbone():
    assert list_models() == ["backbone-musicnn", *EIGHT] and list(PAPER_MODELS) == EIGHT
    assert list_models("rnn-*") == EIGHT[4:]
    with pytest.raises(ParameterError, match="unknown model 'cnn-mfcc'; known: backbone-musicnn, cnn-chroma"):
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


@pytest.mark.parametrize("name", list_models("cnn-*"))
def test_squeeze_excitation_gates_channels_per_input(name):
    from genrekit.models.cnn import SqueezeExcite

    torch.manual_seed(0)  # unseeded, the chroma model's two gates came out alike (allclose) in 8 of 300 draws
    model = create_model(name, 5, se=True).eval()
    gates = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    assert len(gates) == 4
    seen = []
    gates[0].gate.register_forward_hook(lambda module, inputs, output: seen.append(output))
    rows = {"waveform": None, "spectrogram": 1025, "logmel": 128, "chroma": 12}[model.representation]
    x = torch.randn(2, 22050) if rows is None else torch.randn(2, rows, 44)
    x[1] = 4 * x[1] + 2  # a louder, brighter second input
    with torch.no_grad():
        assert model(x).shape == (2, 5)
    assert seen[0].shape[0] == 2 and ((seen[0] > 0) & (seen[0] < 1)).all()
    assert not torch.allclose(seen[0][0], seen[0][1])  # each input gets its own gates


def test_pretrained_networks_are_registered_and_describe_themselves():
    from pathlib import Path

    from genrekit.exceptions import ParameterError
    from genrekit.models import create_model, list_networks, pretrained_network
    from genrekit.models.pretrained import register_network

    networks = {network.name: network for network in list_networks()}
    assert set(networks) >= {"msd_musicnn", "msd_vgg"}
    assert networks["msd_musicnn"].adaptable and not networks["msd_vgg"].adaptable
    assert all(Path(network.weights).is_file() and network.description for network in networks.values())
    with pytest.raises(ParameterError, match="network must be one of msd_musicnn, msd_vgg"):
        create_model("backbone-musicnn", 3, network="msd_resnet")
    with pytest.raises(ParameterError, match="msd_vgg is frozen only"):
        create_model("backbone-musicnn", 3, network="msd_vgg", fine_tune="all")
    with pytest.raises(ParameterError, match="registered twice"):
        register_network("msd_vgg", description="again", weights="x")(lambda: None)
    assert pretrained_network("msd_vgg").load().layers_size == create_model(
        "backbone-musicnn", 3, network="msd_vgg", layers="all").backbone.layers_size
