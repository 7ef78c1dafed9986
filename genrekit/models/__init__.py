"""The eight models of the paper and genre models on pretrained networks behind one registry; the pretrained
networks behind another (`genrekit.models.pretrained`)."""

from . import backbone, cnn, musicnn, rnn, vgg  # noqa: F401  (register the models and the pretrained networks)
from .pretrained import list_networks, pretrained_network
from .registry import create_model, list_models, register_model

PAPER_MODELS = tuple(list_models("cnn-*") + list_models("rnn-*"))
"""The paper's eight models (CNN and RNN on each representation), without pretrained backbones."""

__all__ = ["PAPER_MODELS", "create_model", "list_models", "list_networks", "pretrained_network", "register_model"]
