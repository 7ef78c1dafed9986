"""What the README claims about the bundled models holds: its Python and API examples' output, the models' figures."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

import genrekit
from genrekit.examples import EXAMPLES
from genrekit.midi.render import fluidsynth_available, render_window, write_wav

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
WEIGHTS = Path(genrekit.__file__).resolve().parent / "weights"


def python_example():
    return re.search(r"```python\n(.*?)```", README, re.S).group(1)


def test_the_python_example_shows_real_output(tmp_path):
    if not fluidsynth_available():
        pytest.skip("FluidSynth is needed to render the example song (scripts/system_deps.sh)")
    example = python_example()
    song = tmp_path / "out" / "demo" / "example-rock.wav"
    song.parent.mkdir(parents=True)
    write_wav(song, render_window(EXAMPLES["example-rock"](), 0.0, 20.0))  # what `make demo` writes there
    shown = {call: ast.literal_eval(output) for call, output in
             re.findall(r"^(.*?\.top\(\d\))\s+# (\[.*\])$", example, re.M)}
    assert len(shown) == 2, example
    result = genrekit.load().predict(song)
    actual = {'result.top(3)': result.top(3),
              'genrekit.load("fast").predict("out/demo/example-rock.wav").top(2)':
                  genrekit.load("fast").predict(song).top(2)}
    assert set(shown) == set(actual)
    for call, ranked in actual.items():
        assert [genre for genre, _ in ranked] == [genre for genre, _ in shown[call]], call
        assert np.allclose([p for _, p in ranked], [p for _, p in shown[call]], atol=1e-4), call
    assert f"# {np.array_repr(result.times)}:" in example
    for genre, p in result.top(3):  # the API example shows the same song
        assert f'{{"genre":"{genre}","probability":{round(p, 4)}}}' in README, genre
    assert f"shape {result.timeline.shape}" in example


def test_the_readme_gives_every_held_out_figure_of_the_model_cards():
    for card in sorted(WEIGHTS.glob("*.json")):
        info = json.loads(card.read_text())
        for name, result in info["held_out"].items():
            assert f"{result['accuracy']:.3f}" in README, (card.name, name)


def test_the_readme_is_a_users_readme_and_the_details_live_with_the_benchmarks():
    assert len(README.splitlines()) <= 250
    details = (Path(__file__).resolve().parents[1] / "benchmarks" / "README.md").read_text()
    assert "benchmarks/real_music.py" in details and "benchmarks/inference.py" in details


def test_every_command_and_option_the_readme_table_names_exists():
    import typer

    from genrekit.cli import app

    group = typer.main.get_command(app)
    rows = [line for line in README.splitlines() if line.startswith("| `genrekit ")]
    assert len(rows) >= 10
    for row in rows:
        usage = row.split("`")[1].split()
        command = group.commands[usage[1]]
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for option in re.findall(r"(--[a-z-]+)", row.split("|")[1]):
            assert option in known | {"--help"}, (usage[1], option)


def test_the_readme_quotes_the_bundled_models_version_and_the_apis_fields(tmp_path):
    from fastapi.testclient import TestClient

    from conftest import write_tone
    from genrekit.server import create_app

    version = json.loads((WEIGHTS / "default.json").read_text())["version"]
    assert f"version {version}" in README and f'"model_version":"{version}"' in README
    example = re.search(r"curl -F .*?\n(\{.*?)\n```", README, re.S).group(1)
    shown = list(dict.fromkeys(key for key in re.findall(r'\{?"(\w+)":', example) if key not in (
        "probability", "start", "end", "blues", "rock")))
    with TestClient(create_app()) as client:
        answer = client.post("/api/predict?top=3&timeline=true", files={
            "file": ("song.wav", write_tone(tmp_path / "song.wav", seconds=4.0).read_bytes())}).json()
    assert shown == list(answer), (shown, list(answer))
