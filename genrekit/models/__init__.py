"""The eight models of the paper and pretrained musicnn-family backbones behind one registry."""

from . import backbone, cnn, rnn  # noqa: F401  (registers the models)
from .registry import create_model, list_models, register_model

PAPER_MODELS = tuple(list_models("cnn-*") + list_models("rnn-*"))
"""The paper's eight models (CNN and RNN on each representation), without pretrained backbones."""

__all__ = ["PAPER_MODELS", "create_model", "list_models", "register_model"]
