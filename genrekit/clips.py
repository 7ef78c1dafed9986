"""Clips of one representation held in memory, and the windows cut from them for training and evaluation.

Windows are cut from clips that already belong to one split, so no window of a test clip can be in
training.
"""

import numpy as np
import torch
from tqdm import tqdm

from .cache import FeatureCache, fill_cache
from .exceptions import DatasetError
from .features import FeatureParams


def window_length(representation, window_seconds, params=FeatureParams()):
    """Samples (waveform) or STFT frames (the others) in a window of `window_seconds`."""
    samples = int(round(window_seconds * params.sr))
    return samples if representation == "waveform" else params.n_frames(samples)


def _fit(array, length):
    """Pad the last axis up to `length` with the array's minimum (silence in every representation)."""
    missing = length - array.shape[-1]
    if missing <= 0:
        return array
    return np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, missing)], constant_values=array.min())


def window_starts(total, length, hop=None):
    """Starts of windows of `length` every `hop` (default: `length`) over `total` positions, the last one
    flush with the end so all is covered (one window at 0 when `total` <= `length`)."""
    hop = hop or length
    starts = list(range(0, max(total - length, 0) + 1, hop))
    if starts[-1] < total - length:
        starts.append(total - length)
    return starts


def cut_windows(array, starts, length):
    """Windows of `length` at `starts` along the last axis (padded where the array is too short).
    Returns [shape=(len(starts), ..., length)]."""
    array = _fit(array, max(starts) + length)
    return np.stack([array[..., s:s + length] for s in starts])


def clip_windows(array, length, hop=None):
    """All windows of a clip (see `window_starts`). Returns [shape=(n_windows, ..., length)]."""
    return cut_windows(array, window_starts(array.shape[-1], length, hop), length)


class ClipSet:
    """One representation of some tracks (float16 in memory) with label indices."""

    def __init__(self, arrays, targets, keys, representation):
        self.arrays, self.targets, self.keys, self.representation = arrays, np.asarray(targets), keys, representation

    def __len__(self):
        return len(self.arrays)

    @classmethod
    def from_tracks(cls, tracks, representation, labels, cache=None, *, workers=None, progress=True):
        """Load (computing and caching where needed) one representation of `tracks`; failures are skipped."""
        cache = cache or FeatureCache()
        index = {label: i for i, label in enumerate(labels)}
        unknown = {t.label for t in tracks} - set(index)
        if unknown:
            raise DatasetError(f"labels {sorted(unknown)} are not in the model's label set {list(labels)}")
        status = fill_cache(tracks, cache, workers=workers, progress=progress)
        usable = [t for t in tracks if not status[t.key].startswith("failed")]
        arrays = [cache.load(t, (representation,))[representation].astype(np.float16) for t in usable]
        return cls(arrays, [index[t.label] for t in usable], [t.key for t in usable], representation)

    def random_window(self, i, length, rng):
        """A window of `length` at a random position of clip `i`, as float32."""
        array = _fit(self.arrays[i], length)
        start = int(rng.integers(0, array.shape[-1] - length + 1))
        return array[..., start:start + length].astype(np.float32)

    def windows(self, i, length, hop=None):
        """All windows of clip `i` (see `clip_windows`), as float32."""
        return clip_windows(self.arrays[i], length, hop).astype(np.float32)

    def embedded(self, embed, length, *, store=None, batch_size=32, progress=True):
        """The clips as sequences of embeddings, one per window of `length` (hop `length`) computed by
        `embed(windows) -> (n, dim)`: a ClipSet whose clips are [shape=(dim, n_windows)], so a window of
        length 1 is one embedding. A `store` (`EmbeddingStore` of the same network) keeps them across runs."""
        def compute(i):
            windows = torch.from_numpy(self.windows(i, length))
            return torch.cat([embed(windows[s:s + batch_size]) for s in range(0, len(windows), batch_size)]).T.numpy()

        arrays = []
        with torch.inference_mode():
            for i in tqdm(range(len(self)), desc="embedding", unit="clip", disable=not progress):
                arrays.append(store.get(self.arrays[i], length, lambda: compute(i)) if store else compute(i))
        return ClipSet(arrays, self.targets, self.keys, "embedding")
