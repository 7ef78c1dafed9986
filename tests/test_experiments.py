"""The experiment runner: variants and instrumental / a-cappella tables on a tiny model."""

import json

import pytest
from typer.testing import CliRunner

from genrekit.cli import app
from genrekit.datasets import Track, load_dataset, select
from genrekit.exceptions import ParameterError
from genrekit.experiments import evaluate_variants, evaluate_versions, write_experiment
from genrekit.predict import load
from genrekit.datasets.songs import VersionClip

VARIANTS = ["speed-1.25x", "noise-20dB"]


def check_table(result, conditions):
    assert result["conditions"] == conditions
    reference = result["results"][conditions[0]]
    for name in conditions:
        metrics = result["results"][name]
        assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["macro_f1"] <= 1.0
        assert metrics["n"] == result["n_clips"]
        assert metrics["drop_accuracy"] == pytest.approx(reference["accuracy"] - metrics["accuracy"])
        assert metrics["drop_macro_f1"] == pytest.approx(reference["macro_f1"] - metrics["macro_f1"])
        for label, value in metrics["per_label_accuracy"].items():
            assert value is None or 0.0 <= value <= 1.0
            if value is not None:
                assert metrics["per_label_drop"][label] == pytest.approx(reference["per_label_accuracy"][label] - value)


def test_variants_table_json_markdown_png(members, toy_dataset, tmp_path):
    paths, _ = members
    root, _ = toy_dataset
    tracks = select(load_dataset(root), "test")
    broken = Track(str(tmp_path / "missing.wav"), "low", "x", "toy", "test")
    unknown = tracks[0].replace(label="polka")
    result = evaluate_variants(load(paths[0]), tracks + [broken, unknown], VARIANTS, progress=False)
    assert result["n_clips"] == len(tracks) == 3 and result["n_failed"] == 2
    assert {f["clip"] for f in result["failures"]} == {broken.key, unknown.key}
    check_table(result, ["original", *VARIANTS])
    assert [row["label"] for row in result["predictions"]] == [t.label for t in tracks]

    json_path, markdown, picture = write_experiment(result, tmp_path / "report", "variants", "Song variants")
    saved = json.loads(json_path.read_text())
    assert saved["title"] == "Song variants" and saved["results"]["noise-20dB"]["n"] == 3
    text = markdown.read_text()
    assert "| speed-1.25x | 3 |" in text and "## Accuracy per genre" in text and "missing.wav" in text
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(ParameterError, match="known"):
        evaluate_variants(load(paths[0]), tracks, ["reverse"], progress=False)


def test_variants_command_with_an_ensemble(members, toy_dataset, tmp_path):
    from genrekit.checkpoints import load_members
    from genrekit.ensemble import Ensemble

    paths, _ = members
    root, tracks = toy_dataset
    ensemble = Ensemble(load_members(paths), "equal")
    ensemble.fit(select(tracks, "valid"), progress=False)
    ensemble.save(tmp_path / "ensemble.pt")
    result = CliRunner().invoke(app, ["experiment", "variants", "--model", str(tmp_path / "ensemble.pt"),
                                      "--data", str(root), "--variants", ",".join(VARIANTS),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "variants.json").read_text())
    check_table(saved, ["original", *VARIANTS])
    assert saved["split"] == "test" and (tmp_path / "out" / "variants.png").is_file()
    bad = CliRunner().invoke(app, ["experiment", "variants", "--data", str(root), "--variants", "reverse"])
    assert bad.exit_code != 0 and "reverse" in str(bad.exception)


def test_versions_table_with_separation(members, toy_dataset, tmp_path):
    paths, _ = members
    _, tracks = toy_dataset
    test = select(tracks, "test")
    versions = []
    for i, track in enumerate(test):
        other = test[(i + 1) % len(test)].path
        for version, path in (("original", track.path), ("instrumental", track.path), ("a-cappella", other)):
            versions.append(VersionClip(song=f"s{i}", genre=track.label, group=track.group, split="test",
                                        version=version, path=path, start=0.0, end=2.0,
                                        how="named" if i == 0 else "heuristic", melody_track=1, melody_channel=1,
                                        melody_name=""))
    versions.append(VersionClip(song="lonely", genre="low", group="g", split="test", version="original",
                                path=test[0].path, start=0.0, end=2.0, how="named", melody_track=1,
                                melody_channel=1, melody_name=""))  # no other versions: left out
    conditions = ["original", "instrumental", "a-cappella", "background (approx.)", "foreground (approx.)"]
    result = evaluate_versions(load(paths[1]), versions, progress=False)
    check_table(result, conditions)
    assert result["n_clips"] == 3 and result["melody_found"] == {"named": 1, "heuristic": 2}
    assert result["approximate"] == conditions[3:]
    assert result["results"]["instrumental"]["accuracy"] == result["results"]["original"]["accuracy"]
    assert set(result["breakdown"]) == {"melody=heuristic", "melody=named"}
    _, markdown, _ = write_experiment(result, tmp_path, "versions", "Instrumental and a-cappella")
    text = markdown.read_text()
    assert "background (approx.) *" in text and "named in 1 song(s)" in text


def test_instrumental_acappella_command(members, tmp_path):
    import csv

    from genrekit.midi.render import DEFAULT_SOUNDFONT, fluidsynth_available
    from test_variants import band_song

    if not fluidsynth_available(DEFAULT_SOUNDFONT):
        pytest.skip(f"fluidsynth binary or soundfont {DEFAULT_SOUNDFONT} missing")
    paths, _ = members
    source = tmp_path / "midi"
    for genre, song, names in (("high", "aaaa", ("Piano", "Bass", "Drums", "Vocals")), ("low", "bbbb", ("",) * 4)):
        (source / genre).mkdir(parents=True)
        band_song(source / genre / f"{song}.mid", names=names)
    with open(source / "songs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "split", "genre", "duration_s"], ["high/aaaa.mid", "test", "high", "4.0"],
                                      ["low/bbbb.mid", "test", "low", "4.0"]])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", "instrumental-acappella", "--model", str(paths[0]),
                                      "--midi-source", str(source), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "instrumental-acappella.json").read_text())
    check_table(saved, ["original", "instrumental", "a-cappella", "background (approx.)", "foreground (approx.)"])
    assert saved["n_clips"] == 2 and saved["melody_found"] == {"named": 1, "heuristic": 1}
    assert (out / "instrumental-acappella.png").is_file() and (out / "versions" / "versions.csv").is_file()
