"""On-disk feature cache keyed by (file content, feature parameters, span).

A second run over a dataset reads what the first computed. Entries are written to a temporary file and
renamed, so an interrupted run never leaves a half-written entry behind.
"""

import hashlib
import os
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .audio import load_audio
from .constants import DEFAULT_CACHE_DIR, REPRESENTATIONS
from .digest import file_digest
from .exceptions import AudioError
from .feature_params import FeatureParams
from .features import compute_features
from .parallel import map_unordered

STORED_DTYPES = {"waveform": np.float32, "spectrogram": np.float16, "logmel": np.float16, "chroma": np.float16}
"""dB images and chroma keep 3 significant digits (float16) to halve the cache; the signal stays float32."""


class FeatureCache:
    """The four representations of tracks, computed once and kept under `root`, one `.npy` file per
    representation in a folder per track (so training can memory-map them)."""

    def __init__(self, root=DEFAULT_CACHE_DIR, params=FeatureParams()):
        self.root = Path(root)
        self.params = params
        self._params_digest = params.digest()

    def entry_path(self, track):
        """The folder of the features of `track` (depends on the file's content, not its name)."""
        digest = file_digest(track.path)
        span = "full" if track.start is None else f"{track.start:g}-{track.end:g}"
        return self.root / self._params_digest / digest[:2] / f"{digest}_{span}"

    def load(self, track, representations=REPRESENTATIONS, *, mmap=False):
        """Features of `track` as a dict of arrays (float32, or as stored and memory-mapped with `mmap`),
        computed and stored on a miss."""
        path = self.entry_path(track)
        if not path.is_dir():
            self._store(path, self._compute(track))
        if mmap:
            return {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in representations}
        return {name: np.load(path / f"{name}.npy").astype(np.float32) for name in representations}

    def ensure(self, track):
        """Compute and store the features of `track` unless present; True when it had to compute."""
        path = self.entry_path(track)
        if path.is_dir():
            return False
        self._store(path, self._compute(track))
        return True

    def _compute(self, track):
        y = load_audio(track.path, sr=self.params.sr, offset=track.start or 0.0, duration=track.duration)
        return compute_features(y, self.params)

    def _store(self, path, features):
        """Write the entry's files into a temporary folder beside it, then rename the folder into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        try:
            for name, value in features.items():
                np.save(temp / f"{name}.npy", value.astype(STORED_DTYPES[name]))
            os.chmod(temp, 0o755)
            os.rename(temp, path)
        except OSError:
            if not path.is_dir():  # another process may have stored the same entry meanwhile
                raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)


class EmbeddingStore:
    """Window embeddings by one frozen network, kept as `.npy` files under `root/embeddings/<network_key>` and
    keyed by the clip's content and the window length, so repeated trainings (cross-validation folds) embed
    every clip once."""

    def __init__(self, root, network_key):
        self.root = Path(root) / "embeddings" / network_key

    def path(self, key):
        """Where the embeddings of `key` live: a tuple of arrays (a clip's samples) and plain values."""
        digest = hashlib.sha1()
        for part in key:
            if isinstance(part, np.ndarray):
                digest.update(f"{part.dtype}{part.shape}".encode())
                digest.update(np.ascontiguousarray(part).tobytes())
            else:
                digest.update(repr(part).encode())
        name = digest.hexdigest()
        return self.root / name[:2] / f"{name}.npy"

    def get(self, key, compute):
        """The stored embeddings of `key`, or else `compute()`'s, stored for the next time."""
        path = self.path(key)
        if path.is_file():
            return np.load(path)
        embeddings = compute()
        with atomic_path(path) as temp, open(temp, "wb") as out:
            np.save(out, embeddings)
        return embeddings


def cache_parts(root=DEFAULT_CACHE_DIR):
    """What genrekit keeps under a cache folder as {folder: (files, bytes)}: feature sets (a folder per set of
    feature parameters), `embeddings` and `onnx` exports (all remade on demand). Other folders are not listed."""
    root = Path(root)
    folders = sorted(path for path in root.iterdir() if path.is_dir() and (
        path.name in ("embeddings", "onnx") or re.fullmatch(r"[0-9a-f]{12}", path.name))) if root.is_dir() else []
    return {folder: _usage(folder) for folder in folders}


def _usage(folder):
    sizes = [path.stat().st_size for path in folder.rglob("*") if path.is_file()]
    return len(sizes), sum(sizes)


def _fill_one(cache, track):
    """Make sure `track` is cached; returns (track key, 'cached' | 'computed' | error reason)."""
    try:
        return track.key, "computed" if cache.ensure(track) else "cached"
    except (AudioError, OSError) as error:
        return track.key, f"failed: {getattr(error, 'reason', error)}"


def fill_cache(tracks, cache, *, workers=None, progress=True):
    """Compute and store the features of every track with a process pool; returns key -> status."""
    return dict(map_unordered(partial(_fill_one, cache), tracks, workers=workers, desc="features", unit="clip",
                              progress=progress))
