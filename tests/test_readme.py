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
