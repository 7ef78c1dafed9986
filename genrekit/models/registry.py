"""Model registry in the spirit of timm: `register_model`, `create_model`, `list_models`."""

import fnmatch

from ..exceptions import ParameterError

_MODELS = {}


def register_model(name):
    """Decorator registering a factory `fn(n_classes, **kwargs) -> nn.Module` under `name`."""

    def decorate(factory):
        if name in _MODELS:
            raise ParameterError(f"model {name!r} registered twice")
        _MODELS[name] = factory
        return factory

    return decorate


def list_models(pattern="*"):
    """Registered model names matching a shell pattern, sorted."""
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def create_model(name, n_classes, **kwargs):
    """A fresh model by registered name; every model has `.representation` and `.n_classes`."""
    if name not in _MODELS:
        raise ParameterError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    if n_classes < 2:
        raise ParameterError(f"n_classes must be at least 2, got {n_classes}")
    model = _MODELS[name](n_classes, **kwargs)
    model.name = name
    model.config = dict(kwargs)
    return model
