"""genrekit: music genre prediction from audio with CNN and RNN ensembles.

The names below are imported on first use, so `import genrekit` (and `genrekit --help`) does not load torch.
"""

import os
from importlib import import_module

from .constants import DEFAULT_CACHE_DIR
from .exceptions import AudioError, DatasetError, GenrekitError, ParameterError

# Nothing is written outside genrekit's cache folder: numba (under librosa) keeps its compiled functions there
# instead of beside the installed package or in HOME, and onnxruntime keeps no telemetry id in
# ~/.cache/Microsoft. Settings of the user's own win.
os.environ.setdefault("NUMBA_CACHE_DIR", str(DEFAULT_CACHE_DIR / "numba"))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
_LAZY = {"audio_info": "audio", "load_audio": "audio", "create_model": "models", "list_models": "models",
         "Classifier": "predict", "Prediction": "predict", "load": "predict"}
__all__ = ["AudioError", "DatasetError", "GenrekitError", "ParameterError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
