"""`genrekit embed` on this machine: Parquet shards of a frozen backbone's window features, read back as the
`EmbeddedClips` training computes in process."""

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_toy_dataset
from genrekit.cache import FeatureCache
from genrekit.cli import app
from genrekit.clips import ClipSet
from genrekit.embedding import embed_corpus, embedded_clips, frozen_model
from genrekit.exceptions import GenrekitError, ParameterError

LABELS = ["high", "low", "noisy"]
runner = CliRunner()


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
    assert read.keys == computed.keys and np.array_equal(read.targets, computed.targets)
    assert all(np.array_equal(a, b) for a, b in zip(read.arrays, computed.arrays))
    with pytest.raises(GenrekitError, match="exists"):
        embed_corpus(tracks, tmp_path / "toy.parquet", workers=1, progress=False)


def test_cli_embed_then_train_on_the_features(tmp_path):
    write_toy_dataset(tmp_path / "toy", per_class=3, seconds=3.0)
    features = str(tmp_path / "toy.parquet")
    result = runner.invoke(app, ["embed", str(tmp_path / "toy"), "--out", features, "--workers", "1"])
    assert result.exit_code == 0 and "9 windows of 9 clips in 1 shards, 0 failed" in result.output, result.output
    args = ["train", "--architecture", "backbone-musicnn", "--data", str(tmp_path / "toy"), "--features", features,
            "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "runs")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and (tmp_path / "runs" / "backbone-musicnn.pt").is_file(), result.output
    with pytest.raises(ParameterError, match="without augment"):
        runner.invoke(app, args + ["--augment"], catch_exceptions=False)
