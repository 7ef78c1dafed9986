import csv
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from conftest import BAD_INPUTS, assert_workers_die_with, write_bad_inputs, write_tone
from genrekit import library, predict
from genrekit.exceptions import GenrekitError, ParameterError
from genrekit.library import tagging
from genrekit.audio import load_audio
from genrekit.cli import app, main
from genrekit.datasets.folder import PARTIAL_COPY
from genrekit.library import (CRASH_REASON, TagError, display_genre, export_library, existing_genres, tag_library,
                              write_genre_tag)
from genrekit.predict import load

runner = CliRunner()
GOOD = ["a/low.wav", "a/high.flac", "b/noise.ogg", "b/c/tone.mp3", "copies/low again.wav"]
BAD = {"a/broken.mp3": "not a readable audio file", "b/broken.wav": "not a readable audio file",
       "b/empty.flac": "empty file", "b/c/silent.wav": "silent"}


def make_library(root):
    """Five good files (one a byte copy of another), four bad ones and a text file."""
    rng = np.random.default_rng(1)
    write_tone(root / "a" / "low.wav", 220, seconds=3.0)
    write_tone(root / "a" / "high.flac", 1760, seconds=3.0, sr=44100)
    (root / "b" / "c").mkdir(parents=True)
    sf.write(root / "b" / "noise.ogg", (0.3 * rng.standard_normal(2 * 22050)).astype(np.float32), 22050)
    write_tone(root / "b" / "c" / "tone.mp3", 1500, seconds=2.0)
    (root / "copies").mkdir()
    shutil.copy(root / "a" / "low.wav", root / "copies" / "low again.wav")
    (root / "a" / "broken.mp3").write_bytes(b"not an mp3 at all " * 50)
    (root / "b" / "broken.wav").write_bytes(os.urandom(3000))
    (root / "b" / "empty.flac").write_bytes(b"")
    sf.write(root / "b" / "c" / "silent.wav", np.zeros(22050, np.float32), 22050)
    (root / "b" / "notes.txt").write_text("not music")
    return root


def rows(db):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {row["path"]: dict(row) for row in conn.execute("SELECT * FROM tracks")}


def relative(table, root):
    return {str(Path(path).relative_to(root.resolve())): row for path, row in table.items()}


def same_results(a, b):
    """Two tables hold the same files with the same genres, errors and (nearly) the same probabilities."""
    assert a.keys() == b.keys()
    for path in a:
        for column in ("size", "mtime_ns", "sha1", "model_id", "genre", "error"):
            assert a[path][column] == b[path][column], (path, column)
        if a[path]["probabilities"]:
            pa, pb = json.loads(a[path]["probabilities"]), json.loads(b[path]["probabilities"])
            assert pa.keys() == pb.keys() and all(abs(pa[k] - pb[k]) < 1e-4 for k in pa)


@pytest.fixture(scope="module")
def model(members):
    return members[0][0]


@pytest.fixture(scope="module")
def classifier(model):
    return load(model)


def test_tags_every_file_once_and_reruns_only_what_changed(tmp_path, classifier, members):
    root, db = make_library(tmp_path / "music"), tmp_path / "lib.sqlite"
    summary = tag_library(root, db, classifier, workers=1, progress=False)
    assert (summary.total, summary.tagged, summary.reused, summary.skipped, summary.failed) == (9, 4, 1, 0, 4)
    assert not summary.ok and "9 audio files: 4 tagged, 1 reused" in summary.line()
    failures = {str(Path(p).relative_to(root.resolve())): reason for p, reason in summary.failures}
    assert failures.keys() == BAD.keys()
    for name, reason in BAD.items():
        assert reason in failures[name]
    table = relative(rows(db), root)
    assert sorted(table) == sorted(GOOD + list(BAD))  # the .txt file is ignored, nothing twice
    for name in GOOD:
        row = table[name]
        probabilities = json.loads(row["probabilities"])
        assert row["error"] is None and row["genre"] in ("high", "low", "noisy")
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-3)
        assert row["genre"] == max(probabilities, key=probabilities.get)
        assert row["sha1"] and row["size"] == (root / name).stat().st_size
    assert table["copies/low again.wav"]["probabilities"] == table["a/low.wav"]["probabilities"]
    for name in BAD:
        assert table[name]["genre"] is None and table[name]["error"] == failures[name]

    again = tag_library(root, db, classifier, workers=1, progress=False)
    assert (again.tagged, again.reused, again.skipped, again.failed, again.unchanged_failed) == (0, 0, 5, 0, 4)
    assert len(again.failures) == 4
    assert relative(rows(db), root) == table  # untouched, tagged_at included

    write_tone(root / "a" / "low.wav", 1700, seconds=3.0)  # new content
    os.utime(root / "a" / "low.wav", ns=(1, 1_000_000_000))
    (root / "b" / "c" / "silent.wav").unlink()
    third = tag_library(root, db, classifier, workers=1, progress=False)
    assert (third.tagged, third.reused, third.skipped, third.removed, third.total) == (1, 0, 4, 1, 8)
    after = relative(rows(db), root)
    assert "b/c/silent.wav" not in after
    changed = {name for name in after if after[name] != table[name]}
    assert changed == {"a/low.wav"} and after["a/low.wav"]["sha1"] != table["a/low.wav"]["sha1"]

    os.utime(root / "a" / "high.flac")  # touched, same content: the stored result is reused
    fourth = tag_library(root, db, classifier, workers=1, progress=False)
    assert (fourth.tagged, fourth.reused, fourth.skipped) == (0, 1, 4)

    other = tag_library(root, db, load(members[0][1]), workers=1, progress=False)  # another model: all again
    assert (other.tagged, other.reused, other.skipped, other.failed) == (5, 0, 0, 3)
    assert len({row["model_id"] for row in rows(db).values()}) == 1


KILLED_RUN = """
import sys, time
from genrekit import library
from genrekit.library import tagging
from genrekit.predict import load
slow = tagging.classify
def classify(*args):
    time.sleep(0.4)
    return slow(*args)
tagging.classify = classify
library.tag_library(sys.argv[1], sys.argv[2], load(sys.argv[3]), workers=1, progress=False)
"""


def test_killed_run_loses_nothing_and_duplicates_nothing(tmp_path, classifier, model):
    root = make_library(tmp_path / "music")
    db, reference = tmp_path / "killed.sqlite", tmp_path / "reference.sqlite"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(root), str(db), str(model)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if db.exists():
                try:
                    if len(rows(db)) >= 3:
                        break
                except sqlite3.OperationalError:  # the table is being created
                    pass
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    partial = rows(db)
    assert 3 <= len(partial) < 9
    resumed = tag_library(root, db, classifier, workers=1, progress=False)
    assert resumed.skipped + resumed.unchanged_failed == len(partial)
    assert resumed.tagged + resumed.reused + resumed.failed == 9 - len(partial)
    finished = rows(db)
    assert all(finished[path] == row for path, row in partial.items())  # committed rows kept as they were
    tag_library(root, reference, classifier, workers=1, progress=False)
    same_results(finished, rows(reference))


def test_the_bad_input_corpus_is_recorded_as_failures_and_the_rest_is_tagged(tmp_path, classifier):
    root = write_bad_inputs(tmp_path / "music")
    write_tone(root / "good.wav", 1700, seconds=2.0)
    summary = tag_library(root, tmp_path / "lib.sqlite", classifier, workers=1, progress=False)
    assert (summary.tagged, summary.failed) == (1, len(BAD_INPUTS))
    reasons = {Path(path).name: reason for path, reason in summary.failures}
    assert sorted(reasons) == sorted(BAD_INPUTS)
    for name, reason in BAD_INPUTS.items():
        assert reason in reasons[name], name


def test_parallel_workers_give_the_same_table(tmp_path, classifier):
    root = make_library(tmp_path / "music")
    summary = tag_library(root, tmp_path / "pool.sqlite", classifier, workers=2, progress=False)
    assert (summary.tagged + summary.reused, summary.failed) == (5, 4)
    tag_library(root, tmp_path / "one.sqlite", classifier, workers=1, progress=False)
    same_results(rows(tmp_path / "pool.sqlite"), rows(tmp_path / "one.sqlite"))


def test_sampled_windows_tag_long_songs_like_predict_and_a_change_retags(tmp_path, model):
    """`tag --windows N` (in the workers of a pool too) gives each song what `predict` gives it from N windows;
    the sampling is part of the model's identity, so tagging with every window again re-tags."""
    root = tmp_path / "music"
    for name, freqs in (("long.flac", (220, 1760, 220)), ("other.wav", (1760, 1760, 220))):
        y = np.concatenate([np.sin(2 * np.pi * f * np.arange(40 * 22050) / 22050) * 0.4 for f in freqs])
        root.mkdir(exist_ok=True)
        sf.write(root / name, y.astype(np.float32), 22050)
    sampled = load(model, max_windows=4)
    summary = tag_library(root, tmp_path / "lib.sqlite", sampled, workers=2, progress=False)
    assert (summary.tagged, summary.failed) == (2, 0)
    table = rows(tmp_path / "lib.sqlite")
    for path, row in table.items():
        expected = sampled.predict(path)
        assert len(expected.times) == 4 and row["model_id"].endswith("/windows=4")
        probabilities = json.loads(row["probabilities"])
        assert row["genre"] == expected.genre
        assert all(abs(probabilities[g] - p) < 1e-4 for g, p in zip(expected.labels, expected.probabilities))
    assert tag_library(root, tmp_path / "lib.sqlite", load(model), workers=1, progress=False).tagged == 2


def _crashing_run(work, classifier, job):
    if job.path.endswith("crash.wav"):
        os._exit(3)
    return _classify_in_worker(work, classifier, job)


_classify_in_worker = tagging.ClassifyFiles.run


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="needs fork to patch the workers")
def test_a_file_that_kills_its_worker_is_recorded_and_the_run_goes_on(tmp_path, classifier, monkeypatch):
    for i in range(4):
        write_tone(tmp_path / "music" / f"{i}.wav", 300 + 400 * i, seconds=1.0)
    write_tone(tmp_path / "music" / "crash.wav", 500, seconds=1.0)
    monkeypatch.setattr(tagging.ClassifyFiles, "run", _crashing_run)
    summary = tag_library(tmp_path / "music", tmp_path / "lib.sqlite", classifier, workers=2, progress=False)
    assert (summary.tagged, summary.failed) == (4, 1)
    assert summary.failures == [(str((tmp_path / "music" / "crash.wav").resolve()), CRASH_REASON)]
    assert len(rows(tmp_path / "lib.sqlite")) == 5


def test_export_csv_and_json(tmp_path, classifier):
    root, db = make_library(tmp_path / "music"), tmp_path / "lib.sqlite"
    tag_library(root, db, classifier, workers=1, progress=False)
    assert export_library(db, tmp_path / "out.csv", "csv") == 9
    with open(tmp_path / "out.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 9 and {"p_high", "p_low", "p_noisy", "genre", "error", "sha1"} <= records[0].keys()
    by_name = {Path(r["path"]).name: r for r in records}
    assert by_name["empty.flac"]["genre"] == "" and "empty" in by_name["empty.flac"]["error"]
    good = by_name["high.flac"]
    assert float(good["confidence"]) == pytest.approx(float(good[f"p_{good['genre']}"]))
    assert export_library(db, tmp_path / "out.json", "json") == 9
    data = json.loads((tmp_path / "out.json").read_text())
    assert [d["path"] for d in data] == [r["path"] for r in records]
    assert set(data[0]["probabilities"]) <= {"high", "low", "noisy"}
    with pytest.raises(ParameterError):
        export_library(db, tmp_path / "out.xml", None)
    assert not list(tmp_path.glob(".out*"))  # no temporary files left


def test_write_tags_sets_the_genre_and_keeps_the_audio(tmp_path, classifier):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    write_tone(root / "a.mp3", 220, seconds=2.0)
    write_tone(root / "b.flac", 1760, seconds=2.0)
    write_tone(root / "c.wav", 1760, seconds=2.0)
    write_tone(root / "d.au", 220, seconds=2.0)  # decodes, but mutagen has no tags for it
    write_tone(root / "e.m4a", 1760, seconds=2.0)  # FFmpeg's formats: MP4 and WMA (ASF) tags
    write_tone(root / "f.wma", 220, seconds=2.0)
    before = {p.name: load_audio(p) for p in root.iterdir()}
    summary = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert summary.tagged == 6 and summary.tags_written == 5 and summary.ok
    assert len(summary.tag_problems) == 1 and summary.tag_problems[0][0].endswith("d.au")
    assert summary.tag_problems[0][1] == "unsupported: mutagen cannot tag .au files"
    table = {Path(p).name: row for p, row in rows(db).items()}
    shown = {name: display_genre(row["genre"]) for name, row in table.items()}  # "High", "Low", "Noisy"
    for name in ("a.mp3", "b.flac", "e.m4a"):
        assert mutagen.File(root / name, easy=True)["genre"] == [shown[name]]
    assert [t for f in mutagen.File(root / "c.wav").tags.getall("TCON") for t in f.text] == [shown["c.wav"]]
    assert [str(genre) for genre in mutagen.File(root / "f.wma").tags["WM/Genre"]] == [shown["f.wma"]]
    for name, samples in before.items():
        assert np.allclose(load_audio(root / name), samples)
        assert table[name]["size"] == (root / name).stat().st_size
    assert table["d.au"]["tag"].startswith("unsupported") and table["a.mp3"]["tag"] == "written"
    assert sorted(os.listdir(root)) == ["a.mp3", "b.flac", "c.wav", "d.au", "e.m4a", "f.wma"]  # no copies left
    again = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert (again.skipped, again.tagged, again.tags_written, again.tag_problems) == (6, 0, 0, [])
    assert write_genre_tag(root / "a.mp3", shown["a.mp3"]) is False  # already there: file untouched
    (root / "bad.mp3").write_bytes(b"junk" * 100)
    with pytest.raises(TagError):
        write_genre_tag(root / "bad.mp3", "rock")
    assert (root / "bad.mp3").read_bytes() == b"junk" * 100


def test_cli_tag_exit_codes_and_export(tmp_path, model, monkeypatch, capsys):
    root, db = make_library(tmp_path / "music"), tmp_path / "lib.sqlite"
    args = ["tag", str(root), "--db", str(db), "--model", str(model), "--workers", "1"]
    result = runner.invoke(app, args + ["--export", "json", "--output", str(tmp_path / "lib.json")])
    assert result.exit_code == 1, result.output
    assert "9 audio files: 4 tagged, 1 reused (same content), 0 unchanged, 4 failed" in result.output
    assert f"{(root / 'b' / 'empty.flac').resolve()}: empty file (0 bytes)" in result.output
    assert len(json.loads((tmp_path / "lib.json").read_text())) == 9
    for name in BAD:
        (root / name).unlink()
    result = runner.invoke(app, args + ["--export", "csv"])
    assert result.exit_code == 0, result.output
    assert "5 audio files: 0 tagged, 0 reused (same content), 5 unchanged, 0 failed" in result.output
    assert "4 rows of vanished files removed" in result.output and (tmp_path / "lib.csv").is_file()
    assert isinstance(runner.invoke(app, args + ["--export", "xml"]).exception, ParameterError)
    missing = tmp_path / "no" / "such" / "lib.sqlite"  # a mistyped folder is named, not made
    result = runner.invoke(app, ["tag", str(root), "--db", str(missing), "--model", str(model), "--workers", "1"])
    assert "does not exist (create it first)" in str(result.exception) and not (tmp_path / "no").exists()

    monkeypatch.setitem(predict.BUNDLED_MODELS, "default", tmp_path / "missing.pt")
    monkeypatch.setattr("sys.argv", ["genrekit", "tag", str(root), "--db", str(db)])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bundled default model is missing" in err


def test_an_export_that_cannot_be_written_is_one_line_and_the_table_stays(tmp_path, model, monkeypatch, capsys):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    write_tone(root / "a.wav", 220, seconds=2.0)
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    monkeypatch.setattr("sys.argv", ["genrekit", "tag", str(root), "--db", str(db), "--model", str(model),
                                     "--workers", "1", "--output", str(tmp_path / "notes.txt" / "lib.csv")])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"error: {tmp_path / 'notes.txt'}: is a file, not a folder to write in"
    assert [bool(row["genre"]) for row in rows(db).values()] == [True]  # the tagging is kept


def test_min_confidence_leaves_unsure_files_without_a_genre_or_tag(tmp_path, classifier):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    write_tone(root / "a.flac", 220, seconds=2.0)
    write_tone(root / "b.flac", 1760, seconds=2.0)
    summary = tag_library(root, db, classifier, workers=1, progress=False)
    confidence = {Path(p).name: max(json.loads(r["probabilities"]).values()) for p, r in rows(db).items()}
    threshold = (confidence["a.flac"] + confidence["b.flac"]) / 2  # one file above, one below
    unsure = min(confidence, key=confidence.get)
    summary = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True, min_confidence=threshold)
    table = {Path(p).name: row for p, row in rows(db).items()}
    assert summary.skipped == 2 and summary.uncertain == 1 and "1 uncertain" in summary.line()
    assert table[unsure]["genre"] is None and table[unsure]["tag"] is None
    assert "genre" not in (mutagen.File(root / unsure, easy=True) or {})
    sure = ({"a.flac", "b.flac"} - {unsure}).pop()
    assert mutagen.File(root / sure, easy=True)["genre"] == [display_genre(table[sure]["genre"])]
    export_library(db, tmp_path / "out.csv", "csv")
    with open(tmp_path / "out.csv", newline="") as handle:
        exported = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert exported[unsure]["status"] == "uncertain" and exported[unsure]["genre"] == ""
    assert len(exported[unsure]["top3"].split()) == 3 and exported[sure]["status"] == "tagged"
    assert tag_library(root, db, classifier, workers=1, progress=False).uncertain == 0  # threshold is per run
    with pytest.raises(ParameterError):
        tag_library(root, db, classifier, workers=1, progress=False, min_confidence=1.5)


# ---------------------------------------------------------------------------------------------- hardening

LATIN1 = os.fsdecode(b"caf\xe9 d\xe9j\xe0 vu")  # a Latin-1 name: not valid UTF-8, surrogate-escaped as text


def test_names_that_are_not_utf8_are_tagged_and_round_trip(tmp_path, classifier, model):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    write_tone(root / "a.wav", 220, seconds=2.0)
    odd = write_tone(root / f"{LATIN1}.flac", 1760, seconds=2.0)
    (root / f"{LATIN1} broken.mp3").write_bytes(b"junk" * 100)
    write_tone(root / "z.wav", 1760, seconds=2.0)  # sorted after the odd names: must be tagged too
    summary = tag_library(root, db, classifier, workers=1, progress=False)
    assert (summary.total, summary.tagged, summary.failed) == (4, 3, 1)
    stored = rows(db)
    assert os.fsencode(odd.resolve()) in stored and str(root.resolve() / "a.wav") in stored  # bytes, text
    assert stored[os.fsencode(odd.resolve())]["genre"] == classifier.predict(odd).genre
    again = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert (again.skipped, again.unchanged_failed, again.tags_written, again.removed) == (3, 1, 3, 0)
    assert mutagen.File(odd, easy=True)["genre"] == [display_genre(stored[os.fsencode(odd.resolve())]["genre"])]

    export_library(db, tmp_path / "out.json", "json")
    exported = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))  # valid UTF-8
    assert str(odd.resolve()) in {record["path"] for record in exported}
    export_library(db, tmp_path / "out.csv", "csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        assert str(odd.resolve()) in {record["path"] for record in csv.DictReader(handle)}

    result = runner.invoke(app, ["tag", str(root), "--db", str(db), "--model", str(model), "--workers", "1"])
    assert result.exit_code == 1 and "caf\\xe9 d\\xe9j\\xe0 vu broken.mp3: not a readable" in result.output
    result = runner.invoke(app, ["predict", str(odd), "--model", str(model), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["genre"] == stored[os.fsencode(odd.resolve())]["genre"]


def test_export_never_overwrites_the_database_an_audio_file_or_another_file(tmp_path, model):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    song = write_tone(root / "song.wav", 220, seconds=2.0)
    args = ["tag", str(root), "--db", str(db), "--model", str(model), "--workers", "1"]
    assert runner.invoke(app, args).exit_code == 0
    kept = {path: path.read_bytes() for path in (db, song)}
    (tmp_path / "notes.csv").write_text("my own notes\n")
    (tmp_path / "lib.json").write_text('{"mine": 1}\n')
    for output, export, reason in [(db, "csv", "is the library database"), (song, "json", "an audio file name"),
                                   (tmp_path / "new.mp3", "csv", "an audio file name"),
                                   (tmp_path / "notes.csv", None, "is not an earlier csv export"),
                                   (None, "json", "is not an earlier json export"), (root, "csv", "is a folder")]:
        extra = (["--output", str(output)] if output else []) + (["--export", export] if export else [])
        result = runner.invoke(app, args + extra)
        assert isinstance(result.exception, GenrekitError), result.output
        shown = output or tmp_path / "lib.json"
        assert str(result.exception).startswith(f"{shown}: ") and reason in str(result.exception)
        assert "\n" not in str(result.exception) and "audio files" not in result.output  # refused before tagging
    assert {path: path.read_bytes() for path in kept} == kept and not (tmp_path / "new.mp3").exists()
    assert (tmp_path / "notes.csv").read_text() == "my own notes\n"
    for _ in range(2):  # an earlier export is replaced
        assert runner.invoke(app, args + ["--output", str(tmp_path / "out.csv")]).exit_code == 0
    with pytest.raises(GenrekitError, match="is the library database"):
        export_library(db, db.with_name("lib.sqlite-wal"), "csv")


KILLED_TAGGING = """
import sys, time
from pathlib import Path
from genrekit import library
from genrekit.predict import load
from genrekit.library import tags
set_genre = tags._set_genre
def stuck(audio, path, genre):
    set_genre(audio, path, genre)
    Path(sys.argv[4]).touch()
    time.sleep(120)
tags._set_genre = stuck
library.tag_library(sys.argv[1], sys.argv[2], load(sys.argv[3]), workers=1, progress=False, write_tags=True)
"""


def test_tagging_copies_left_by_a_kill_are_never_tracks_and_are_removed(tmp_path, classifier, model):
    root, db, marker = tmp_path / "music", tmp_path / "lib.sqlite", tmp_path / "copying"
    for name, freq in (("a.wav", 220), ("b.flac", 1760)):
        write_tone(root / name, freq, seconds=2.0)
    process = subprocess.Popen([sys.executable, "-c", KILLED_TAGGING, str(root), str(db), str(model), str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    assert marker.exists()
    copies = [name for name in os.listdir(root) if ".tagging." in name]
    assert len(copies) == 1 and PARTIAL_COPY.fullmatch(copies[0])
    summary = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert (summary.total, summary.partial_copies_removed, summary.tags_written) == (2, 1, 2) and summary.ok
    assert "1 tagging copies left by a killed run removed" in summary.line()
    assert sorted(os.listdir(root)) == ["a.wav", "b.flac"]
    assert len(rows(db)) == 2


def test_write_tags_keeps_the_genres_people_set_unless_forced_and_can_pretend(tmp_path, classifier):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    curated, plain = write_tone(root / "curated.flac", 220, seconds=2.0), write_tone(root / "plain.mp3", 220, seconds=2.0)
    write_genre_tag(curated, "Shoegaze; Dream Pop")
    before, samples = {p.name: p.read_bytes() for p in root.iterdir()}, load_audio(curated)
    pretend = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True, dry_run=True)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before  # nothing written
    reasons = {Path(p).name: why for p, why in pretend.tag_problems}
    assert reasons["curated.flac"].startswith("kept: it has genre 'Shoegaze; Dream Pop'")
    genre = {Path(path).name: display_genre(row["genre"]) for path, row in rows(db).items()}
    assert reasons["plain.mp3"] == f"would write: {genre['plain.mp3']}" and pretend.tags_written == 1 and pretend.ok
    summary = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert summary.tags_written == 1 and summary.ok
    assert existing_genres(curated) == ["Shoegaze; Dream Pop"] and existing_genres(plain) == [genre["plain.mp3"]]
    forced = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True, force_tags=True)
    assert forced.tags_written == 1 and existing_genres(curated) == [genre["curated.flac"]]
    assert rows(db)[str(curated.resolve())]["tag"] == "written, was: Shoegaze; Dream Pop"  # the way back
    assert np.array_equal(load_audio(curated), samples)  # only the tag changed
    result = runner.invoke(app, ["tag", str(root), "--db", str(db), "--restore-tags"])
    assert result.exit_code == 0 and "restored: Shoegaze; Dream Pop" in result.output, result.output
    assert existing_genres(curated) == ["Shoegaze; Dream Pop"] and existing_genres(plain) == [genre["plain.mp3"]]
    assert np.array_equal(load_audio(curated), samples)
    assert display_genre("hiphop") == "Hip-Hop" and display_genre("rnb_soul") == "R&B/Soul"
    assert display_genre("rnb_soul", {"rnb_soul": "Soul"}) == "Soul"
    names = {"high": "Treble", "low": "Bass", "noisy": "Hiss"}
    renamed = tag_library(root, tmp_path / "other.sqlite", classifier, workers=1, progress=False, write_tags=True,
                          force_tags=True, genre_names=names, dry_run=True)
    label = {Path(path).name: row["genre"] for path, row in rows(tmp_path / "other.sqlite").items()}
    assert dict((Path(p).name, why) for p, why in renamed.tag_problems) == {
        "curated.flac": f"would write: {names[label['curated.flac']]} (replacing 'Shoegaze; Dream Pop')",
        "plain.mp3": f"would write: {names[label['plain.mp3']]} (replacing '{genre['plain.mp3']}')"}


def test_write_tags_leaves_links_out_of_the_folder_and_hard_links_alone(tmp_path, classifier):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    outside = write_tone(tmp_path / "elsewhere" / "out.flac", 220, seconds=2.0)
    write_tone(root / "own.flac", 1760, seconds=2.0)
    (root / "link.flac").symlink_to(outside)
    linked = write_tone(root / "linked.flac", 220, seconds=2.0)
    os.link(linked, tmp_path / "second name.flac")
    before = {path: (path.read_bytes(), path.stat().st_ino) for path in (outside, linked)}
    summary = tag_library(root, db, classifier, workers=1, progress=False, write_tags=True)
    assert (summary.total, summary.tags_written) == (3, 1) and summary.ok
    problems = {Path(path).name: reason for path, reason in summary.tag_problems}
    assert problems["link.flac"].startswith(f"skipped: a link to {outside}, outside")
    assert problems["linked.flac"].startswith("skipped: 2 hard links")
    assert {path: (path.read_bytes(), path.stat().st_ino) for path in before} == before
    assert (tmp_path / "second name.flac").stat().st_ino == linked.stat().st_ino
    assert "genre" in mutagen.File(root / "own.flac", easy=True)


def test_dangling_links_loops_and_unreadable_folders_are_listed(tmp_path, model, monkeypatch):
    root, db = tmp_path / "music", tmp_path / "lib.sqlite"
    write_tone(root / "ok.wav", 220, seconds=2.0)
    (root / "gone.mp3").symlink_to(root / "deleted.mp3")
    (root / "loop1.wav").symlink_to(root / "loop2.wav")
    (root / "loop2.wav").symlink_to(root / "loop1.wav")
    locked = root / "locked"
    write_tone(locked / "hidden.wav", 220, seconds=2.0)
    locked.chmod(0)
    scandir = os.scandir

    def denied(path="."):  # root reads every folder: deny this one as a non-root user would be denied
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    try:
        result = runner.invoke(app, ["tag", str(root), "--db", str(db), "--model", str(model), "--workers", "1"])
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert "1 audio files: 1 tagged" in result.output and "4 not scanned" in result.output
    real = root.resolve()
    for line in (f"{real / 'gone.mp3'}: dangling symlink", f"{real / 'loop1.wav'}: symlink loop",
                 f"{real / 'loop2.wav'}: symlink loop", f"{real / 'locked'}: unreadable folder (Permission denied)"):
        assert line in result.output
    assert len(rows(db)) == 1


KILLED_POOL = """
import os, sys, time
from pathlib import Path
from genrekit import library
from genrekit.predict import load
from genrekit.library.tagging import ClassifyFiles
def run(work, classifier, job):
    Path(sys.argv[4], str(os.getpid())).touch()
    time.sleep(120)
ClassifyFiles.run = run
library.tag_library(sys.argv[1], sys.argv[2], load(sys.argv[3]), workers=2, progress=False)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
def test_tag_workers_die_when_tag_is_killed(tmp_path, model):
    root, pids = tmp_path / "music", tmp_path / "pids"
    pids.mkdir()
    for i in range(3):
        write_tone(root / f"{i}.wav", 300 + 300 * i, seconds=1.0)
    parent = subprocess.Popen([sys.executable, "-c", KILLED_POOL, str(root), str(tmp_path / "lib.sqlite"),
                               str(model), str(pids)])
    assert_workers_die_with(parent, pids)
