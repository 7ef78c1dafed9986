"""The default model's recipe: a linear probe fitted on clips' mean window features with label sets, put into a
model that predicts window by window, through the ensemble and ONNX paths, and made by `genrekit train-bundled`."""

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from genrekit.bundled import Features, fit_default, save_model
from genrekit.cache import FeatureCache
from genrekit.checkpoints import load_members
from genrekit.cli import app
from genrekit.datasets import select
from genrekit.ensemble import Ensemble
from genrekit.models import create_model
from genrekit.probe import fit_probe, set_linear_head
from genrekit.scoring import clip_log_probs
from genrekit.training import TrainConfig, train

from conftest import write_toy_dataset, write_tone

TWELVE = ["high", "low", "noisy", *(f"other{i}" for i in range(9))]


def test_a_probe_scored_window_by_window_gives_what_it_learned_on_clip_means():
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((n, 1756)) * 3 + 5 for n in (1, 4, 10)]
    mean, std = np.concatenate(clips).mean(0), np.concatenate(clips).std(0) + 1e-3
    means = np.stack([c.mean(0) for c in clips])
    masks = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=bool)
    w, b = fit_probe((means - mean) / std, masks, np.ones(3), l2=0.01)
    model = set_linear_head(create_model("backbone-musicnn", 3, layers="all", hidden=0).eval(), w, b, mean, std)
    with torch.no_grad():
        for clip, row in zip(clips, (means - mean) / std):
            windows = model.head(torch.from_numpy(clip).float()).log_softmax(-1).numpy()
            expected = torch.from_numpy(row @ w + b).log_softmax(-1).numpy()
            np.testing.assert_allclose(clip_log_probs(windows), expected, atol=1e-4)
    fitted = torch.from_numpy((means - mean) / std @ w + b).softmax(-1).numpy()
    assert (fitted * masks).sum(1).min() > 0.5  # it learned the sets: most mass on each clip's right answers
    assert fitted[1, 0] < 0.2


def test_a_twelve_label_probe_beside_a_cnn_exports_to_onnx_and_predicts_alike(tmp_path):
    pytest.importorskip("onnxruntime")
    from genrekit.export import export_onnx
    from genrekit.predict import load

    tracks = write_toy_dataset(tmp_path / "toy", per_class=4, seconds=4.0)  # windows of 3 s, as the default's
    train_tracks = select(tracks, "train")
    train_tracks[0] = train_tracks[0].replace(label=f"{train_tracks[0].label}|other3")  # a label set
    cache = FeatureCache(tmp_path / "cache")
    probe = fit_default(Features(train_tracks, TWELVE, cache, progress=False), l2=0.01)
    paths = [save_model(probe, TWELVE, tmp_path / "probe.pt", train_tracks),
             train(TrainConfig(model="cnn-waveform", epochs=1, window_seconds=3.0, batch_size=8, windows_per_clip=1,
                               model_kwargs={"channels": (4, 8)}), train_tracks, select(tracks, "valid"), tmp_path,
                   labels=TWELVE, cache=cache, workers=1, progress=False)]
    ensemble = Ensemble(load_members(paths), "weighted").fit(select(tracks, "valid"), calibrate=True, progress=False)
    torch_classifier = load(ensemble.save(tmp_path / "ensemble.pt"))
    onnx_classifier = load(export_onnx(tmp_path / "ensemble.pt", tmp_path / "ensemble.onnx"))
    assert onnx_classifier.labels == TWELVE
    for track in select(tracks, "test"):
        a, b = torch_classifier.predict(track.path), onnx_classifier.predict(track.path)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
        assert np.allclose(a.timeline, b.timeline, atol=1e-4)
    right = [load(paths[0]).predict(t.path).genre == t.label for t in select(tracks, "test")]
    assert sum(right) >= 2  # the probe alone tells the three toy genres apart


def _write_tiny_real_extra(root):
    """A real-extra layout of generated clips: two genres (low tones, noise) and a label set, two artists per
    genre, one of them in valid."""
    rng = np.random.default_rng(1)
    rows = []
    for genre, artists in (("classical", ("a", "b")), ("electronic", ("c", "d"))):
        for artist in artists:
            for i in range(3):
                path = root / genre / f"{artist}{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                if genre == "classical":
                    write_tone(path, freq=float(rng.uniform(200, 260)), seconds=4.0, amplitude=0.3)
                else:
                    import soundfile as sf

                    sf.write(path, (rng.standard_normal(4 * 22050) * 0.2).astype(np.float32), 22050)
                label = "electronic|pop" if genre == "electronic" and i == 0 else genre
                rows.append((path.relative_to(root), label, "valid" if artist in "bd" else "train", artist))
    with open(root / "tracks.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "genres", "split", "artist", "source"])
        writer.writerows([(*row, "emotify") for row in rows])
    return root


def test_train_bundled_writes_the_model_and_its_card_and_a_second_run_reuses_the_features(tmp_path, monkeypatch):
    root = _write_tiny_real_extra(tmp_path / "real-extra")
    out, cache = tmp_path / "bundled", tmp_path / "cache"
    args = ["train-bundled", "--real-extra", str(root), "--out", str(out), "--cache-dir", str(cache)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "default.json").read_text())
    assert len(card["labels"]) == 12 and "electronic" in card["labels"] and "rnb_soul" in card["labels"]
    assert card["training_data"]["train"]["real-extra:emotify"] == {"classical": 3, "electronic": 2, "electronic|pop": 1}
    held = card["held_out"]["real-extra:emotify"]
    assert held["n"] == 6 and held["n_single"] == 5 and held["accuracy"] >= 5 / 6  # tones against noise
    assert {"ece_before", "ece_after", "temperature"} <= set(card["calibration"])
    assert "x_realtime_torch" in card["speed"]
    from genrekit.predict import load

    model = load(out / "default.pt", backend="torch")
    assert model.predict(root / "classical" / "b0.wav").genre == "classical"
    embedded = sorted((cache / "embeddings").rglob("*.npy"))
    import genrekit.clips

    def no_embedding(*args, **kwargs):
        raise AssertionError("embedded again")

    monkeypatch.setattr(genrekit.clips, "_embed_all", no_embedding)
    again = CliRunner().invoke(app, args)  # resumes: every window's features come from the cache
    assert again.exit_code == 0, again.output
    assert sorted((cache / "embeddings").rglob("*.npy")) == embedded
    assert json.loads((out / "default.json").read_text())["held_out"] == card["held_out"]
