"""genrekit: music genre prediction from audio with CNN and RNN ensembles.

The names below are imported on first use, so `import genrekit` (and `genrekit --help`) does not load torch.
"""

from importlib import import_module

from .exceptions import AudioError, DatasetError, GenrekitError, ParameterError

__version__ = "0.1.0"
_LAZY = {"audio_info": "audio", "load_audio": "audio", "create_model": "models", "list_models": "models",
         "Classifier": "predict", "Prediction": "predict", "load": "predict"}
__all__ = ["AudioError", "DatasetError", "GenrekitError", "ParameterError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
