"""`genrekit embed` on this machine: Parquet shards of a frozen backbone's window features, read back as the
`EmbeddedClips` training computes in process."""

import numpy as np
import pytest

from conftest import write_toy_dataset
from genrekit.cache import FeatureCache
from genrekit.clips import ClipSet
from genrekit.embedding import embed_corpus, embedded_clips, frozen_model
from genrekit.exceptions import GenrekitError

LABELS = ["high", "low", "noisy"]


def test_parquet_features_are_the_in_process_embeddings(tmp_path):
    tracks = write_toy_dataset(tmp_path / "toy", per_class=3, seconds=4.0)
    tracks[0] = tracks[0].replace(start=0.5, end=4.0)  # a span of a file, and a clip shorter than two windows
    (tmp_path / ".toy.parquet.partial").mkdir()  # left by a killed run
    summary = embed_corpus(tracks, tmp_path / "toy.parquet", workers=1, progress=False)
    assert (summary.tracks, summary.windows, summary.shards, summary.failures) == (9, 9, 1, [])
    assert not (tmp_path / ".toy.parquet.partial").exists()
    model = frozen_model("backbone-musicnn")
    read = embedded_clips(tmp_path / "toy.parquet", tracks, LABELS, model, 3.0)
    computed = ClipSet.from_tracks(tracks, "waveform", LABELS, FeatureCache(tmp_path / "cache"), window_seconds=3.0,
                                   workers=1, progress=False).embedded(model.embed, 3.0, progress=False)
    assert read.keys == computed.keys and list(read.targets) == list(computed.targets)
    assert all(np.array_equal(a, b) for a, b in zip(read.arrays, computed.arrays))
    with pytest.raises(GenrekitError, match="exists"):
        embed_corpus(tracks, tmp_path / "toy.parquet", workers=1, progress=False)
