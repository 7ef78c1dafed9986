"""The ray engine of `tag` and `embed` against a real local Ray instance, started once for the session."""

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from conftest import process_alive, wait_until, write_tone, write_toy_dataset
from genrekit.cache import FeatureCache
from genrekit.checkpoints import read_file
from genrekit.cli import app
from genrekit.datasets import Track, load_dataset, select, write_manifest
from genrekit.exceptions import ParameterError
from genrekit.library import CRASH_REASON, tag_library
from genrekit.predict import load
from genrekit.training import TrainConfig, train
from test_library import BAD, GOOD, make_library, relative, rows, same_results

try:
    import ray
except ImportError:
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'genrekit[ray]')")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's workers in /proc")
runner = CliRunner()
TASK_TITLE = b"ray::_run_task"
"""The process title of a Ray worker while it classifies a file."""


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the session's Ray tests (all in this module), stopped after them, so that
    the tests after them never fork a process that holds Ray's threads."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def fast():
    return load("fast")


def classifying_workers():
    """Pids of the Ray workers of this machine that are classifying a file now."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[0] == TASK_TITLE:
                found.append(int(cmdline.parent.name))
        except OSError:  # gone meanwhile
            pass
    return found


def long_library(root, n=24, seconds=60.0):
    """`make_library` and `n` one-minute tones (each takes the fast model about 0.1 s); (good, bad) files."""
    make_library(root)
    for i in range(n):
        write_tone(root / f"{i:02d}.flac", 200 + 60 * i, seconds=seconds)
    return n + len(GOOD), len(BAD)


@needs_ray
def test_a_folder_tagged_through_ray_has_the_same_rows_as_local(tmp_path, ray_address, fast):
    root = make_library(tmp_path / "music")
    result = runner.invoke(app, ["tag", str(root), "--db", str(tmp_path / "ray.sqlite"), "--model", "fast",
                                 "--engine", "ray", "--workers", "2"])
    assert result.exit_code == 1, result.output  # the bad files
    assert "9 audio files:" in result.output and "4 failed" in result.output
    for name in BAD:
        assert f"{(root / name).resolve()}: " in result.output
    local = tag_library(root, tmp_path / "local.sqlite", fast, workers=1, progress=False)
    assert (local.tagged + local.reused, local.failed) == (5, 4)
    same_results(rows(tmp_path / "ray.sqlite"), rows(tmp_path / "local.sqlite"))


@needs_ray
@linux
def test_a_ray_worker_killed_mid_run_loses_and_doubles_nothing(tmp_path, ray_address, fast):
    good, bad = long_library(tmp_path / "music")
    db, killed = tmp_path / "lib.sqlite", []

    def kill_one_busy_worker():
        def busy():
            try:
                return len(rows(db)) >= 2 and classifying_workers()
            except Exception:  # noqa: BLE001 - the table is being created
                return False

        if wait_until(busy, 120):
            pid = classifying_workers()[0]
            killed.append((pid, len(rows(db))))
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    summary = tag_library(tmp_path / "music", db, fast, engine="ray", workers=2, progress=False)
    killer.join()
    assert killed and killed[0][1] < good + bad, "no worker was killed while files were left"
    assert (summary.tagged + summary.reused, summary.failed) == (good, bad)
    assert CRASH_REASON not in [reason for _, reason in summary.failures]
    table = relative(rows(db), tmp_path / "music")
    assert len(table) == good + bad
    assert all(table[f"{i:02d}.flac"]["genre"] and table[f"{i:02d}.flac"]["error"] is None for i in range(24))


DRIVER = """
import sys
from genrekit.library import tag_library
from genrekit.predict import load
tag_library(sys.argv[1], sys.argv[2], load("fast"), engine="ray", address=sys.argv[3], workers=2,
            progress=False)
"""


@needs_ray
@linux
def test_a_driver_killed_mid_run_resumes_with_every_file_once(tmp_path, ray_address, fast):
    good, bad = long_library(tmp_path / "music")
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(root), str(db), ray_address])
    try:
        def started():
            try:
                return (len(rows(db)) >= 3 and classifying_workers()) or driver.poll() is not None
            except Exception:  # noqa: BLE001 - the table is being created
                return False

        assert wait_until(started, 180), "the driver had not tagged 3 files with a worker classifying in 180 s"
        assert driver.poll() is None, "the driver ended before it was killed"
        workers = classifying_workers()
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert workers, "no Ray worker was classifying when the driver was killed"
    assert wait_until(lambda: not any(process_alive(pid) for pid in workers), 30), "its Ray workers outlived it"
    partial_rows = rows(db)
    assert 3 <= len(partial_rows) < good + bad
    resumed = tag_library(root, db, fast, engine="ray", progress=False)
    assert resumed.skipped + resumed.unchanged_failed == len(partial_rows)
    assert resumed.tagged + resumed.reused + resumed.failed == good + bad - len(partial_rows)
    finished = rows(db)
    assert all(finished[path] == row for path, row in partial_rows.items())  # committed rows kept as they were
    tag_library(root, tmp_path / "reference.sqlite", fast, workers=1, progress=False)
    same_results(finished, rows(tmp_path / "reference.sqlite"))


@needs_ray
def test_embed_through_ray_then_a_head_trained_on_it_equals_one_trained_in_process(tmp_path, ray_address):
    tracks = write_toy_dataset(tmp_path / "toy", per_class=4, seconds=7.0)  # two 3 s windows per clip
    broken = tmp_path / "toy" / "broken.wav"
    broken.write_bytes(os.urandom(2000))
    write_manifest(tracks + [Track(str(broken), "low", "broken", "toy", "train")], tmp_path / "toy" / "manifest.csv")
    result = runner.invoke(app, ["embed", str(tmp_path / "toy"), "--out", str(tmp_path / "toy.parquet"),
                                 "--engine", "ray"])
    assert result.exit_code == 1, result.output
    assert "24 windows of 12 clips in 1 shards, 1 failed" in result.output
    assert f"{broken}: not a readable audio file" in result.output
    tracks = load_dataset(str(tmp_path / "toy"))
    table = pq.read_table(tmp_path / "toy.parquet").to_pandas()
    assert sorted(table.columns) == ["features", "label", "split", "start", "track"]
    first = table[table.track == tracks[0].key].sort_values("start")
    assert list(first.start) == [0.0, 3.0] and set(first.label) == {tracks[0].label}
    assert set(first.split) == {tracks[0].split} and len(first.features.iloc[0]) == 200

    config = TrainConfig(model="backbone-musicnn", epochs=2, batch_size=4, seed=3)
    labels, train_tracks, valid_tracks = ["high", "low", "noisy"], select(tracks, "train"), select(tracks, "valid")
    in_process = train(config, train_tracks, valid_tracks, tmp_path / "in-process", labels=labels,
                       cache=FeatureCache(tmp_path / "cache"), workers=1, progress=False)
    from_parquet = train(config, train_tracks, valid_tracks, tmp_path / "from-parquet", labels=labels,
                         features=tmp_path / "toy.parquet", progress=False)
    a, b = read_file(in_process), read_file(from_parquet)
    assert a["metrics"]["train_clips"] == b["metrics"]["train_clips"] == 6
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.allclose(a["state_dict"][k], b["state_dict"][k], atol=1e-6) for k in a["state_dict"])
    assert np.allclose([e["train_loss"] for e in a["history"]], [e["train_loss"] for e in b["history"]], atol=1e-6)
    with pytest.raises(ParameterError, match="not of this model"):
        train(TrainConfig(model="backbone-musicnn", epochs=1, window_seconds=2.0), train_tracks, valid_tracks,
              tmp_path / "other", labels=labels, features=tmp_path / "toy.parquet", progress=False)


WITHOUT_RAY = """
import sys
sys.modules["ray"] = None  # as if it were not installed: `import ray` raises ImportError
from genrekit.cli import main
sys.argv = ["genrekit", "tag", sys.argv[1], "--db", sys.argv[2], "--engine", "ray"]
main()
"""


def test_without_ray_the_ray_engine_says_how_to_install_it_in_one_line(tmp_path):
    write_tone(tmp_path / "music" / "a.wav", 440)
    result = subprocess.run([sys.executable, "-c", WITHOUT_RAY, str(tmp_path / "music"), str(tmp_path / "lib.sqlite")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: the ray engine needs Ray, which is not installed: pip install 'genrekit[ray]'"]
    assert not (tmp_path / "lib.sqlite").exists()
