"""A corpus's window features through a frozen backbone, as Parquet shards that training of heads reads.

`embed_corpus` decodes each track, cuts it into the windows training cuts (`genrekit.clips.ClipSet`) and
passes them through a model's frozen part (`embed`; for `backbone-musicnn`, musicnn's penultimate
embeddings), one row per window: `track` (the track's key), `start` (seconds), `label`, `split` and
`features` (float32, flattened). The shards (`part-00000.parquet`, ...) fill a hidden folder beside `out`
that is renamed to `out` once complete (a killed run leaves no `out`, and its leftovers are removed by the
next). Each shard's metadata (`genrekit`) names the frozen network (`embedding_key()`), the window length
and the feature parameters, which `embedded_clips` checks before `genrekit.training.train(...,
features=out)` trains on them: the same `EmbeddedClips` as computed in process, without decoding a file.
"""

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .audio import load_audio
from .clips import ClipSet, EmbeddedClips, clip_representation
from .datasets import label_masks
from .engine import run_work
from .exceptions import DatasetError, GenrekitError, ParameterError
from .feature_params import FeatureParams
from .models import create_model
from .progress import progress_bar
from .scoring import window_length

log = logging.getLogger(__name__)
METADATA_KEY = b"genrekit"
SHARD_ROWS = 16384
"""Windows per shard (about 13 MB of musicnn embeddings)."""


@dataclass
class EmbedSummary:
    """What an `embed_corpus` run did."""

    tracks: int = 0
    """tracks embedded"""
    windows: int = 0
    shards: int = 0
    failures: list = field(default_factory=list)
    """(track key, reason) of the tracks that could not be decoded, sorted"""


@lru_cache(maxsize=1)
def frozen_model(name, kwargs="{}"):
    """The registered model `name` (keyword arguments as JSON) whose frozen part embeds, once per process."""
    model = create_model(name, 2, **json.loads(kwargs))
    if not getattr(model, "frozen_prefixes", None):
        raise ParameterError(f"{name}: has no frozen part to embed with (e.g. backbone-musicnn)")
    return model.eval()


CRASH_REASON = "the worker process crashed while decoding or embedding this track"


@dataclass(frozen=True)
class EmbedTracks:
    """The work of embedding (a `genrekit.engine.Work`): each track's window features through the frozen part
    of the registered model `name` (keyword arguments as JSON)."""

    name: str
    kwargs: str
    window_seconds: float
    params: FeatureParams

    def setup(self):
        return frozen_model(self.name, self.kwargs)

    def run(self, model, track):
        return embed_track(model, track, self.window_seconds, self.params)

    def crashed(self, track):
        return track, None, None, CRASH_REASON


def embed_track(model, track, window_seconds, params):
    """(track, window starts in seconds, features [shape=(n_windows, ...)], None) of one track through
    `model`'s frozen part, or (track, None, None, reason) when it cannot be decoded."""
    try:
        y = load_audio(track.path, sr=params.sr, offset=track.start or 0.0, duration=track.duration)
    except GenrekitError as error:
        return track, None, None, getattr(error, "reason", str(error))
    except OSError as error:
        return track, None, None, f"cannot read ({error.strerror or error})"
    array, n = clip_representation(y, model.representation, window_length("waveform", window_seconds, params),
                                   params)
    clip = ClipSet([array], [0], [track.key], model.representation, [n], params)
    features = clip.embedded(model.embed, window_seconds, progress=False).arrays[0]
    return track, np.asarray(clip.starts(0, window_seconds)) / params.sr, features, None


class _Shards:
    """Rows of windows written as numbered Parquet files of about `SHARD_ROWS` rows."""

    def __init__(self, folder, metadata):
        self.folder, self.metadata, self.pending, self.written = folder, metadata, [], 0

    def add(self, track, starts, features):
        self.pending.append((track, starts, features))
        if sum(len(starts) for _, starts, _ in self.pending) >= SHARD_ROWS:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        tracks, starts, features = zip(*self.pending)
        counts = [len(s) for s in starts]

        def per_window(values):
            return pa.array(np.repeat(np.array(values, dtype=object), counts), pa.string())

        flat = np.concatenate([f.reshape(len(f), -1) for f in features]).astype(np.float32, copy=False)
        table = pa.table({"track": per_window([t.key for t in tracks]), "start": np.concatenate(starts),
                          "label": per_window([t.label for t in tracks]),
                          "split": per_window([t.split for t in tracks]),
                          "features": pa.FixedSizeListArray.from_arrays(flat.reshape(-1), flat.shape[1])})
        metadata = {**self.metadata, "shape": list(features[0].shape[1:])}
        pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata)}),
                       self.folder / f"part-{self.written:05d}.parquet")
        self.pending, self.written = [], self.written + 1


def embed_corpus(tracks, out, *, model="backbone-musicnn", model_kwargs=None, window_seconds=3.0,
                 params=FeatureParams(), workers=None, engine="local", address=None, progress=True):
    """Write the window features of `tracks` through the frozen part of the registered `model` as Parquet
    shards in the new folder `out` (see the module's docstring); returns an `EmbedSummary`.

    `engine` runs `EmbedTracks` over the tracks (`genrekit.engine.run_work`: "local", this machine's
    processes, `workers` of them, or "ray", the cluster at `address`). Tracks that cannot be decoded, or whose
    worker dies on them, are listed, not written.
    """
    out = Path(out)
    if out.exists():
        raise GenrekitError(f"{out}: exists; remove it or choose another output")
    kwargs = json.dumps(model_kwargs or {}, sort_keys=True)
    network = frozen_model(model, kwargs)
    work = EmbedTracks(model, kwargs, window_seconds, params)
    metadata = {"network": network.embedding_key(), "model": model, "model_kwargs": json.loads(kwargs),
                "window_seconds": window_seconds, "feature_params": asdict(params)}
    temp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)  # left by a killed run
    temp.mkdir(parents=True)
    shards, summary = _Shards(temp, metadata), EmbedSummary()
    try:
        with progress_bar(total=len(tracks), desc="embedding", unit="track", enabled=progress) as bar:
            def record(_, result):
                track, starts, features, error = result
                if error is None:
                    shards.add(track, starts, features)
                    summary.tracks += 1
                    summary.windows += len(starts)
                else:
                    summary.failures.append((track.key, error))
                bar.update()

            run_work(work, tracks, record, count=len(tracks), engine=engine, workers=workers, address=address)
        shards.flush()
        os.rename(temp, out)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    summary.shards, summary.failures = shards.written, sorted(summary.failures)
    return summary


def embedded_clips(path, tracks, labels, model, window_seconds, params=FeatureParams()):
    """The `EmbeddedClips` of `tracks` (their `label_masks` in `labels`) read from features `embed_corpus` wrote at
    `path`, after checking that they are of `model`'s frozen part, windows and feature parameters; tracks
    without features (failed when embedded) are left out, as `ClipSet.from_tracks` leaves out failures."""
    shards = sorted(Path(path).glob("part-*.parquet"))
    if not shards:
        raise DatasetError(f"{path}: no window features (part-*.parquet) written by genrekit embed")
    table = pa.concat_tables(pq.read_table(shard) for shard in shards)
    meta = json.loads(pq.read_schema(shards[0]).metadata[METADATA_KEY])
    wanted = {"network": model.embedding_key(), "window_seconds": window_seconds, "feature_params": asdict(params)}
    found = {name: meta[name] for name in wanted}
    if found != wanted:
        raise ParameterError(f"{path}: features of {found}, not of this model's frozen part and windows {wanted}")
    label_masks(tracks, labels)  # unknown labels: an error before any work
    keys, starts = table.column("track").to_numpy(zero_copy_only=False), table.column("start").to_numpy()
    features = table.column("features").combine_chunks().flatten().to_numpy().reshape(len(table), *meta["shape"])
    order = np.lexsort((starts, keys))
    keys, features = keys[order], features[order]
    names, first = np.unique(keys, return_index=True)
    spans = dict(zip(names, zip(first, np.append(first[1:], len(keys)))))
    usable = [t for t in tracks if t.key in spans]
    if len(usable) < len(tracks):
        log.warning("%s: %d of %d tracks have no features (they failed when embedded)", path,
                    len(tracks) - len(usable), len(tracks))
    return EmbeddedClips([features[slice(*spans[t.key])] for t in usable], label_masks(usable, labels),
                         [t.key for t in usable])
