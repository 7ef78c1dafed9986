"""CCMusic music_genre loader on a small parquet copy in the dataset's schema, with generated audio."""

import io
import logging
from collections import defaultdict

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from genrekit.audio import audio_info, load_audio
from genrekit.datasets import detect_kind, load_dataset
from genrekit.datasets.ccmusic import LEVELS, load_ccmusic
from genrekit.exceptions import DatasetError, ParameterError

from conftest import tone

SR = 4000  # the lowest rate genrekit takes for audio (lower: "not audio")
FEATURES = datasets.Features({
    "audio": datasets.Audio(sampling_rate=22050),
    "mel": datasets.Image(),
    **{f"{level}_level_label": datasets.ClassLabel(names=list(names)) for level, names in LEVELS.items()},
})

# seconds -> (fst, sec, thr) label ints, and the number of 30 s snippets (a last one needs >= 15 s)
SONGS = {
    40: ((0, 0, 0), 1),     # Classic / Symphony / Symphony
    50: ((1, 4, 6), 2),     # Non_classic / Pop / Teen_pop
    65: ((1, 8, 14), 2),    # Non_classic / Rock / Soft_rock
    75: ((1, 7, 11), 3),    # Non_classic / Soul_or_RnB / Soul_or_RnB
}
NAMES = {seconds: tuple(LEVELS[level][i] for level, i in zip(LEVELS, ints)) for seconds, (ints, _) in SONGS.items()}


def wav_bytes(seconds, freq=220.0):
    buffer = io.BytesIO()
    sf.write(buffer, tone(freq, seconds, SR), SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def row(seconds, audio=None):
    labels, _ = SONGS[seconds]
    return {"audio": {"bytes": wav_bytes(seconds) if audio is None else audio, "path": f"song{seconds}.wav"},
            "mel": None, **{f"{level}_level_label": i for level, i in zip(LEVELS, labels)}}


def write_parquet(path, rows, features=True):
    """Rows in the real schema; with `features`, the Hugging Face metadata (ClassLabel names) as well."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    table = pa.table(columns, schema=FEATURES.arrow_schema) if features else pa.table(
        columns, schema=FEATURES.arrow_schema.remove_metadata())
    pq.write_table(table, path)
    return path


def make_copy(root, features=True):
    """Train (two songs, one corrupt, one also in test), validation and test shards as a local export."""
    write_parquet(root / "default" / "train" / "0000.parquet",
                  [row(40), row(50), {**row(40), "audio": {"bytes": b"not audio at all", "path": "bad.wav"}},
                   row(75)], features)
    write_parquet(root / "default" / "validation" / "0000.parquet", [row(65)], features)
    write_parquet(root / "default" / "test" / "0000.parquet", [row(75)], features)
    return root


@pytest.fixture
def ccmusic(tmp_path):
    return make_copy(tmp_path / "music_genre")


def songs_of(tracks):
    """Song length in seconds -> its snippets."""
    songs = defaultdict(list)
    for track in tracks:
        songs[round(audio_info(track.path).duration)].append(track)
    return songs


@pytest.mark.parametrize("features", [True, False], ids=["classlabel", "plain-ints"])
@pytest.mark.parametrize("level", ["fst", "sec", "thr"])
def test_snippets_groups_and_labels(tmp_path, level, features):
    songs = songs_of(load_ccmusic(make_copy(tmp_path / "music_genre", features), level=level))
    assert set(songs) == set(SONGS)
    for seconds, snippets in songs.items():
        assert len(snippets) == SONGS[seconds][1]
        assert len({t.group for t in snippets}) == 1 and snippets[0].group.startswith("ccmusic:")
        assert len({t.path for t in snippets}) == 1
        assert {t.label for t in snippets} == {NAMES[seconds][list(LEVELS).index(level)]}
        assert all(t.source == "ccmusic" and t.duration <= 30.0 for t in snippets)
    assert len({snippets[0].group for snippets in songs.values()}) == len(SONGS)


def test_given_splits_kept_and_no_song_in_two(ccmusic):
    tracks = load_ccmusic(ccmusic)
    split_of = {seconds: {t.split for t in snippets} for seconds, snippets in songs_of(tracks).items()}
    assert split_of == {40: {"train"}, 50: {"train"}, 65: {"valid"}, 75: {"test"}}
    splits_of_group = defaultdict(set)
    for track in tracks:
        splits_of_group[track.group].add(track.split)
    assert all(len(splits) == 1 for splits in splits_of_group.values())


def test_snippets_are_loadable(ccmusic):
    track = songs_of(load_ccmusic(ccmusic))[75][-1]
    assert (track.start, track.end) == (60.0, 75.0)
    y = load_audio(track.path, sr=SR, offset=track.start, duration=track.duration)
    assert len(y) == pytest.approx(15 * SR, abs=2)


def test_extracted_files_are_reused(ccmusic):
    first = load_ccmusic(ccmusic)
    extracted = sorted((ccmusic / "ccmusic-audio").iterdir())
    assert {str(p) for p in extracted} >= {t.path for t in first}
    assert not [p for p in extracted if p.suffix == ".tmp"]
    mtimes = {p: p.stat().st_mtime_ns for p in extracted}
    second = load_ccmusic(ccmusic)
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in sorted((ccmusic / "ccmusic-audio").iterdir())} == mtimes


def test_extract_dir_option(ccmusic, tmp_path):
    tracks = load_ccmusic(ccmusic, extract_dir=tmp_path / "audio")
    assert all(t.path.startswith(str(tmp_path / "audio")) for t in tracks)
    assert not (ccmusic / "ccmusic-audio").exists()


def test_corrupt_song_skipped_with_warning(ccmusic, caplog):
    with caplog.at_level(logging.WARNING, logger="genrekit.datasets.ccmusic"):
        tracks = load_ccmusic(ccmusic)
    assert len(songs_of(tracks)) == len(SONGS)
    corrupt = [r for r in caplog.records if "'bad.wav'" in r.getMessage()]
    assert len(corrupt) == 1 and "skipped" in corrupt[0].getMessage()
    assert any("'song75.wav'" in r.getMessage() and "already in split test" in r.getMessage()
               for r in caplog.records)


def test_without_splits(tmp_path):
    """A flat export without split names: every song gets one split from `split_by_group`."""
    root = tmp_path / "flat"
    write_parquet(root / "songs.parquet", [row(seconds) for seconds in SONGS], features=False)
    tracks = load_ccmusic(root, level="fst", seed=1)
    songs = songs_of(tracks)
    assert {seconds: snippets[0].label for seconds, snippets in songs.items()} == {
        seconds: names[0] for seconds, names in NAMES.items()}
    assert all(t.split in ("train", "valid", "test") for t in tracks)
    assert all(len({t.split for t in snippets}) == 1 for snippets in songs.values())


def test_registered_kind(ccmusic):
    assert detect_kind(ccmusic) == "ccmusic"
    assert {t.source for t in load_dataset(f"ccmusic:{ccmusic}")} == {"ccmusic"}


def test_bad_arguments(ccmusic, tmp_path):
    with pytest.raises(ParameterError, match="level"):
        load_ccmusic(ccmusic, level="fourth")
    with pytest.raises(ParameterError, match="snippet_seconds"):
        load_ccmusic(ccmusic, snippet_seconds=0)
    with pytest.raises(DatasetError, match="not found"):
        load_ccmusic(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="parquet"):
        load_ccmusic(tmp_path / "empty")
    eval_subset = write_parquet(tmp_path / "eval" / "train.parquet", [row(40)])
    pq.write_table(pq.read_table(eval_subset).drop_columns(["audio"]), eval_subset)
    with pytest.raises(DatasetError, match="audio"):
        load_ccmusic(eval_subset.parent)
