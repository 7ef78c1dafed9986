"""One loudness for every window: the same music gets the same genre at any level, and no size of sample
(huge, tiny) gives NaN."""

import json

import numpy as np
import pytest
import torch

import genrekit
from genrekit.examples import example_clip
from genrekit.exceptions import AudioError
from genrekit.models import create_model
from genrekit.models.musicnn import LEVEL_DBFS, MAX_GAIN_DB, normalize_level


def _rms_dbfs(y):
    return 20 * torch.log10(y.square().mean(-1).sqrt())


def test_normalize_level_brings_every_window_to_one_level_with_bounded_gain():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.standard_normal((3, 4000)).astype(np.float32)) * torch.tensor([[0.3], [0.1], [0.02]])  # -10 to -34 dBFS
    out = normalize_level(y)
    assert torch.allclose(_rms_dbfs(out), torch.full((3,), LEVEL_DBFS), atol=1e-3)
    for gain_db in range(0, -41, -10):  # the same windows 0 to 40 dB quieter
        assert torch.allclose(normalize_level(y * 10 ** (gain_db / 20)), out, rtol=1e-4, atol=1e-6)
    # below -80 dBFS the gain stops at MAX_GAIN_DB: a near-silent fade stays quiet
    quiet = y[:1] / y[:1].square().mean().sqrt() * 1e-6  # -120 dBFS
    assert _rms_dbfs(normalize_level(quiet)).item() == pytest.approx(-120 + MAX_GAIN_DB, abs=1e-2)
    # any finite size: no overflow, no NaN; silence stays silence
    for scale in (1e30, 1e-30, 3e38):
        scaled = normalize_level(y[:1] / y[:1].abs().max() * scale)
        assert torch.isfinite(scaled).all()
    assert torch.allclose(normalize_level(y[:1] * 1e30), out[:1], rtol=1e-4)
    assert torch.equal(normalize_level(torch.zeros(1, 100)), torch.zeros(1, 100))


def test_a_musicnn_model_gives_the_same_probabilities_from_0_to_minus_40_db():
    torch.manual_seed(0)
    model = create_model("backbone-musicnn", 4, layers="all").eval()
    y = torch.from_numpy(example_clip(3.0)[None])
    with torch.no_grad():
        reference = model(y).softmax(-1)
        for gain_db in (-10, -20, -30, -40):
            assert torch.allclose(model(y * 10 ** (gain_db / 20)).softmax(-1), reference, atol=1e-4)
        unnormalised = create_model("backbone-musicnn", 4, layers="all", level=False).eval()
        unnormalised.load_state_dict(model.state_dict())
        assert not torch.allclose(unnormalised(y * 0.01).softmax(-1), unnormalised(y).softmax(-1), atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_bundled_model_names_the_same_genre_at_any_level(backend):
    classifier = genrekit.load("default", backend=backend)
    y, sr = example_clip(12.0), 22050
    reference = classifier.predict(y, sr=sr)
    for gain_db in range(-10, -41, -10):
        result = classifier.predict(y * 10 ** (gain_db / 20), sr=sr)
        assert result.genre == reference.genre
        np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=2e-3)
    huge = classifier.predict(y / np.abs(y).max() * 1e30, sr=sr)  # scaled before the model: the same genre
    assert huge.genre == reference.genre and np.isfinite(huge.probabilities).all()
    json.loads(json.dumps(huge.to_dict()), parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    for bad in (np.nan, np.inf):
        with pytest.raises(AudioError, match="NaN or infinity"):
            classifier.predict(np.where(np.arange(len(y)) == 100, bad, y).astype(np.float32), sr=sr)
    with pytest.raises(AudioError, match="silent"):
        classifier.predict(y * 1e-30, sr=sr)


def test_integer_arrays_are_scaled_as_soundfile_reads_them(tmp_path):
    import soundfile as sf

    classifier = genrekit.load("default", backend="torch")
    y = example_clip(6.0)
    for subtype, dtype in (("PCM_16", "int16"), ("PCM_32", "int32"), ("PCM_U8", "uint8")):
        path = tmp_path / f"clip-{subtype}.wav"
        sf.write(path, y * 0.5, 22050, subtype=subtype)
        ints, sr = sf.read(path, dtype=dtype if dtype != "uint8" else "int16")
        if dtype == "uint8":  # soundfile reads 8-bit WAV as int16; the file holds unsigned bytes
            ints = (ints // 256 + 128).astype(np.uint8)
        floats = sf.read(path, dtype="float32")[0]
        np.testing.assert_allclose(classifier.predict(ints, sr=sr).probabilities,
                                   classifier.predict(floats, sr=sr).probabilities, atol=1e-4)
    stereo = np.stack([y, y], 1)
    np.testing.assert_allclose(classifier.predict(stereo, sr=22050).probabilities,
                               classifier.predict(stereo.T.astype(np.float64), sr=22050).probabilities, atol=1e-5)
    for bad, match in ((y.astype(np.complex64), "complex64"), (y.astype(bool), "bool"),
                       (np.zeros((2, 3, 4), np.float32), r"\(2, 3, 4\)")):
        with pytest.raises(genrekit.exceptions.ParameterError, match=match):
            classifier.predict(bad, sr=22050)


def _strict_json(text):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))


def test_no_output_carries_nan_or_infinity_for_huge_tiny_or_broken_float_files(tmp_path):
    """Float files with samples of 1e30 (scaled), 1e-30 (silent) and NaN (refused) through predict's JSON and
    CSV, tag's database and exports and the server: every JSON parses strictly, no CSV cell is nan or inf."""
    import csv
    import io
    import sqlite3

    import httpx
    import soundfile as sf
    from typer.testing import CliRunner

    from conftest import live_server
    from genrekit.cli import app
    from genrekit.server import create_app

    music = tmp_path / "music"
    music.mkdir()
    y = example_clip(4.0)
    for name, samples in (("huge.wav", y / np.abs(y).max() * 1e30), ("tiny.wav", y * 1e-30), ("plain.wav", y),
                          ("nan.wav", np.where(np.arange(len(y)) == 9, np.nan, y))):
        sf.write(music / name, samples.astype(np.float32), 22050, subtype="FLOAT")
    files = sorted(str(p) for p in music.iterdir())
    runner = CliRunner()
    result = runner.invoke(app, ["predict", *files, "--format", "json", "--timeline", "--timeline-dir",
                                 str(tmp_path / "timelines")])
    rows = _strict_json(result.stdout)
    by_name = {row["source"].rsplit("/", 1)[-1]: row for row in rows}
    assert by_name["huge.wav"]["genre"] == by_name["plain.wav"]["genre"]
    assert "silent" in by_name["tiny.wav"]["error"] and "NaN" in by_name["nan.wav"]["error"]
    result = runner.invoke(app, ["predict", *files, "--format", "csv"])
    cells = [cell.lower() for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    assert not any(cell.endswith(("nan", "inf")) for cell in cells)
    db = tmp_path / "lib.sqlite"
    runner.invoke(app, ["tag", str(music), "--db", str(db), "--workers", "1", "--export", "json"])
    for (probabilities,) in sqlite3.connect(db).execute("SELECT probabilities FROM tracks WHERE probabilities "
                                                        "IS NOT NULL"):
        assert all(0 <= p <= 1 for p in _strict_json(probabilities).values())
    assert len(_strict_json((tmp_path / "lib.json").read_text())) == 4
    with live_server(create_app()) as (host, port), httpx.Client(base_url=f"http://{host}:{port}") as http:
        for name in ("huge.wav", "nan.wav"):
            answer = http.post("/api/predict?timeline=true", files={"file": (name, (music / name).read_bytes())})
            assert answer.status_code == (200 if name == "huge.wav" else 422)
            _strict_json(answer.text)
