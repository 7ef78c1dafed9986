import numpy as np
import pytest
import torch

from genrekit.datasets import select
from genrekit.checkpoints import load_members, load_scorer
from genrekit.combiners import EqualAverage, WeightedAverage
from genrekit.stacking import GatedEnsemble, Stacking
from genrekit.ensemble import Ensemble
from genrekit.evaluation import clip_log_probs
from genrekit.exceptions import ParameterError

LABELS = ["high", "low", "noisy"]


def _probs(seed=0, n=60, members=3, classes=3):
    """Members of different quality: member k is right with probability 0.9 - 0.25 k."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    probs = np.full((members, n, classes), 0.1 / (classes - 1))
    for k in range(members):
        right = rng.random(n) < 0.9 - 0.25 * k
        guess = np.where(right, y, (y + 1) % classes)
        probs[k, np.arange(n), guess] = 0.9
    return probs, y


def test_weighted_average_weights_sum_to_one_and_favour_the_best_member():
    probs, y = _probs()
    weights = WeightedAverage().fit(probs, y).weights_
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert np.argmax(weights) == 0
    assert EqualAverage().fit(probs, y).weights_.tolist() == pytest.approx([1 / 3] * 3)


def test_stacking_and_gating_output_distributions():
    probs, y = _probs()
    stats = np.random.default_rng(1).standard_normal((probs.shape[1], 5)).astype(np.float32)
    for combiner in (Stacking(), GatedEnsemble(epochs=50)):
        out = combiner.fit(probs, y, stats).predict_proba(probs, stats)
        assert out.shape == (probs.shape[1], 3) and np.allclose(out.sum(1), 1, atol=1e-5)
    gates = GatedEnsemble(epochs=50).fit(probs, y, stats).gate_values(stats)
    assert gates.shape == (probs.shape[1], 3) and np.allclose(gates.sum(1), 1, atol=1e-5) and (gates > 0).all()


def test_gate_learns_which_member_to_trust_from_the_input():
    probs, y = _probs(n=200, members=2)
    # member 1 is perfect whenever stat > 0; member 0 whenever stat <= 0
    stat = np.random.default_rng(2).standard_normal((200, 1)).astype(np.float32)
    for k, mask in ((0, stat[:, 0] <= 0), (1, stat[:, 0] > 0)):
        probs[k, mask] = np.eye(3)[y[mask]] * 0.98 + 0.01
        probs[k, ~mask] = np.eye(3)[(y[~mask] + 1) % 3] * 0.98 + 0.01
    gated = GatedEnsemble(epochs=300).fit(probs, y, stat)
    assert (gated.predict_proba(probs, stat).argmax(1) == y).mean() > 0.95
    gates = gated.gate_values(stat)
    assert gates[stat[:, 0] > 1, 1].mean() > 0.8 and gates[stat[:, 0] < -1, 0].mean() > 0.8


def test_ensembles_fit_on_validation_only(toy_dataset, members, monkeypatch):
    _, tracks = toy_dataset
    paths, _ = members
    with pytest.raises(ParameterError, match="validation tracks only"):
        Ensemble(load_members(paths), "stacking").fit(select(tracks, "test"), progress=False)
    seen = []
    real = Stacking.fit
    monkeypatch.setattr(Stacking, "fit", lambda self, p, y, s=None: seen.append(y) or real(self, p, y, s))
    Ensemble(load_members(paths), "stacking").fit(select(tracks, "valid"), progress=False)
    valid_targets = sorted(LABELS.index(t.label) for t in select(tracks, "valid"))
    assert sorted(seen[0].tolist()) == valid_targets  # the labels stacking saw are the validation labels


@pytest.mark.parametrize("kind", ["equal", "weighted", "stacking", "gating"])
def test_ensemble_file_round_trip_predicts_the_same(toy_dataset, members, tmp_path, kind):
    _, tracks = toy_dataset
    paths, _ = members
    ensemble = Ensemble(load_members(paths), kind).fit(select(tracks, "valid"), progress=False)
    before, targets = clip_log_probs(ensemble.scorer, select(tracks, "test"), progress=False)
    loaded = load_scorer(ensemble.save(tmp_path / f"{kind}.ens"))
    after, _ = clip_log_probs(loaded, select(tracks, "test"), progress=False)
    assert loaded.kind == kind and loaded.labels == LABELS and loaded.member_names == ["cnn-logmel", "rnn-chroma"]
    assert np.allclose(before, after, atol=1e-5) and np.allclose(np.exp(after).sum(1), 1, atol=1e-4)
    assert len(targets) == 3


def test_members_must_share_labels(members, tmp_path):
    paths, _ = members
    other = torch.load(paths[0], weights_only=True)
    other["labels"] = ["a", "b", "c"]
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(ParameterError, match="has labels"):
        Ensemble(load_members([paths[0], tmp_path / "other.pt"]))


def test_cli_ensemble_then_evaluate(toy_dataset, members, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app

    root, _ = toy_dataset
    paths, _ = members
    runner = CliRunner()
    args = ["ensemble", "--data", str(root), "--kind", "weighted", "--out", str(tmp_path / "ens.pt")]
    for path in paths:
        args += ["--members", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cnn-logmel: weight" in result.output and (tmp_path / "ens.pt").is_file()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "ens.pt"), "--data", str(root), "--out",
                                 str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "ens.test.json").is_file() and "accuracy" in result.output


def test_pruning_drops_unweighted_members_and_keeps_predictions(toy_dataset, members):
    _, tracks = toy_dataset
    paths, _ = members
    ensemble = Ensemble(load_members(paths), "weighted").fit(select(tracks, "valid"), progress=False)
    ensemble.combiner.weights_ = np.array([1.0, 0.0])
    before, _ = clip_log_probs(ensemble.scorer, select(tracks, "test"), progress=False)
    ensemble.prune()
    assert [m.name for m in ensemble.members] == ["cnn-logmel"] and ensemble.combiner.weights_.tolist() == [1.0]
    after, _ = clip_log_probs(ensemble.scorer, select(tracks, "test"), progress=False)
    assert np.allclose(before, after, atol=1e-6)
    with pytest.raises(ParameterError, match="only averaging"):
        Ensemble(load_members(paths), "stacking").prune()


def test_temperature_scaling_calibrates_overconfident_probabilities():
    from genrekit.combiners import fit_temperature, temper
    from genrekit.evaluation import expected_calibration_error

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 2000)
    right = rng.random(2000) < 0.6  # 60 % right, but always 97 % sure
    guess = np.where(right, y, (y + rng.integers(1, 4, 2000)) % 4)
    probs = np.full((2000, 4), 0.01)
    probs[np.arange(2000), guess] = 0.97
    temperature = fit_temperature(probs, y)
    calibrated = temper(probs, temperature)
    assert temperature > 1.5 and np.allclose(calibrated.sum(1), 1) and (calibrated.argmax(1) == guess).all()
    before, after = expected_calibration_error(probs, y), expected_calibration_error(calibrated, y)
    assert before > 0.3 and after < 0.05
    assert calibrated.max(1).mean() == pytest.approx(0.6, abs=0.05)


def test_temperature_near_one_is_fitted_on_float32_probabilities():
    """A model slightly under-confident (best temperature a little below 1), as float32 clip probabilities:
    the fitted temperature is the grid's best, not left at 1."""
    from genrekit.combiners import _nll, fit_temperature, softmax, temper

    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 500)
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), y] += 1.5
    probs = softmax(logits * 1.4).astype(np.float32)
    grid = np.linspace(0.5, 1.5, 1001)
    best = grid[np.argmin([_nll(temper(probs, t), y) for t in grid])]
    temperature = fit_temperature(probs, y)
    assert 0.9 < best < 0.98 and temperature == pytest.approx(best, abs=0.005)


def test_calibrated_ensemble_round_trips_its_temperature(toy_dataset, members, tmp_path):
    _, tracks = toy_dataset
    paths, _ = members
    ensemble = Ensemble(load_members(paths), "weighted").fit(select(tracks, "valid"), calibrate=True, progress=False)
    assert ensemble.temperature != 1.0
    before, _ = clip_log_probs(ensemble.scorer, select(tracks, "test"), progress=False)
    loaded = load_scorer(ensemble.save(tmp_path / "calibrated.pt"))
    after, _ = clip_log_probs(loaded, select(tracks, "test"), progress=False)
    assert loaded.temperature == pytest.approx(ensemble.temperature) and np.allclose(before, after, atol=1e-5)


def test_numpy_softmax_and_clip_scores_match_scipy():
    """genrekit's softmax and log-softmax (numpy, so that predicting needs no scipy) against scipy's."""
    from scipy.special import log_softmax, softmax as scipy_softmax

    from genrekit.combiners import softmax
    from genrekit.scoring import clip_log_probs

    x = np.random.default_rng(0).normal(scale=30.0, size=(3, 7, 10))
    np.testing.assert_allclose(softmax(x), scipy_softmax(x, axis=-1), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(clip_log_probs(x), log_softmax(x.mean(axis=-2), axis=-1), rtol=1e-9, atol=1e-12)

