import numpy as np

from conftest import write_tone
from genrekit.audio import load_audio
from genrekit.cache import EmbeddingStore, FeatureCache, fill_cache
from genrekit.digest import file_digest
from genrekit.datasets import Track
from genrekit.feature_params import FeatureParams
from genrekit.features import compute_features


def _track(path, **kw):
    return Track(str(path), "x", str(path), "test", **kw)


def test_second_load_reads_from_disk_and_matches(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "cache")
    track = _track(write_tone(tmp_path / "a.wav", seconds=1.0))
    first = cache.load(track)
    entry = cache.entry_path(track)
    assert (entry / "logmel.npy").is_file() and not list(entry.parent.glob(".*.tmp"))
    monkeypatch.setattr(cache, "_compute", lambda t: (_ for _ in ()).throw(AssertionError("recomputed")))
    second = cache.load(track)
    for name in first:
        assert np.allclose(first[name], second[name], atol=0.05)
    mapped = cache.load(track, ("waveform",), mmap=True)["waveform"]
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float32
    assert np.array_equal(mapped, load_audio(track.path))  # training reads the samples serving decodes


def test_entries_store_the_images_as_float16_within_what_the_readme_states(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    track = _track(write_tone(tmp_path / "a.wav", freq=330, seconds=3.0))
    fresh, stored = compute_features(load_audio(track.path)), cache.load(track)
    files = {name: np.load(cache.entry_path(track) / f"{name}.npy", mmap_mode="r") for name in fresh}
    assert {name: array.dtype.name for name, array in files.items()} == {
        "waveform": "float32", "spectrogram": "float16", "logmel": "float16", "chroma": "float16"}
    assert np.array_equal(stored["waveform"], fresh["waveform"])
    for name, bound in (("spectrogram", 0.016), ("logmel", 0.016), ("chroma", 0.00025)):  # README, cache_dtype.md
        assert stored[name].dtype == np.float32 and np.abs(stored[name] - fresh[name]).max() <= bound, name


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    import hashlib

    calls = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda *a: calls.append(1) or real(*a))
    path = write_tone(tmp_path / "once.wav", freq=523)
    cache = FeatureCache(tmp_path / "cache")
    assert cache.entry_path(_track(path)) == cache.entry_path(_track(path, split="train")) and len(calls) == 1
    write_tone(path, freq=524, seconds=1.5)
    assert file_digest(path) == real(open(path, "rb"), "sha1").hexdigest() and len(calls) == 2


def test_key_follows_content_params_and_span(tmp_path):
    a = write_tone(tmp_path / "a.wav", freq=440)
    b = write_tone(tmp_path / "b.wav", freq=440)
    c = write_tone(tmp_path / "c.wav", freq=660)
    cache = FeatureCache(tmp_path)
    assert cache.entry_path(_track(a)) == cache.entry_path(_track(b))
    assert cache.entry_path(_track(a)) != cache.entry_path(_track(c))
    assert cache.entry_path(_track(a)) != cache.entry_path(_track(a, start=0.0, end=0.5))
    other = FeatureCache(tmp_path, FeatureParams(n_mels=64))
    assert other.entry_path(_track(a)) != cache.entry_path(_track(a))


def test_embedding_store_keys_by_network_content_and_window_length(tmp_path):
    clip = np.random.default_rng(0).standard_normal(1000).astype(np.float16)
    store = EmbeddingStore(tmp_path, "net-a")
    embeddings = np.arange(20, dtype=np.float32).reshape(2, 10)
    computed = []

    def compute():
        computed.append(1)
        return embeddings

    assert np.array_equal(store.get((clip, 100), compute), embeddings) and len(computed) == 1
    assert np.array_equal(store.get((clip.copy(), 100), compute), embeddings) and len(computed) == 1
    assert not list(store.path((clip, 100)).parent.glob(".*.tmp"))
    changed = clip.copy()
    changed[500] += 1
    for other_store, key in ((store, (changed, 100)), (store, (clip, 200)), (store, (clip.astype(np.float32), 100)),
                             (EmbeddingStore(tmp_path, "net-b"), (clip, 100))):
        count = len(computed)
        other_store.get(key, compute)
        assert len(computed) == count + 1


def test_span_features_are_those_of_the_span(tmp_path):
    path = write_tone(tmp_path / "a.wav", seconds=2.0)
    from genrekit.audio import load_audio

    got = FeatureCache(tmp_path / "c").load(_track(path, start=0.5, end=1.5), ("logmel",))["logmel"]
    expected = compute_features(load_audio(path, offset=0.5, duration=1.0))["logmel"]
    assert got.shape == expected.shape and np.allclose(got, expected, atol=0.05)


def test_fill_cache_reports_failures_and_goes_on(tmp_path):
    good = [_track(write_tone(tmp_path / f"{i}.wav", freq=300 + 50 * i, seconds=0.5)) for i in range(3)]
    (tmp_path / "bad.wav").write_bytes(b"nope" * 10)
    tracks = good + [_track(tmp_path / "bad.wav")]
    cache = FeatureCache(tmp_path / "cache")
    status = fill_cache(tracks, cache, workers=2, progress=False)
    assert [status[t.key] for t in good] == ["computed"] * 3
    assert status[tracks[-1].key].startswith("failed: not a readable audio file")
    again = fill_cache(good, cache, workers=1, progress=False)
    assert set(again.values()) == {"cached"}


def test_cli_cache_info_and_clear_touch_only_what_genrekit_stores(tmp_path):
    from typer.testing import CliRunner

    from genrekit.cache import cache_parts
    from genrekit.cli import app

    for i in range(2):
        write_tone(tmp_path / "music" / "a" / f"{i}.wav", freq=300 + 100 * i, seconds=30.0)
    root = tmp_path / "cache"
    (root / "onnx").mkdir(parents=True)
    (root / "onnx" / "m.onnx").write_bytes(bytes(1000))
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("not genrekit's")
    runner = CliRunner()
    result = runner.invoke(app, ["features", f"folder:{tmp_path / 'music'}", "--cache-dir", str(root),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"cache: {root}, 11.3 MB" in result.output.replace("\n", "")
    features = FeatureCache(root).entry_path(_track(tmp_path / "music" / "a" / "0.wav")).parent.parent
    assert {folder.name: files for folder, (files, _) in cache_parts(root).items()} == {features.name: 8, "onnx": 1}

    result = runner.invoke(app, ["cache", "info", "--cache-dir", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and features.name in result.output and "11.3 MB" in result.output
    assert "mine" not in result.output
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(root)], input="n\n")
    assert result.exit_code == 1 and features.is_dir()  # asked, and kept
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(root), "--yes"])
    assert result.exit_code == 0 and "freed 11.3 MB" in result.output
    assert sorted(path.name for path in root.iterdir()) == ["mine"] and cache_parts(root) == {}
