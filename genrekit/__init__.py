"""genrekit: music genre prediction from audio with CNN and RNN ensembles.

The names below are imported on first use, so `import genrekit` (and `genrekit --help`) does not load torch.
"""

import atexit
import os
import shutil
import tempfile
from importlib import import_module
from pathlib import Path

from .constants import DEFAULT_CACHE_DIR
from .exceptions import AudioError, DatasetError, GenrekitError, ParameterError


def _can_create(path):
    """Whether this process may create `path` (or write in it, where it exists)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK | os.X_OK)


def _numba_cache_dir():
    """Where numba (under librosa) keeps its compiled functions: under genrekit's cache folder, or, where that
    cannot be made (a service user without a HOME, no GENREKIT_CACHE), a private temporary folder removed at
    exit (numba refuses to import librosa without a writable place)."""
    folder = DEFAULT_CACHE_DIR / "numba"
    if _can_create(folder):
        return str(folder)
    temporary = tempfile.mkdtemp(prefix="genrekit-numba-")
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    return temporary


# Nothing is written outside genrekit's cache folder: numba keeps its compiled functions there instead of
# beside the installed package or in HOME, and onnxruntime keeps no telemetry id in ~/.cache/Microsoft.
# Settings of the user's own win.
if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
_LAZY = {"audio_info": "audio", "load_audio": "audio", "create_model": "models", "list_models": "models",
         "Classifier": "predict", "Prediction": "predict", "load": "predict"}
__all__ = ["AudioError", "DatasetError", "GenrekitError", "ParameterError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
