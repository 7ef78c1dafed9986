"""Shared fixtures: generated audio on disk and the real clips in ../shared/data (skipped when absent)."""

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.ffmpeg_file import FFMPEG_ENCODERS, write_with_ffmpeg

SHARED_DATA = Path(os.environ.get("GENREKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def tone(freq=440.0, seconds=1.0, sr=22050, amplitude=0.5, channels=1):
    """A sine of `freq` Hz, float32, shape (n,) or (n, channels)."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.stack([y] * channels, axis=1)


def write_tone(path, freq=440.0, seconds=1.0, sr=22050, **kwargs):
    """Write a sine to `path` (format from the extension) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in FFMPEG_ENCODERS:
        return write_with_ffmpeg(path, tone(freq, seconds, sr, **kwargs), sr)
    sf.write(os.fsencode(path), tone(freq, seconds, sr, **kwargs), sr)  # bytes: any file name
    return path


def _shared(name):
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


@pytest.fixture
def gtzan_mini():
    return _shared("gtzan-mini")


@pytest.fixture
def gtzan_extra():
    return _shared("gtzan-extra")


@pytest.fixture
def midi_genres():
    return _shared("midi-genres")


REAL_EXTRA = Path(os.environ.get("GENREKIT_REAL_EXTRA", Path.home() / "genrekit-data" / "real-extra"))
"""Where shared/data/real-extra/build.py laid the real-extra audio out (`GENREKIT_REAL_EXTRA`)."""


@pytest.fixture
def real_extra():
    if not (REAL_EXTRA / "tracks.csv").is_file():
        pytest.skip(f"real-extra not built at {REAL_EXTRA} (shared/data/real-extra/build.py; GENREKIT_REAL_EXTRA)")
    return REAL_EXTRA


def write_toy_dataset(root, per_class=6, seconds=2.0, sr=22050):
    """Three easily told apart 'genres' (low tone, high tone, noise bursts) as WAVs with a manifest:
    per class, `per_class - 2` train clips, one valid and one test, each clip its own group."""
    from genrekit.datasets import Track, write_manifest

    rng = np.random.default_rng(0)
    tracks = []
    for label in ("low", "high", "noisy"):
        for i in range(per_class):
            t = np.arange(int(seconds * sr)) / sr
            if label == "noisy":
                y = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0) * 0.3
            else:
                freq = (220.0 if label == "low" else 1760.0) * rng.uniform(0.9, 1.1)
                y = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)
            path = Path(root) / label / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, y.astype(np.float32), sr)
            split = "valid" if i == per_class - 2 else "test" if i == per_class - 1 else "train"
            tracks.append(Track(str(path), label, f"{label}-{i}", "toy", split))
    write_manifest(tracks, Path(root) / "manifest.csv")
    return tracks


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return root, write_toy_dataset(root)


@pytest.fixture(scope="session")
def members(toy_dataset, tmp_path_factory):
    """Two tiny trained models (a CNN on log-mel, an LSTM on chroma) of the toy dataset and their cache."""
    from genrekit.cache import FeatureCache
    from genrekit.datasets import select
    from genrekit.training import TrainConfig, train

    _, tracks = toy_dataset
    out = tmp_path_factory.mktemp("members")
    cache = FeatureCache(tmp_path_factory.getbasetemp() / "feature-cache")
    paths = [train(TrainConfig(model=name, epochs=2, window_seconds=1.0, batch_size=8, model_kwargs=kw),
                   select(tracks, "train"), select(tracks, "valid"), out, labels=["high", "low", "noisy"],
                   cache=cache, workers=1, progress=False)
             for name, kw in (("cnn-logmel", {"channels": (4, 8)}), ("rnn-chroma", {"hidden": 8}))]
    return paths, cache


@contextlib.contextmanager
def live_server(app, timeout=30.0):
    """A real uvicorn server for `app` on 127.0.0.1 (a free port), in a thread; yields its host and port."""
    import uvicorn

    from genrekit.server import server_config

    server = uvicorn.Server(server_config(app, port=0, timeout=timeout, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started or not thread.is_alive(), 30) and server.started, \
            "the server did not start"
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield host, port
    finally:
        server.should_exit = True
        thread.join(15)


def process_alive(pid):
    """True while `pid` exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def assert_workers_die_with(parent, pid_folder, workers=2):
    """Kill `parent` (a subprocess whose `workers` worker processes each write a file named by their pid into
    `pid_folder`) with SIGKILL once they all run, and check that none of them survives it."""
    found = []
    try:
        assert wait_until(lambda: len(list(pid_folder.iterdir())) == workers or parent.poll() is not None, 120)
        assert parent.poll() is None, "the parent process ended early"
        found = [int(path.name) for path in pid_folder.iterdir()]
        assert all(process_alive(pid) for pid in found)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_until(lambda: not any(process_alive(pid) for pid in found), 5)
    finally:
        parent.kill()
        for pid in found:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def unknown_length(path):
    """Make a FLAC's header say "length unknown" (total samples 0), as a streamed FLAC does."""
    data = bytearray(path.read_bytes())
    data[21] &= 0xF0
    data[22:26] = bytes(4)
    path.write_bytes(data)
    assert sf.info(path).frames == 2**63 - 1
    return path


BAD_INPUTS = {"empty.wav": "empty file (0 bytes)", "text.au": "not an audio file (no audio header)",
              "noise.snd": "not an audio file (no audio header)", "random.wav": "not a readable audio file",
              "corrupt.flac": "not a readable audio file", "cut.mp3": "too little decodes to use (under 0.5 s)",
              "one-sample.wav": "too short to classify (0.00 s; the minimum is 0.5 s)",
              "tenth.wav": "too short to classify (0.10 s; the minimum is 0.5 s)",
              "dc.wav": "silent", "silent.wav": "silent", "nan.wav": "NaN",
              "cut.m4a": "too little decodes to use (under 0.5 s)", "video.mp4": "no audio stream (FFmpeg reads it as",
              "random.flac": "not audio: its header gives a sample rate of 0 Hz",
              "one-hertz.wav": "not audio: its header gives a sample rate of 1 Hz"}
"""The bad-input corpus `write_bad_inputs` makes: file name -> what the error about it says."""


def write_bad_inputs(folder):
    """Write the files of `BAD_INPUTS` (kinds of bad input seen in the wild) into `folder`; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.au").write_text("just some text, not audio\n" * 200)
    (folder / "noise.snd").write_bytes(rng.bytes(40_000))
    (folder / "random.wav").write_bytes(rng.bytes(3000))
    (folder / "corrupt.flac").write_bytes(b"fLaC" + bytes(200))
    mp3 = write_tone(folder / "cut.mp3", 1500, seconds=4.0).read_bytes()  # cut to 0.1 s: too little to use
    (folder / "cut.mp3").write_bytes(mp3[:len(mp3) // 8])
    sf.write(folder / "one-sample.wav", np.full(1, 0.5, np.float32), 22050)
    write_tone(folder / "tenth.wav", 1700, seconds=0.1)
    sf.write(folder / "dc.wav", np.full(22050 * 2, 0.5, np.float32), 22050)
    sf.write(folder / "silent.wav", np.zeros(22050 * 2, np.float32), 22050)
    y = tone(1700, 2.0)
    y[100] = np.nan
    sf.write(folder / "nan.wav", y, 22050, subtype="FLOAT")
    m4a = write_tone(folder / "cut.m4a", 1500, seconds=4.0).read_bytes()
    (folder / "cut.m4a").write_bytes(m4a[:len(m4a) // 12])
    _write_video_without_sound(folder / "video.mp4")
    (folder / "random.flac").write_bytes(rng.bytes(200_000))  # FFmpeg takes it for audio at 0 Hz
    sf.write(folder / "one-hertz.wav", tone(1700, 10.0), 22050, subtype="PCM_16")
    wav = bytearray((folder / "one-hertz.wav").read_bytes())
    wav[24:32] = (1).to_bytes(4, "little") + (2).to_bytes(4, "little")  # 1 Hz: 220,500 samples would be 61 hours
    (folder / "one-hertz.wav").write_bytes(bytes(wav))
    assert sorted(path.name for path in folder.iterdir()) == sorted(BAD_INPUTS)
    return folder


def _write_video_without_sound(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
