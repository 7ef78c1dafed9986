import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from conftest import write_tone
from genrekit.cli import app, main

runner = CliRunner()


def test_every_command_has_help():
    for args in (["--help"], ["show", "--help"], ["features", "--help"], ["demo", "--help"],
                 ["data", "--help"], ["data", "summary", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_version_and_help_texts():
    import typer

    from genrekit import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"genrekit {__version__}"
    commands = typer.main.get_command(app).commands
    assert [p.name for p in commands["train"].params if not p.help] == []
    for command, usage in (("predict", "[OPTIONS] FILES..."), ("tag", "[OPTIONS] DIRECTORY"),
                           ("evaluate", "[OPTIONS] MODEL")):
        assert ".onnx" in commands[command].params[[p.name for p in commands[command].params].index("model")].help
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert f"{command} {usage}" in shown
        assert "{" not in shown and "<bool>" not in shown
    render = runner.invoke(app, ["data", "render-midi", "--help"], env={"COLUMNS": "200"}).output
    assert "render-midi [OPTIONS] SOURCE OUT" in render
    assert "<bool>" not in runner.invoke(app, ["--help"]).output


def test_show_writes_a_png(tmp_path):
    clip = write_tone(tmp_path / "a.wav", seconds=2.0)
    result = runner.invoke(app, ["show", str(clip), "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_demo_looks_for_gtzan_mini_beside_the_repository():
    from genrekit.cli.data import DEMO_DATASET

    assert DEMO_DATASET == Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini"


def test_demo_writes_example_and_pictures(tmp_path):
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--dataset", str(tmp_path / "music")])
    assert result.exit_code != 0  # the dataset folder does not exist yet
    for genre in ("a", "b"):
        for i in range(4):
            write_tone(tmp_path / "music" / genre / f"{i}.wav", seconds=0.2)
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--dataset", str(tmp_path / "music")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "example-loop.wav").is_file() and list(tmp_path.glob("example-*.png"))
    assert "logmel" in result.output and "(128," in result.output and "8 clips" in result.output


def test_features_command_caches_and_reports_failures(tmp_path):
    for i in range(3):
        write_tone(tmp_path / "music" / "a" / f"{i}.wav", freq=300 + 100 * i, seconds=0.3)
    (tmp_path / "music" / "a" / "broken.wav").write_bytes(b"xx" * 40)
    args = ["features", f"folder:{tmp_path / 'music'}", "--cache-dir", str(tmp_path / "cache"), "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "3 computed, 0 already cached, 1 failed" in result.output and "broken.wav" in result.output
    assert "0 computed, 3 already cached" in runner.invoke(app, args).output


def test_errors_are_one_line_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["genrekit", "show", str(tmp_path / "missing.mp3")])
    try:
        main()
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.mp3: file not found" in err


def test_evaluate_known_labels_only_leaves_out_and_counts_unknown_labels(members, toy_dataset, tmp_path):
    import json

    from genrekit.datasets import Track, select, write_manifest
    from genrekit.exceptions import DatasetError

    _, tracks = toy_dataset
    jazz = [Track(str(write_tone(tmp_path / "jazz" / f"{i}.wav", freq=900, seconds=2.0)), "jazz", f"jazz-{i}",
                  "toy", "test") for i in range(2)]
    write_manifest(select(tracks, "test") + jazz, tmp_path / "manifest.csv")
    args = ["evaluate", str(members[0][0]), "--data", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "r")]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, DatasetError) and "jazz" in str(result.exception)
    result = runner.invoke(app, [*args, "--known-labels-only"])
    assert result.exit_code == 0, result.output
    assert "left out 2 clip(s) with labels the model lacks: jazz" in result.output
    assert json.loads(next((tmp_path / "r").glob("*.json")).read_text())["n"] == 3


def test_evaluate_scores_data_without_splits_whole_and_says_what_the_model_learned_from(members, toy_dataset,
                                                                                        tmp_path):
    import json

    root, _ = toy_dataset
    model, out = str(members[0][0]), tmp_path / "r"
    for data, split, n, warning in ((f"folder:{root}", None, 18, "12 of these 18 clips were in the model's "
                                     "training data and 3 more in the data it was tuned on"),
                                    (str(root), "valid", 3, "0 of these 3 clips were in the model's training data "
                                     "and 3 more in the data it was tuned on"),
                                    (str(root), "all", 18, "12 of these 18"), (str(root), None, 3, None)):
        result = runner.invoke(app, ["evaluate", model, "--data", data, "--out", str(out),
                                     *(["--split", split] if split else [])])
        assert result.exit_code == 0, result.output
        whole = data.startswith("folder:")
        assert ("has no splits of its own: scoring all of it" in result.stdout) == whole
        scored = split or ("all" if whole else "test")
        report = json.loads((out / f"cnn-logmel.{scored}.json").read_text())
        assert report["n"] == n and f"({scored}), n={n}" in result.stdout
        assert (warning in result.stderr) if warning else "warning" not in result.stderr
        assert (report["overlap"] or "").startswith(warning or "")
    assert runner.invoke(app, ["evaluate", model, "--data", str(root), "--split", "every"]).exit_code != 0


def test_models_lists_trained_models_apart_and_an_architecture_is_not_a_model(tmp_path):
    shown = runner.invoke(app, ["models"], env={"COLUMNS": "200"}).output
    assert shown.index("Bundled model 'default'") < shown.index("Architectures (untrained")
    assert "{'" not in shown  # no raw dict
    result = runner.invoke(app, ["predict", str(write_tone(tmp_path / "a.wav", seconds=1.0)), "--model",
                                 "cnn-logmel"])
    assert result.exit_code != 0 and "an architecture, not a trained model; train one with `genrekit train " \
                                      "--architecture cnn-logmel" in str(result.exception)


def test_help_lists_commands_by_use_with_one_line_summaries_plain_types_and_examples():
    import typer

    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    names = [line.split()[1] for line in shown.split("Commands")[1].splitlines() if line.startswith("│ ")]
    assert names[:4] == ["predict", "tag", "serve", "evaluate"]
    group = typer.main.get_command(app)
    commands = [(name, command) for name, command in group.commands.items()]
    commands += [(f"{name} {sub}", c) for name, command in group.commands.items()
                 for sub, c in getattr(command, "commands", {}).items()]
    for name, command in commands:
        if hasattr(command, "commands"):
            continue
        summary = command.help.split("\n\n")[0]
        assert "\n" not in summary and len(summary) <= 100, (name, summary)
        assert "Example: genrekit " + name.split()[0] in command.help, name
        text = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"}).output
        assert not re.search(r"<(str|int|float|bool|path|list)", text, re.I), (name, text)  # <str>, <list[Path]>


def _run_main(monkeypatch, capsys, *args):
    """(exit code, stderr) of `genrekit ARGS` as the installed command runs it."""
    monkeypatch.setattr("sys.argv", ["genrekit", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
    except SystemExit as stop:
        return stop.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_outputs_that_are_folders_or_cannot_be_written_are_one_line(members, tmp_path, monkeypatch, capsys):
    clip = write_tone(tmp_path / "a.wav", seconds=1.0)
    (tmp_path / "pictures").mkdir()
    assert _run_main(monkeypatch, capsys, "show", clip, "-o", tmp_path / "pictures")[0] == 0
    assert (tmp_path / "pictures" / "a.png").read_bytes()[:4] == b"\x89PNG"  # a folder: the PNG goes in it
    for args, path, reason in ((["export", members[0][0], "--onnx", tmp_path / "pictures"], tmp_path / "pictures",
                                "is a folder, not a file to write"),
                               (["show", clip, "-o", clip / "out.png"], clip, "is a file, not a folder to write in")):
        code, err = _run_main(monkeypatch, capsys, *args)
        assert code == 2 and err == f"error: {path}: {reason}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "pictures"]  # no temporary file left


def test_negative_workers_are_refused(tmp_path, monkeypatch, capsys):
    code, err = _run_main(monkeypatch, capsys, "features", tmp_path, "--workers", "-3")
    assert code == 2 and "Invalid value for '--workers': Input should be greater than or equal to 0" in \
        " ".join(err.replace("│", " ").split()) and "Traceback" not in err


def test_predict_writes_nothing_outside_the_genrekit_cache(tmp_path):
    """numba's compiled functions go under the genrekit cache and onnxruntime keeps no telemetry id in HOME, as
    for a service user whose HOME cannot be written; bad headers are one line, not a traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    song = write_tone(tmp_path / "song.wav", seconds=4.0)
    garbage = tmp_path / "song.flac"
    garbage.write_bytes(np.random.default_rng(0).bytes(50_000))  # FFmpeg reads it at 0 Hz
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "ORT_DISABLE_TELEMETRY")}
    env.update(HOME=str(home), GENREKIT_CACHE=str(cache))
    genrekit_command = Path(sys.executable).with_name("genrekit")
    done = subprocess.run([str(genrekit_command), "predict", str(song), str(garbage)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # one of two failed
    assert f"error: {garbage}: not audio: its header gives a sample rate of 0 Hz" in done.stderr
    assert "Traceback" not in done.stderr and "song.wav" in done.stdout
    assert list(home.iterdir()) == []  # no ~/.cache/Microsoft, no ~/.cache/genrekit
    assert (cache / "onnx").is_dir()


def test_show_into_a_missing_folder_and_tag_of_an_empty_one_are_one_line_errors(members, tmp_path):
    song = write_tone(tmp_path / "song.wav", seconds=1.0)
    result = runner.invoke(app, ["show", str(song), "-o", str(tmp_path / "missing" / "dir")])
    assert "missing/dir: folder not found" in str(result.exception)  # one line, exit 2, through main()
    assert not (tmp_path / "missing").exists()  # no file called `dir`, no folder made
    (tmp_path / "pics").mkdir()
    assert runner.invoke(app, ["show", str(song), "-o", str(tmp_path / "pics")]).exit_code == 0
    assert (tmp_path / "pics" / "song.png").is_file()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["tag", str(tmp_path / "empty"), "--db", str(tmp_path / "lib.sqlite")])
    assert "empty: folder without audio files" in str(result.exception)  # an error (exit 2), as predict's
    result = runner.invoke(app, ["predict", str(song), "--model", str(members[0][0]), "--top", "50"])
    assert result.exit_code == 0 and "top 3" in result.output  # the toy model's three genres, not 50 columns


def test_progress_in_a_log_is_whole_lines_and_quiet_turns_it_off(members, tmp_path):
    import subprocess
    import sys

    songs = [str(write_tone(tmp_path / f"{i}.wav", freq=300 + 200 * i, seconds=2.0)) for i in range(3)]
    command = [str(Path(sys.executable).with_name("genrekit")), "predict", *songs, "--model", str(members[0][0])]
    logged = subprocess.run(command, capture_output=True, text=True, timeout=300)  # stderr: a pipe, as in CI
    assert logged.returncode == 0, logged.stderr
    assert "\r" not in logged.stderr
    progress = [line for line in logged.stderr.splitlines() if line.startswith("predicting")]
    assert 1 <= len(progress) <= 3 and "3/3" in progress[-1] and "file/s" in progress[-1], logged.stderr
    quiet = subprocess.run([command[0], "--quiet", *command[1:]], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == logged.stdout
