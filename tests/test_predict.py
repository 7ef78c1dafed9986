import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import BAD_INPUTS, tone, unknown_length, write_bad_inputs, write_tone
from genrekit.audio import load_audio, stream_audio
from genrekit.datasets import select
from genrekit.checkpoints import load_members
from genrekit.ensemble import Ensemble
from genrekit.evaluation import clip_log_probs
from genrekit.exceptions import AudioError, GenrekitError, ParameterError
from genrekit.predict import Classifier, load


def test_stream_audio_matches_whole_file_decoding(tmp_path):
    y = np.concatenate([tone(300, 2.0, 44100), tone(600, 2.3, 44100)])
    sf.write(tmp_path / "a.flac", y, 44100)
    blocks = list(stream_audio(tmp_path / "a.flac", block_seconds=1.0))
    assert len(blocks) >= 4 and max(len(b) for b in blocks) <= 22050 * 1.05
    streamed, whole = np.concatenate(blocks), load_audio(tmp_path / "a.flac")
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.max(np.abs(streamed[:n] - whole[:n])) < 1e-3


@pytest.fixture(scope="module")
def classifiers(members, toy_dataset, tmp_path_factory):
    paths, _ = members
    _, tracks = toy_dataset
    out = tmp_path_factory.mktemp("ens")
    gated = Ensemble(load_members(paths), "gating").fit(select(tracks, "valid"), progress=False)
    return {"single": load(paths[0]), "gated": load(gated.save(out / "gated.pt"))}


@pytest.mark.parametrize("kind", ["single", "gated"])
def test_predict_file_and_array_agree_and_match_evaluation(classifiers, toy_dataset, kind):
    classifier = classifiers[kind]
    _, tracks = toy_dataset
    test = select(tracks, "test")
    from_files = [classifier.predict(t.path) for t in test]
    for track, result in zip(test, from_files):
        assert result.probabilities.sum() == pytest.approx(1, abs=1e-4)
        assert result.timeline.shape == (2, 3) and result.times.tolist() == [0.0, 1.0]
        y, sr = sf.read(track.path, dtype="float32")
        same = classifier.predict(y, sr=sr)
        assert np.allclose(same.probabilities, result.probabilities, atol=1e-4)
    evaluated, _ = clip_log_probs(load(classifier.source).scorer, test, progress=False)
    assert np.allclose(np.exp(evaluated), [r.probabilities for r in from_files], atol=1e-5, rtol=0)


def test_long_stereo_song_at_another_rate_gets_a_timeline(classifiers, tmp_path):
    sr = 44100
    low, high = tone(220, 40.0, sr, amplitude=0.4), tone(1760, 40.0, sr, amplitude=0.4)
    y = np.stack([np.concatenate([low, high])] * 2, axis=1)
    sf.write(tmp_path / "long.flac", y, sr)  # (libsndfile crashes writing long OGG files in one call)
    result = classifiers["single"].predict(tmp_path / "long.flac")
    assert result.duration == pytest.approx(80.0, abs=0.1)
    assert len(result.times) == 80 and result.times[-1] == pytest.approx(79.0, abs=0.05)
    labels = result.labels
    for second in (5, 45, 79):  # each timeline row is the model's view of that window alone
        alone = classifiers["single"].predict(load_audio(tmp_path / "long.flac", offset=second, duration=1.0),
                                              sr=22050)
        assert np.allclose(result.timeline[second], alone.probabilities, atol=0.02)
    d = result.to_dict(top=2, timeline=True)
    assert len(d["top"]) == 2 and len(d["timeline"]) == 80 and set(d["probabilities"]) == set(labels)
    assert (d["timeline"][0]["start"], d["timeline"][0]["end"], d["timeline"][-1]["end"]) == (0.0, 1.0, 80.0)


@pytest.mark.parametrize("kind", ["single", "gated"])
def test_sampled_windows_are_windows_of_the_full_grid(classifiers, tmp_path, kind):
    """`max_windows`: that many windows of the grid, evenly spread, decoded alone from a file (44.1 kHz stereo
    here) or cut from an array, each scored as the full run scores it; fewer windows than asked: all."""
    classifier, sr = classifiers[kind], 44100
    y = np.concatenate([tone(220, 20.0, sr, amplitude=0.4), tone(1760, 20.5, sr, amplitude=0.4)])
    sf.write(tmp_path / "song.flac", np.stack([y, y], axis=1), sr)
    full = classifier.predict(tmp_path / "song.flac")
    for audio in (tmp_path / "song.flac", y):
        sampled = Classifier(classifier.scorer, classifier.source, max_windows=5).predict(audio, sr=sr)
        assert list(sampled.times) == [0.0, 10.0, 20.0, 29.0, 39.0] and sampled.duration == pytest.approx(40.5, abs=0.01)
        assert np.allclose(sampled.timeline, full.timeline[[0, 10, 20, 29, 39]], atol=0.02)
        assert sampled.genre == full.genre and np.abs(sampled.probabilities - full.probabilities).max() < 0.1
    assert np.allclose(Classifier(classifier.scorer, classifier.source, max_windows=50).predict(y, sr=sr).timeline,
                       full.timeline, atol=0.02)
    streamed = unknown_length(tmp_path / "song.flac")  # its length unknown: every window, as without max_windows
    assert np.allclose(Classifier(classifier.scorer, classifier.source, max_windows=5).predict(streamed).timeline,
                       full.timeline, atol=1e-4)


@pytest.mark.parametrize("seconds, end", [(3.0, 3.0), (0.6, 0.6), (2.5, 2.0)])
def test_timeline_chart_draws_every_window_to_its_end(classifiers, tmp_path, seconds, end):
    from genrekit.plots import plot_timeline, timeline_figure

    result = classifiers["single"].predict(write_tone(tmp_path / "a.wav", freq=1700, seconds=seconds))
    assert result.ends[-1] == pytest.approx(end, abs=0.01)
    figure = timeline_figure(result)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]

    def colour_at(t):
        x, y = figure.axes[0].transData.transform((t, 0.5))
        return pixels[pixels.shape[0] - int(y), int(x)]

    assert colour_at(0.02 * end).min() < 250 and colour_at(0.98 * end).min() < 250  # windows, not background
    if seconds > end:  # the piece shorter than a window: greyed
        assert colour_at((end + seconds) / 2).tolist() == [217, 217, 217]
    assert plot_timeline(result, tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_errors(classifiers, tmp_path):
    classifier = classifiers["single"]
    sf.write(tmp_path / "silence.wav", np.zeros(22050 * 2, np.float32), 22050)
    with pytest.raises(AudioError, match="silence.wav: silent"):
        classifier.predict(tmp_path / "silence.wav")
    with pytest.raises(ParameterError, match="sr="):
        classifier.predict(np.zeros(100, np.float32))
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + bytes(100))
    good = write_tone(tmp_path / "good.wav", freq=1700, seconds=2.0)
    failures = []
    results = classifier.predict_many([bad, good, tmp_path / "missing.wav"], on_error=lambda p, e: failures.append(p))
    assert isinstance(results[0], AudioError) and "bad.mp3" in str(results[0])
    assert results[1].genre == "high" and isinstance(results[2], AudioError)
    assert failures == [bad, tmp_path / "missing.wav"]


def test_load_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(GenrekitError, match="junk.pt: not a genrekit checkpoint"):
        load(tmp_path / "junk.pt")
    with pytest.raises(GenrekitError, match="file not found"):
        load(tmp_path / "none.pt")


def test_cli_predict_formats_timeline_and_failures(members, tmp_path):
    import csv
    import io
    import json

    from typer.testing import CliRunner

    from genrekit.cli import app

    model = str(members[0][0])
    good = write_tone(tmp_path / "song one.wav", freq=1700, seconds=3.0)
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC" + bytes(50))
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(good), "--model", model, "--top", "2"])
    assert result.exit_code == 0, result.output
    assert "song one.wav" in result.output and "top 2" in result.output

    result = runner.invoke(app, ["predict", str(good), str(bad), "--model", model, "--format", "json",
                                 "--timeline", "--timeline-dir", str(tmp_path / "tl")])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[0]["genre"] in ("high", "low", "noisy") and len(rows[0]["timeline"]) == 3
    assert "broken.flac" in rows[1]["error"]
    assert (tmp_path / "tl" / "song one.wav.timeline.png").read_bytes()[:4] == b"\x89PNG"

    result = runner.invoke(app, ["predict", str(good), "--model", model, "--format", "csv", "--top", "3"])
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.exit_code == 0 and table[0]["genre"] and table[0]["top3"].count(":") == 1

    result = runner.invoke(app, ["predict", str(bad), "--model", model])  # nothing predicted: 2, as errors are
    assert result.exit_code == 2 and "broken.flac" in result.stderr and "Genres" not in result.stdout

    result = runner.invoke(app, ["predict", str(good), "--model", model, "--format", "yaml"])
    assert result.exit_code != 0


def test_cli_predict_many_files_progress_names_and_timelines(members, tmp_path):
    import json

    from typer.testing import CliRunner

    from genrekit.cli import app

    model = str(members[0][0])
    long_name = "a very long file name of a song that a narrow table would cut or fold over lines " * 2
    files = [write_tone(tmp_path / "song.wav", freq=1700, seconds=2.0),
             write_tone(tmp_path / "song.flac", freq=220, seconds=2.0),
             write_tone(tmp_path / f"{long_name.strip()}.ogg", freq=500, seconds=2.0)]
    runner = CliRunner()
    result = runner.invoke(app, ["predict", *map(str, files), "--model", model, "--format", "json",
                                 "--timeline", "--timeline-dir", str(tmp_path / "tl")])
    assert result.exit_code == 0, result.output
    assert [row["source"] for row in json.loads(result.stdout)] == list(map(str, files))  # stdout: JSON only
    assert "predicting" in result.stderr and "3/3" in result.stderr and "file/s" in result.stderr
    assert sorted(p.name for p in (tmp_path / "tl").iterdir()) == \
        sorted(f"{f.name}.timeline.png" for f in files)  # song.wav and song.flac: two charts

    result = runner.invoke(app, ["predict", str(files[2]), "--model", model])
    assert result.exit_code == 0 and files[2].name in result.stdout  # piped: the whole name on one line
    assert "predicting" not in result.stderr  # one file: no progress bar


def test_cli_predict_takes_folders_as_their_audio_files(members, tmp_path):
    import json

    from typer.testing import CliRunner

    from genrekit.cli import app

    album = tmp_path / "album"
    songs = [write_tone(album / "b.flac", freq=220, seconds=2.0), write_tone(album / "disc 2" / "a.m4a", freq=500,
                                                                             seconds=2.0)]
    (album / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    (tmp_path / "empty").mkdir()
    single = write_tone(tmp_path / "single.wav", freq=1700, seconds=2.0)
    result = CliRunner().invoke(app, ["predict", str(single), str(album), str(tmp_path / "empty"),
                                      "--model", str(members[0][0]), "--format", "json"])
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert [row["source"] for row in rows] == [str(single), str(songs[0]), str(songs[1]), str(tmp_path / "empty")]
    assert all(row["genre"] for row in rows[:3]) and rows[3]["error"].endswith("empty: folder without audio files")
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'empty'}: folder without audio files"


def test_cli_predict_refuses_the_bad_input_corpus_and_predicts_the_rest(members, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app

    bad = sorted(write_bad_inputs(tmp_path / "bad").iterdir())
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    good = write_tone(tmp_path / "good.wav", freq=1700, seconds=2.0)
    files = [*bad, tmp_path / "loop.wav", good / "under-a-file.wav", good]
    result = CliRunner().invoke(app, ["predict", *map(str, files), "--model", str(members[0][0])])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "good.wav" in result.stdout and "high" in result.stdout
    errors = result.stderr.strip().splitlines()[-len(files) + 1:]
    expected = {**{str(path): BAD_INPUTS[path.name] for path in bad},
                str(tmp_path / "loop.wav"): "cannot be read (too many levels of symbolic links)",
                str(good / "under-a-file.wav"): "cannot be read (not a directory)"}
    assert len(errors) == len(expected)
    for line, (path, reason) in zip(errors, expected.items()):
        assert line.startswith(f"error: {path}: ") and reason in line, line


def _as_a_user_who_may_not_read_everything():
    """The command prefix that runs a process without root's power to read any file (none when not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root, without setpriv to give up reading every file")
    return [shutil.which("setpriv"), "--bounding-set=-dac_override,-dac_read_search"]


def test_cli_predict_reports_unreadable_files_and_unsearchable_folders_and_goes_on(members, tmp_path):
    hidden = write_tone(tmp_path / "locked" / "hidden.wav", freq=1700, seconds=2.0)
    unreadable = write_tone(tmp_path / "unreadable.wav", freq=1700, seconds=2.0)
    good = write_tone(tmp_path / "good.wav", freq=1700, seconds=2.0)
    unreadable.chmod(0)
    (tmp_path / "locked").chmod(0o600)  # its files may not be reached
    write_tone(tmp_path / "shut" / "inside.wav", freq=1700, seconds=2.0)
    (tmp_path / "shut").chmod(0)  # not even listed
    try:
        result = subprocess.run([*_as_a_user_who_may_not_read_everything(), sys.executable, "-c",
                                 "from genrekit.cli import main; main()", "predict", str(hidden), str(unreadable),
                                 str(good), str(tmp_path / "locked"), str(tmp_path / "shut"), "--model",
                                 str(members[0][0]), "--format", "csv"], capture_output=True, text=True, timeout=300)
    finally:
        (tmp_path / "locked").chmod(0o700)
        (tmp_path / "shut").chmod(0o700)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{good},high," in result.stdout
    errors = result.stderr.splitlines()
    for path in (hidden, unreadable):
        assert f"error: {path}: cannot be read (permission denied)" in errors
    assert f"error: {tmp_path / 'locked'}: folder without audio files (1 entries could not be read)" in errors
    assert f"error: {tmp_path / 'shut'}: unreadable folder (Permission denied)" in errors


def test_cli_timelines_of_same_and_long_names_and_names_with_brackets(members, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app

    long_name = "n" * 250 + ".wav"
    files = [write_tone(tmp_path / "a" / "song.wav", freq=1700, seconds=2.0),
             write_tone(tmp_path / "b" / "song.wav", freq=220, seconds=2.0),
             write_tone(tmp_path / long_name, freq=500, seconds=2.0),
             write_tone(tmp_path / "markup[bold]y.wav", freq=500, seconds=2.0)]
    result = CliRunner().invoke(app, ["predict", *map(str, files), "--model", str(members[0][0]), "--timeline",
                                      "--timeline-dir", str(tmp_path / "tl")])
    assert result.exit_code == 0, result.output
    assert "markup[bold]y.wav" in result.stdout and long_name in result.stdout
    assert sorted(path.name for path in (tmp_path / "tl").iterdir()) == sorted(
        ["a-song.wav.timeline.png", "b-song.wav.timeline.png", "n" * 200 + ".timeline.png",
         "markup[bold]y.wav.timeline.png"])
    (tmp_path / "tl" / "a-song.wav.timeline.png").unlink()
    (tmp_path / "tl" / "a-song.wav.timeline.png").mkdir()  # this chart cannot be written: the others still are
    result = CliRunner().invoke(app, ["predict", *map(str, files[:2]), "--model", str(members[0][0]), "--timeline",
                                      "--timeline-dir", str(tmp_path / "tl"), "--format", "json"])
    assert result.exit_code == 1 and len(json.loads(result.stdout)) == 2
    assert f"error: {tmp_path / 'tl' / 'a-song.wav.timeline.png'}: timeline not written" in result.stderr
    assert (tmp_path / "tl" / "b-song.wav.timeline.png").is_file()


def test_cli_predict_timelines_of_files_with_one_name_in_different_folders(members, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app

    first, second = (write_tone(tmp_path / folder / "song.wav", freq=freq, seconds=2.0)
                     for folder, freq in (("a", 1700), ("b", 220)))
    result = CliRunner().invoke(app, ["predict", str(first), str(second), str(first), "--model",
                                      str(members[0][0]), "--timeline", "--timeline-dir", str(tmp_path / "tl")])
    assert result.exit_code == 0, result.output
    charts = {name: tmp_path / "tl" / name
              for name in ("a-song.wav.1.timeline.png", "b-song.wav.timeline.png", "a-song.wav.2.timeline.png")}
    assert sorted(p.name for p in (tmp_path / "tl").iterdir()) == sorted(charts)
    pictures = {name: path.read_bytes() for name, path in charts.items()}
    assert all(picture[:4] == b"\x89PNG" for picture in pictures.values())
    assert pictures["a-song.wav.1.timeline.png"] != pictures["b-song.wav.timeline.png"]  # not one over the other
    assert f"timelines: 3 PNGs in {tmp_path / 'tl'}/" in result.stderr
    assert f"{second} -> b-song.wav.timeline.png" in result.stderr and "timelines" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "tl"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["song.wav"]  # nothing written beside the inputs


@pytest.mark.parametrize("kind", ["single", "gated"])
def test_onnx_export_predicts_like_torch(classifiers, toy_dataset, tmp_path, kind):
    pytest.importorskip("onnxruntime")
    from genrekit.export import export_onnx

    torch_classifier = classifiers[kind]
    onnx_classifier = load(export_onnx(torch_classifier.source, tmp_path / f"{kind}.onnx"))
    assert type(onnx_classifier.scorer).__name__ == "OnnxScorer"
    assert onnx_classifier.labels == torch_classifier.labels
    for track in select(toy_dataset[1], "test"):
        a, b = torch_classifier.predict(track.path), onnx_classifier.predict(track.path)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
        assert np.allclose(a.timeline, b.timeline, atol=1e-4)
    with pytest.raises(ParameterError, match="onnxruntime, not torch"):
        load(tmp_path / f"{kind}.onnx", backend="torch")


def test_onnx_export_is_made_once_per_model_content(classifiers, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import shutil

    from genrekit import export, predict

    model = shutil.copy(classifiers["single"].source, tmp_path / "model.pt")
    made = []
    real_export = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *args: made.append(args) or real_export(*args))
    first = predict.cached_onnx_export(model, tmp_path / "cache")
    assert predict.cached_onnx_export(model, tmp_path / "cache") == first and len(made) == 1
    assert load(first).predict(tone(1700, 2.0), sr=22050).probabilities.shape == (3,)
    shutil.copy(classifiers["gated"].source, model)  # other content: exported again, to another file
    assert predict.cached_onnx_export(model, tmp_path / "cache") != first and len(made) == 2


def test_a_damaged_cached_onnx_export_is_made_again(classifiers, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from genrekit import predict

    model = shutil.copy(classifiers["single"].source, tmp_path / "model.pt")
    _, first = predict.cached_onnx_scorer(model, tmp_path / "cache")
    first.write_bytes(first.read_bytes()[:1000])  # e.g. a disk that filled up
    scorer, again = predict.cached_onnx_scorer(model, tmp_path / "cache")
    assert again == first and scorer.labels == classifiers["single"].labels
    assert load(again).predict(tone(1700, 2.0), sr=22050).genre == "high"


def test_a_checkpoint_missing_keys_is_one_error(classifiers, tmp_path):
    import torch

    from genrekit.checkpoints import load_checkpoint, load_members

    single, gated = (torch.load(classifiers[kind].source, weights_only=True) for kind in ("single", "gated"))
    torch.save({key: value for key, value in single.items() if key != "labels"}, tmp_path / "single.pt")
    torch.save({key: value for key, value in gated.items() if key != "combiner"}, tmp_path / "gated.pt")
    for read, path, key in ((load, "single.pt", "labels"), (load_checkpoint, "single.pt", "labels"),
                            (lambda p: load_members([p]), "single.pt", "labels"), (load, "gated.pt", "combiner")):
        with pytest.raises(GenrekitError, match=f"{path}: damaged genrekit file \\(no {key}\\)"):
            read(tmp_path / path)


def test_waveform_and_frame_members_see_the_same_windows(members, toy_dataset, tmp_path):
    """Blocks of any length (resampled streams are not exact) give every member the same windows."""
    from genrekit.training import TrainConfig, train

    _, tracks = toy_dataset
    waveform = train(TrainConfig(model="cnn-waveform", epochs=1, window_seconds=1.0, batch_size=8,
                                 model_kwargs={"channels": (4, 8)}), select(tracks, "train"), select(tracks, "valid"),
                     tmp_path, labels=["high", "low", "noisy"], cache=members[1], workers=1, progress=False)
    ensemble = Ensemble(load_members([members[0][0], waveform]), "equal").fit(select(tracks, "valid"),
                                                                             progress=False)
    classifier = load(ensemble.save(tmp_path / "mixed.pt"))
    for seconds in (2.0, 2.1, 3.999, 61.3):
        y = tone(1700, seconds, 44100, amplitude=0.3)
        result = classifier.predict(y, sr=44100)
        assert result.timeline.shape == (len(result.times), 3) and np.isfinite(result.timeline).all()
        assert result.times.tolist() == pytest.approx(np.arange(int(seconds)))  # whole windows; a shorter tail is left out


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_bundled_models_load_by_name(backend):
    from genrekit.predict import BUNDLED_MODELS

    if not all(path.is_file() for path in BUNDLED_MODELS.values()):
        pytest.skip("bundled model files missing")
    fast, default = load("fast", backend=backend), load(backend=backend)
    assert len(default.labels) == 12 and {"blues", "metal", "electronic", "rnb_soul"} <= set(default.labels)
    assert set(fast.labels) <= set(default.labels) and fast.member_names != default.member_names
    assert "backbone-musicnn" in default.member_names and "backbone-musicnn" not in fast.member_names
    y = tone(440.0, seconds=4.0)
    assert np.isclose(fast.predict(y, sr=22050).probabilities.sum(), 1.0, atol=1e-4)


def test_file_names_that_are_not_utf8_are_shown_escaped_in_tables_csv_and_pictures(members, tmp_path):
    """A Latin-1 name (bytes that are not UTF-8) once crashed matplotlib and lost the whole batch."""
    import os

    from typer.testing import CliRunner

    from genrekit.cli import app

    model = str(members[0][0])
    latin = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.wav")
    write_tone(latin, freq=1700, seconds=3.0)
    good = write_tone(tmp_path / "plain.wav", freq=1700, seconds=3.0)
    runner = CliRunner()
    result = runner.invoke(app, ["predict", latin, str(good), "--model", model, "--timeline", "--timeline-dir",
                                 str(tmp_path / "tl")])
    assert result.exit_code == 0, result.output
    assert "caf\\xe9.wav" in result.output and "plain.wav" in result.output
    assert {os.fsencode(p.name) for p in (tmp_path / "tl").iterdir()} == {b"caf\xe9.wav.timeline.png",
                                                                            b"plain.wav.timeline.png"}
    result = runner.invoke(app, ["predict", latin, "--model", model, "--format", "csv"])
    assert result.exit_code == 0 and "caf\\xe9.wav," in result.stdout
    (tmp_path / "pics").mkdir()
    result = runner.invoke(app, ["show", latin, "-o", str(tmp_path / "pics")])
    assert result.exit_code == 0, result.output
    assert "caf\\xe9.png" in result.output and [p.suffix for p in (tmp_path / "pics").iterdir()] == [".png"]


def test_songs_over_the_duration_cap_are_refused_before_decoding_in_predict_and_tag(members, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app
    from genrekit.exceptions import TooLong
    from genrekit.library import tag_library

    model = str(members[0][0])
    capped = load(model, max_seconds=3.0)
    long, short = write_tone(tmp_path / "music" / "long.flac", seconds=5.0), write_tone(tmp_path / "music" / "short.wav")
    hidden = unknown_length(write_tone(tmp_path / "hidden.flac", seconds=5.0))
    with pytest.raises(TooLong, match=r"long.flac: longer than the limit of 3.0 s \(5.0 s\)"):
        capped.predict(long)
    with pytest.raises(TooLong, match="found by decoding up to there"):
        capped.predict(hidden)
    assert capped.predict(short).genre and load(model).predict(long).genre  # no cap: any length
    result = CliRunner().invoke(app, ["predict", str(long), "--model", model, "--max-duration", "0.05"])
    assert result.exit_code == 2 and "long.flac: longer than the limit of 3.0 s (5.0 s)" in result.stderr
    summary = tag_library(tmp_path / "music", tmp_path / "lib.sqlite", capped, workers=2, progress=False)
    assert summary.tagged == 1 and [(Path(p).name, why) for p, why in summary.failures] == [
        ("long.flac", "longer than the limit of 3.0 s (5.0 s)")]  # the workers got the cap too
