import json
import csv
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

import pytest

import genrekit
from conftest import write_tone
from genrekit.datasets import (Track, check_disjoint, class_weights, label_masks, label_targets, labels_of,
                               load_dataset, load_folder, load_gtzan, load_manifest, merge, snippets, split_by_group,
                               write_manifest)
from genrekit.datasets.gtzan import GENRES
from genrekit.exceptions import DatasetError, ParameterError
from genrekit.feature_params import FeatureParams


def _fake_gtzan(root, layout, ext, ids=range(4)):
    base = root / layout if layout else root
    for genre in GENRES:
        for i in ids:
            write_tone(base / genre / f"{genre}.{i:05d}.{ext}", seconds=0.2, sr=8000)
    return root


def _write_lists(folder, assign):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        lines = [f"{g}/{g}.{i:05d}.wav" for g in GENRES for i, s in assign.items() if s == split]
        (folder / f"{split}_filtered.txt").write_text("\n".join(lines) + "\n")


def test_gtzan_on_shared_clips_uses_filtered_split_and_artists(gtzan_mini):
    tracks = load_gtzan(gtzan_mini)
    listed = {line.split("/")[1].rsplit(".", 1)[0]
              for split in ("train", "valid", "test")
              for line in (gtzan_mini / "splits" / f"{split}_filtered.txt").read_text().split()}
    ids = {t.path.split("/")[-1].rsplit(".", 1)[0] for t in tracks}
    assert ids <= listed and len(ids) == len(tracks)
    assert {t.label for t in tracks} == set(GENRES)
    assert all(t.split in ("train", "valid", "test") for t in tracks)
    blues = [t for t in tracks if t.label == "blues"]
    assert blues[0].path.endswith("blues.00000.au") and blues[0].split == "valid"  # list says .wav
    assert {t.group for t in blues} == {"gtzan:artist:John Lee Hooker"}
    check_disjoint(tracks)


@pytest.mark.parametrize("layout,ext", [("genres", "au"), ("genres_original", "wav")])
def test_gtzan_layouts_and_lists_beside_the_data(tmp_path, layout, ext):
    root = _fake_gtzan(tmp_path / "gtzan", layout, ext)
    _write_lists(tmp_path / "gtzan" / "splits", {0: "train", 1: "train", 2: "valid", 3: "test"})
    tracks = load_gtzan(root)
    assert len(tracks) == 40
    assert Counter(t.split for t in tracks) == {"train": 20, "valid": 10, "test": 10}
    assert all(t.path.endswith(f".{ext}") for t in tracks)


def test_gtzan_lists_drop_unlisted_tracks_and_env_var(tmp_path, monkeypatch):
    root = _fake_gtzan(tmp_path / "gtzan", "genres", "au")
    _write_lists(tmp_path / "elsewhere", {0: "train", 2: "test"})
    monkeypatch.setenv("GENREKIT_GTZAN_SPLITS", str(tmp_path / "elsewhere"))
    tracks = load_gtzan(root)
    assert len(tracks) == 20 and {t.split for t in tracks} == {"train", "test"}


def test_gtzan_skips_corrupt_files_with_a_warning(tmp_path, caplog):
    root = _fake_gtzan(tmp_path / "gtzan", "genres_original", "wav", ids=range(52, 58))
    (root / "genres_original" / "rock" / "rock.00055.wav").write_bytes(b"garbage" * 20)
    with caplog.at_level(logging.WARNING):
        tracks = load_gtzan(root)
    names = {t.path.rsplit("/", 1)[-1] for t in tracks}
    assert "jazz.00054.wav" not in names and "rock.00055.wav" not in names
    assert len(tracks) == 58
    assert "jazz.00054" in caplog.text and "rock.00055.wav" in caplog.text


def test_gtzan_without_lists_splits_by_artist(tmp_path):
    root = _fake_gtzan(tmp_path / "gtzan", None, "wav", ids=range(6))
    rows = ["track_id,artist"] + [f"{g}.{i:05d},{g}-artist-{i // 2}" for g in GENRES for i in range(6)]
    (tmp_path / "gtzan" / "tracks.csv").write_text("\n".join(rows) + "\n")
    tracks = load_gtzan(root)
    assert len({t.group for t in tracks}) == 30
    check_disjoint(tracks)
    assert {t.split for t in tracks} == {"train", "valid", "test"}


def test_unknown_dataset_kind_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown kind 'bogus' \(known: gtzan, real-extra, folder, csv, ccmusic\)"):
        load_dataset(f"bogus:{tmp_path}")


def test_gtzan_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_gtzan(tmp_path / "missing")


def test_folder_dataset(tmp_path):
    for genre in ("a", "b"):
        for i in range(10):
            write_tone(tmp_path / "music" / genre / f"{i}.wav", seconds=0.1, sr=8000)
    (tmp_path / "music" / "README.txt").write_text("not audio")
    tracks = load_folder(tmp_path / "music")
    assert len(tracks) == 20 and {t.label for t in tracks} == {"a", "b"}
    assert len({t.group for t in tracks}) == 20
    assert {t.split for t in tracks} == {"train", "valid", "test"}


def test_manifest_round_trip_keeps_groups_splits_and_spans(tmp_path):
    clip = write_tone(tmp_path / "data" / "x.wav", seconds=2.0)
    tracks = [Track(str(clip), "rock", "song1", "mine", "train", 0.0, 1.0),
              Track(str(clip), "rock", "song1", "mine", "train", 1.0, 2.0),
              Track(str(clip), "pop", "song2", "mine", "test")]
    write_manifest(tracks, tmp_path / "data" / "manifest.csv")
    assert "x.wav" in (tmp_path / "data" / "manifest.csv").read_text().split("\n")[1].split(",")[0]
    assert load_dataset(tmp_path / "data") == tracks


def test_manifest_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,genre\nx.wav,rock\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_manifest(bad)
    bad.write_text("path,label,split\nx.wav,rock,training\n")
    with pytest.raises(DatasetError, match="bad.csv:2: split 'training'"):
        load_manifest(bad)
    bad.write_text("path,label,group,split\nx.wav,rock,g,train\ny.wav,rock,g,test\n")
    with pytest.raises(DatasetError, match="leakage"):
        load_manifest(bad)
    bad.write_bytes("path,label\nx.wav,rock\ncafé.wav,jazz\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"bad.csv:3: not UTF-8 text \(save the table as UTF-8\)"):
        load_manifest(bad)
    write_tone(tmp_path / "é.wav")
    bad.write_bytes("\ufeffpath,label\né.wav,jazz\n".encode("utf-8"))  # as spreadsheets save it, with a BOM
    assert [(Path(t.path).name, t.label) for t in load_manifest(bad)] == [("é.wav", "jazz")]


def test_split_by_group_is_disjoint_and_stratified():
    tracks = [Track(f"{g}{s}{k}.wav", g, f"{g}-song{s}", "t") for g in "abc" for s in range(20) for k in range(3)]
    result = split_by_group(tracks, valid=0.2, test=0.2, seed=1)
    check_disjoint(result)
    for split, share in (("train", 0.6), ("valid", 0.2), ("test", 0.2)):
        for label in "abc":
            count = sum(t.split == split and t.label == label for t in result)
            assert abs(count / 60 - share) < 0.1
    assert split_by_group(tracks, valid=0.2, test=0.2, seed=1) == result


def test_split_keeps_given_splits_and_rejects_bad_fractions():
    tracks = [Track(f"{i}.wav", "a", f"g{i}", "t", "test" if i < 3 else None) for i in range(20)]
    result = split_by_group(tracks)
    assert [t.split for t in result[:3]] == ["test"] * 3
    with pytest.raises(ParameterError):
        split_by_group(tracks, valid=0.6, test=0.5)


def test_snippets_cover_a_song_in_one_group():
    song = Track("song.wav", "pop", "ccmusic:song", "ccmusic")
    parts = snippets(song, 100.0, length=30.0)
    assert [(p.start, p.end) for p in parts] == [(0, 30), (30, 60), (60, 90)]
    assert snippets(song, 110.0)[-1].end == 110.0
    assert snippets(song, 10.0) == [song.replace(start=0.0, end=10.0)]
    assert {p.group for p in parts} == {"ccmusic:song"}


def test_merge_maps_labels_and_weights_balance(tmp_path, caplog):
    gtzan = [Track(f"g{i}.wav", "classical", f"gtzan:{i}", "gtzan", "train") for i in range(2)]
    ccmusic = [Track(f"c{i}.wav", label, f"cc:{i}", "ccmusic", "train")
               for i, label in enumerate(["Opera", "Soul_or_RnB", "Pop", "Pop", "Martian"])]
    with caplog.at_level(logging.WARNING):
        merged = merge(gtzan, ccmusic)
    assert [t.label for t in merged] == ["classical", "classical", "classical", "rnb_soul", "pop", "pop"]
    assert "Martian" in caplog.text
    weights = class_weights(merged, ["classical", "pop", "rnb_soul"])
    assert weights.tolist() == pytest.approx([6 / (3 * 3), 6 / (3 * 2), 6 / (3 * 1)])


def test_merged_labels_are_those_of_the_bundled_models():
    from genrekit.datasets import load_taxonomy

    mapping = load_taxonomy()
    for card in ("default.json", "fast.json"):
        labels = json.loads((Path(genrekit.__file__).parent / "weights" / card).read_text())["labels"]
        assert all(mapping[label] == label for label in labels), card  # e.g. rnb_soul, not rnb
    assert mapping["rnb"] == mapping["soul_or_rnb"] == "rnb_soul"


def test_taxonomy_file_errors(tmp_path):
    bad = tmp_path / "tax.yaml"
    bad.write_text("rock: [Rock]\nmetal: [rock]\n")
    with pytest.raises(DatasetError, match="maps to both"):
        merge([], taxonomy=bad)


def test_gtzan_extra_merges_with_gtzan_mini_one_group_per_track(gtzan_mini, gtzan_extra):
    import csv

    from genrekit.datasets import load_dataset, merge, select

    extra = load_dataset(str(gtzan_extra))
    with open(gtzan_extra / "tracks.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert len(extra) == len(listed) and {t.split for t in extra} == {"train", "valid"}
    assert {(Path(t.path).name, t.split) for t in extra} == {(Path(r["path"]).name, r["split"]) for r in listed}
    tracks = merge(load_dataset(str(gtzan_mini)), extra)
    by_id = {}
    for track in tracks:
        by_id.setdefault(Path(track.path).name.rsplit(".", 1)[0], set()).add((track.group, track.split))
    assert all(len(found) == 1 for found in by_id.values())  # one group and one split per GTZAN track
    mini = {Path(t.path).stem: t.group for t in load_dataset(str(gtzan_mini))}
    both = {Path(t.path).stem for t in extra} & set(mini)
    assert both and all(next(iter(by_id[i]))[0] == mini[i] for i in both)  # mini's artist, where it knows one
    train, valid = select(tracks, "train"), select(tracks, "valid")
    assert not {t.group for t in train} & {t.group for t in valid}
    assert {t.label for t in train} == set(GENRES) and "hiphop" not in {t.label for t in valid}


def test_short_excerpts_are_looped_to_a_window_when_served_and_trained(gtzan_extra, tmp_path):
    from genrekit.audio import load_audio
    from genrekit.cache import FeatureCache
    from genrekit.clips import ClipSet
    from genrekit.datasets import load_dataset
    from genrekit.scoring import block_windows, window_length

    track = min(load_dataset(str(gtzan_extra)), key=lambda t: sf.info(t.path).duration)
    y = load_audio(track.path)
    window = window_length("waveform", 3.0)
    assert len(y) < window
    _, windows, starts = block_windows(y, FeatureParams(), 3.0, ("waveform", "logmel"))
    assert starts.tolist() == [0] and windows["waveform"].shape == (1, window)
    assert np.array_equal(windows["waveform"][0], np.concatenate([y] * (window // len(y) + 1))[:window])  # no silence
    clips = ClipSet.from_tracks([track], "logmel", [track.label], FeatureCache(tmp_path), window_seconds=3.0,
                                workers=1, progress=False)
    assert np.allclose(clips.windows(0, 3.0), windows["logmel"], atol=1e-4)  # training sees what serving sees


def _write_real_extra(root):
    """A real-extra layout: tracks.csv (label sets, artists, splits) over short tones, one listed file missing
    and one file on disk that is not listed."""
    rows = [("4q/a.mp3", "blues|jazz", "train", "Artist A"), ("4q/b.wav", "metal|pop|rock", "train", "Artist A"),
            ("4q/c.wav", "", "valid", "Artist B"), ("emotify/electronic/1.wav", "electronic", "valid", "Artist C"),
            ("emotify/pop/2.wav", "pop", "train", "artist a"), ("4q/missing.wav", "rnb_soul", "train", "Artist D")]
    for path, *_ in rows[:-1]:
        write_tone(root / path, seconds=1.0, sr=16000)
    write_tone(root / "4q" / "unlisted.wav")
    with open(root / "tracks.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "genres", "split", "artist", "title", "source", "sr", "duration_s"])
        for path, genres, split, artist in rows:
            writer.writerow([path, genres, split, artist, "t", "emotify" if "emotify" in path else "mer-taffc-4q",
                             16000, 1.0])
    return root


def test_real_extra_reads_label_sets_artist_groups_and_its_split(tmp_path):
    root = _write_real_extra(tmp_path / "real-extra")
    tracks = load_dataset(root)  # detected from its tracks.csv
    assert load_dataset(f"real-extra:{root}") == tracks
    by_name = {Path(t.path).name: t for t in tracks}
    assert sorted(by_name) == ["1.wav", "2.wav", "a.mp3", "b.wav", "c.wav"]  # listed and on disk only
    assert by_name["a.mp3"].label_set == ("blues", "jazz") and by_name["c.wav"].label_set == ()
    assert by_name["b.wav"].label == "metal|pop|rock" and by_name["b.wav"].split == "train"
    assert by_name["a.mp3"].group == by_name["2.wav"].group != by_name["c.wav"].group  # artist, any case
    assert by_name["1.wav"].source == "real-extra:emotify"
    merged = merge(tracks, load_dataset(f"csv:{write_manifest_of(tmp_path)}"))
    assert "c.wav" not in {Path(t.path).name for t in merged}  # no genre of the taxonomy: dropped
    assert {t.label for t in merged if t.source.startswith("real-extra")} == {"blues|jazz", "metal|pop|rock",
                                                                              "electronic", "pop"}
    assert labels_of(merged) == sorted({"blues", "jazz", "metal", "pop", "rock", "electronic", "rnb_soul"})


def write_manifest_of(tmp_path):
    path = tmp_path / "other" / "manifest.csv"
    write_tone(tmp_path / "other" / "x.wav")
    path.write_text("path,label,split\nx.wav,Soul_or_RnB,train\n")
    return path


def test_label_set_masks_and_balanced_weights_count_a_set_by_its_share():
    tracks = [Track(path=f"{i}", label=label, group=str(i), source="s")
              for i, label in enumerate(["a", "a", "b", "a|b|c"])]
    masks = label_masks(tracks, ["a", "b", "c"])
    assert masks.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 1]]
    assert label_targets(tracks[:3], ["a", "b", "c"]).tolist() == [0, 0, 1]  # one genre each: indices
    assert label_targets(tracks, ["a", "b", "c"]).shape == (4, 3)
    counts = np.array([2 + 1 / 3, 1 + 1 / 3, 1 / 3])
    np.testing.assert_allclose(class_weights(tracks, ["a", "b", "c", "d"]), [*(4 / (3 * counts)), 0.0], rtol=1e-6)
    single = tracks[:3]  # one genre each: scikit-learn's "balanced" weights
    from sklearn.utils.class_weight import compute_class_weight

    np.testing.assert_allclose(class_weights(single, ["a", "b"]),
                               compute_class_weight("balanced", classes=np.array(["a", "b"]), y=["a", "a", "b"]))
    with pytest.raises(DatasetError, match="not in the model's label set"):
        label_masks(tracks, ["a", "b"])


def test_the_built_real_extra_loads_as_its_table_lists(real_extra):
    tracks = load_dataset(f"real-extra:{real_extra}")
    assert len(tracks) == 898 and {t.split for t in tracks} == {"train", "valid"}
    check_disjoint(tracks)  # no artist in both splits
    sets = [t for t in tracks if len(t.label_set) > 1]
    assert len([t for t in tracks if not t.label_set]) == 61 and len(sets) > 300
    assert sum(t.split == "valid" for t in tracks) == 193


def test_restrict_labels_cuts_label_sets_and_drops_clips_left_without_one():
    from genrekit.datasets import Track, restrict_labels

    tracks = [Track("a.wav", "metal|pop|rock", "a", "x"), Track("b.wav", "folk", "b", "x"),
              Track("c.wav", "jazz", "c", "x")]
    kept = restrict_labels(tracks, ["rock", "jazz", "blues"])
    assert [(t.path, t.label) for t in kept] == [("a.wav", "rock"), ("c.wav", "jazz")]
