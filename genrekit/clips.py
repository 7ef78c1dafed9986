"""Clips of one representation for training: memory-mapped cached features, windows cut by the serving rules.

Windows are cut from clips that already belong to one split, so no window of a test clip can be in
training. A clip shorter than a window is looped to one window before its features are computed, as
`genrekit.scoring` does when it serves; the rest is read from the `FeatureCache` without copying, as float32
for the waveform (the signal the model is served), so memory stays bounded on large corpora.
"""

import numpy as np
import torch

from .cache import FeatureCache, fill_cache
from .datasets import label_masks
from .feature_params import FeatureParams
from .features import compute_features
from .progress import progress_bar
from .scoring import cut_windows, loop_to, window_frames, window_length, window_starts


class ClipSet:
    """One representation of some tracks with their right answers (`targets`: `label_masks`, one row per
    clip); `n_samples` are the clips' lengths in samples."""

    def __init__(self, arrays, targets, keys, representation, n_samples, params=FeatureParams()):
        self.arrays, self.targets, self.keys = arrays, np.asarray(targets), keys
        self.representation, self.n_samples, self.params = representation, list(n_samples), params

    def __len__(self):
        return len(self.arrays)

    @classmethod
    def from_tracks(cls, tracks, representation, labels, cache=None, *, window_seconds, workers=None, progress=True):
        """Load (computing and caching where needed) one representation of `tracks`; failures are skipped."""
        cache = cache or FeatureCache()
        label_masks(tracks, labels)  # unknown labels: an error before any work
        status = fill_cache(tracks, cache, workers=workers, progress=progress)
        usable = [t for t in tracks if not status[t.key].startswith("failed")]
        window = window_length("waveform", window_seconds, cache.params)
        arrays, n_samples = [], []
        for track in usable:
            stored = cache.load(track, ("waveform", representation), mmap=True)
            array, n = clip_representation(stored["waveform"], representation, window, cache.params,
                                           stored[representation])
            arrays.append(array)
            n_samples.append(n)
        return cls(arrays, label_masks(usable, labels), [t.key for t in usable], representation, n_samples,
                   cache.params)

    def random_window(self, i, length, rng):
        """A window of `length` at a random position of clip `i`, as float32."""
        array = loop_to(self.arrays[i], length)
        start = int(rng.integers(0, array.shape[-1] - length + 1))
        return np.asarray(array[..., start:start + length], dtype=np.float32)

    def starts(self, i, window_seconds):
        """Where the windows of clip `i` that `genrekit.scoring` would score start, in samples."""
        return window_starts(self.n_samples[i], window_length("waveform", window_seconds, self.params))

    def windows(self, i, window_seconds):
        """The windows of clip `i` that `genrekit.scoring` would score, as float32."""
        starts = window_frames(self.starts(i, window_seconds), self.representation, self.params)
        return cut_windows(self.arrays[i], starts, window_length(self.representation, window_seconds, self.params))

    def embedded(self, embed, window_seconds, *, store=None, batch_size=32, progress=True):
        """The clips' windows passed through `embed(windows) -> (n, ...)` (a frozen network part), as
        `EmbeddedClips`. A `store` (`EmbeddingStore` of the same network) keeps them across runs."""
        def compute(i):
            return _embed_all(embed, self.windows(i, window_seconds), batch_size)

        return EmbeddedClips([_stored(store, (self.arrays[i], window_seconds), lambda i=i: compute(i))
                              for i in progress_bar(range(len(self)), desc="embedding", unit="clip",
                                                    enabled=progress)],
                             self.targets, self.keys)

    def embedded_views(self, embed, window_seconds, augmentation, views, *, seed=0, store=None, batch_size=32,
                       progress=True):
        """`views` randomly cut and augmented windows of each (waveform) clip passed through `embed`, as
        `EmbeddedClips`: training on a frozen part sees augmented audio at the cost of embedding it once."""
        samples = window_length("waveform", window_seconds, self.params)

        def compute(i):
            rng = np.random.default_rng([seed, i])
            windows = np.stack([augmentation.window(self.arrays[i], samples, self.params.sr, rng) for _ in range(views)])
            return _embed_all(embed, windows, batch_size)

        return EmbeddedClips([_stored(store, (self.arrays[i], window_seconds, repr(augmentation), views, seed, i),
                                      lambda i=i: compute(i))
                              for i in progress_bar(range(len(self)), desc="embedding views", unit="clip",
                                                    enabled=progress)], self.targets, self.keys)


def clip_representation(y, representation, window, params, computed=None):
    """(`representation` of the signal `y`, its length in samples): `y` looped to `window` samples first when
    shorter, as `genrekit.scoring` serves it; `computed` is that representation of `y` when at hand."""
    if len(y) < window:
        y, computed = loop_to(np.asarray(y), window), None
    if computed is None:
        computed = compute_features(y, params, (representation,))[representation]
    return computed, len(y)


def _embed_all(embed, windows, batch_size):
    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    with torch.inference_mode():
        return torch.cat([embed(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]).numpy()


def _stored(store, key, compute):
    return compute() if store is None else store.get(key, compute)


class EmbeddedClips:
    """Clips as the frozen-part outputs of their windows: clip `i` is [shape=(n_windows, ...)]; `targets` as
    `ClipSet`'s."""

    def __init__(self, arrays, targets, keys):
        self.arrays, self.targets, self.keys = arrays, np.asarray(targets), keys

    def __len__(self):
        return len(self.arrays)

    def random_window(self, i, rng):
        return self.arrays[i][int(rng.integers(len(self.arrays[i])))]

    def windows(self, i, window_seconds=None):
        return np.asarray(self.arrays[i], dtype=np.float32)
