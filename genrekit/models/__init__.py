"""The eight models of the paper behind one registry."""

from . import cnn, rnn  # noqa: F401  (registers the models)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
