import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import genrekit.training as training
from genrekit.cache import FeatureCache
from genrekit.checkpoints import load_checkpoint
from genrekit.cli import app, main
from genrekit.clips import ClipSet
from genrekit.datasets import select
from genrekit.evaluation import classification_metrics
from genrekit.scoring import window_length
from genrekit.exceptions import GenrekitError, ParameterError
from genrekit.feature_params import FeatureParams
from genrekit.training import TrainConfig, train, validate

TINY = {"cnn-logmel": {"channels": (4, 8)}, "rnn-chroma": {"hidden": 8}, "cnn-waveform": {"channels": (4, 8)}}
LABELS = ["high", "low", "noisy"]


def _config(model="cnn-logmel", **kw):
    return TrainConfig(model=model, **{"window_seconds": 1.0, "batch_size": 8, "lr": 3e-3,
                                       "model_kwargs": TINY.get(model, {}), **kw})


@pytest.fixture
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.getbasetemp() / "feature-cache")


def test_one_epoch_reduces_the_training_loss(toy_dataset, cache):
    _, tracks = toy_dataset
    config = _config()
    torch.manual_seed(0)
    model = training.create_model(config.model, 3, **config.model_kwargs)
    clips = ClipSet.from_tracks(select(tracks, "train"), "logmel", LABELS, cache, window_seconds=1.0, workers=1,
                                progress=False)
    length = window_length("logmel", 1.0, cache.params)
    before = validate(model, clips, 1.0, LABELS)["loss"]
    optimizer = training._optimizer(config, model)
    def make_batch(indices, rng):
        x = torch.from_numpy(np.stack([clips.random_window(i, length, rng) for i in indices]))
        return x, torch.from_numpy(clips.targets[indices])

    training._train_epoch(model, clips, config, optimizer, training.set_loss, make_batch, np.random.default_rng(0))
    assert validate(model, clips, 1.0, LABELS)["loss"] < before


@pytest.mark.parametrize("model", sorted(TINY))
def test_training_writes_a_checkpoint_that_round_trips(toy_dataset, cache, tmp_path, model):
    _, tracks = toy_dataset
    path = train(_config(model, epochs=2), select(tracks, "train"), select(tracks, "valid"), tmp_path,
                 labels=LABELS, cache=cache, workers=1, progress=False)
    loaded, info = load_checkpoint(path)
    assert info["model"] == model and info["labels"] == LABELS and info["window_seconds"] == 1.0
    assert set(info["metrics"]) >= {"valid_accuracy", "best_epoch", "train_minutes", "parameters"}
    assert len(info["history"]) == 2 and (tmp_path / f"{model}.curves.png").is_file()
    assert not (tmp_path / f"{model}.state.pt").exists()
    clips = ClipSet.from_tracks(select(tracks, "test"), loaded.representation, LABELS, cache, window_seconds=1.0,
                                progress=False)
    again, _ = load_checkpoint(path)
    assert validate(loaded, clips, 1.0, LABELS) == validate(again, clips, 1.0, LABELS)


@pytest.mark.parametrize("settings", [{"lr_schedule": "constant"}, {"lr_schedule": "cosine"}, {"mixup": 0.4}])
def test_interrupted_training_resumes_to_the_same_result(toy_dataset, cache, tmp_path, monkeypatch, settings):
    _, tracks = toy_dataset
    args = (select(tracks, "train"), select(tracks, "valid"))
    config = _config(epochs=4, patience=10, **settings)
    reference = load_checkpoint(train(config, *args, tmp_path / "whole", labels=LABELS, cache=cache, workers=1,
                                      progress=False))[1]

    real_epoch, calls = training._train_epoch, []

    def crash_in_third_epoch(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies here; only what is on disk survives
        return real_epoch(*a, **kw)

    monkeypatch.setattr(training, "_train_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(config, *args, tmp_path / "broken", labels=LABELS, cache=cache, workers=1, progress=False)
    state = torch.load(tmp_path / "broken" / "cnn-logmel.state.pt", weights_only=False)
    assert state["epoch"] == 2 and not list((tmp_path / "broken").glob("*.tmp"))
    monkeypatch.setattr(training, "_train_epoch", real_epoch)
    resumed = load_checkpoint(train(config, *args, tmp_path / "broken", labels=LABELS, cache=cache, workers=1,
                                    progress=False))[1]
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    for got, expected in zip(resumed["history"], reference["history"]):
        assert got == pytest.approx(expected)


def test_with_nothing_held_out_every_epoch_runs_and_the_last_weights_are_kept(toy_dataset, cache, tmp_path,
                                                                               monkeypatch):
    _, tracks = toy_dataset
    real_epoch, after_each = training._train_epoch, []

    def remember_weights(net, *a, **kw):
        loss = real_epoch(net, *a, **kw)
        after_each.append({k: v.clone() for k, v in net.state_dict().items()})
        return loss

    monkeypatch.setattr(training, "_train_epoch", remember_weights)
    path = train(_config(epochs=3, patience=1), select(tracks, "train") + select(tracks, "valid"), [], tmp_path,
                 labels=LABELS, cache=cache, workers=1, progress=False)
    model, info = load_checkpoint(path)
    assert len(after_each) == 3 and info["metrics"]["best_epoch"] == 3 and info["metrics"]["valid_accuracy"] is None
    assert all("valid_loss" not in h for h in info["history"]) and (tmp_path / "cnn-logmel.curves.png").is_file()
    kept = model.state_dict()
    assert all(torch.equal(kept[name], after_each[-1][name]) for name in kept)
    assert not all(torch.equal(kept[name], after_each[0][name]) for name in kept)


def test_cosine_schedule_anneals_the_learning_rate_over_the_epochs(toy_dataset, cache, tmp_path, monkeypatch):
    import math

    _, tracks = toy_dataset
    real_epoch, rates = training._train_epoch, []

    def record_rate(model, clips, config, optimizer, *rest):
        rates.append(optimizer.param_groups[0]["lr"])
        return real_epoch(model, clips, config, optimizer, *rest)

    monkeypatch.setattr(training, "_train_epoch", record_rate)
    config = _config(epochs=4, patience=10, lr=0.01, lr_schedule="cosine")
    train(config, select(tracks, "train"), select(tracks, "valid"), tmp_path, labels=LABELS, cache=cache, workers=1,
          progress=False)
    assert rates == pytest.approx([0.01 * (1 + math.cos(math.pi * epoch / 4)) / 2 for epoch in range(4)])
    with pytest.raises(ParameterError, match="lr_schedule"):
        _config(lr_schedule="step")


def test_mixup_mixes_each_window_with_another_of_its_batch():
    """Window i is the constant i: a mixed window is w times itself plus 1 - w times the window `order` names."""
    x = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 5)
    mixed_x, weight, order = training.mixed(x, 0.4, np.random.default_rng(1))
    assert 0 < weight < 1 and sorted(order.tolist()) == list(range(6))
    expected = weight * torch.arange(6.0) + (1 - weight) * order.float()
    assert torch.allclose(mixed_x, expected[:, None].expand(6, 5), atol=1e-5)
    assert not torch.equal(mixed_x, x)  # some window was mixed with another
    with pytest.raises(ParameterError, match="mixup"):
        _config(mixup=-0.1)


def test_set_loss_is_cross_entropy_for_one_genre_and_minus_log_mass_for_a_set():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    one = torch.eye(3)[[0, 2, 1]]
    weights = torch.tensor([0.5, 1.0, 2.0])
    cross_entropy = torch.nn.functional.cross_entropy
    assert float(training.set_loss(logits, one)) == pytest.approx(float(cross_entropy(logits, one.argmax(1))))
    assert float(training.set_loss(logits, one, weights)) == pytest.approx(
        float(cross_entropy(logits, one.argmax(1), weight=weights)))
    sets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    probs = logits.softmax(1)
    expected = -torch.log(torch.stack([probs[0, :2].sum(), probs[1, 2], probs[2].sum()]))
    assert float(training.set_loss(logits, sets)) == pytest.approx(float(expected.mean()), abs=1e-6)
    # every answer right: nothing to learn; a set's loss is below each of its members' alone
    assert float(expected[2]) == pytest.approx(0.0, abs=1e-6)
    assert training.set_loss(logits[:1], sets[:1]) < training.set_loss(logits[:1], one[:1])
    # a set weighs as the mean of its genres' class weights
    w = torch.tensor([0.75, 2.0, 3.5 / 3])
    assert float(training.set_loss(logits, sets, weights)) == pytest.approx(float((w * expected).sum() / w.sum()),
                                                                             abs=1e-6)


def test_metrics_by_the_label_set_rule():
    masks = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=bool)
    m = classification_metrics(masks, [0, 1, 0, 2], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75) and m["n"] == 4 and m["n_single"] == 2
    assert m["per_label_accuracy"] == {"a": 1.0, "b": None, "c": 0.0}  # clips with one genre only
    assert m["confusion"] == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_metrics_on_a_hand_checked_example():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_label_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_clip_score_is_the_mean_of_window_log_probabilities():
    class Fixed(torch.nn.Module):
        n_classes = 2

        def forward(self, x):  # window i of the clip says p(class 0) = [0.9, 0.2, 0.2][i]
            p0 = torch.tensor([0.9, 0.2, 0.2])[x[:, 0].long() // 10]
            return torch.log(torch.stack([p0, 1 - p0], dim=1))

    params = FeatureParams(sr=10)
    clips = ClipSet([np.arange(35, dtype=np.float32)], np.array([[True, False]]), ["clip"], "waveform", [35], params)
    assert clips.windows(0, 1.0)[:, 0].tolist() == [0, 10, 20]  # whole windows only: the 5-sample tail is left out
    metrics = validate(Fixed(), clips, 1.0, ["a", "b"])
    mean = np.log([[0.9, 0.1], [0.2, 0.8], [0.2, 0.8]]).mean(0)
    expected = mean - np.logaddexp.reduce(mean)
    assert metrics["loss"] == pytest.approx(-expected[0], abs=1e-6)
    assert metrics["accuracy"] == 0.0  # the average of probabilities (0.43 vs 0.57) agrees here; log-mean decides


def test_cli_trains_on_train_only_and_evaluates(toy_dataset, tmp_path, monkeypatch):
    root, tracks = toy_dataset
    seen = []
    real = ClipSet.from_tracks.__func__

    def spy(cls, tracks_, *a, **kw):
        seen.append(list(tracks_))
        return real(cls, tracks_, *a, **kw)

    monkeypatch.setattr(ClipSet, "from_tracks", classmethod(spy))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--architecture", "cnn-chroma", "--data", str(root), "--out", str(tmp_path),
                                 "--epochs", "2", "--window-seconds", "1", "--batch-size", "8",
                                 "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    trained_on = {t.key for t in seen[0]}
    test_tracks = select(tracks, "test")
    assert {t.split for t in seen[0]} == {"train"} and {t.split for t in seen[1]} == {"valid"}
    assert not trained_on & {t.key for t in test_tracks}
    assert not {t.group for t in seen[0]} & {t.group for t in test_tracks}

    result = runner.invoke(app, ["evaluate", str(tmp_path / "cnn-chroma.pt"), "--data", str(root),
                                 "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "cnn-chroma.test.json").read_text())
    assert report["n"] == 3 and set(report["per_label_accuracy"]) == set(LABELS)
    for suffix in ("md", "confusion.png", "per_genre.png"):
        assert (tmp_path / "reports" / f"cnn-chroma.test.{suffix}").is_file()


def test_records_written_before_a_new_setting_still_match_its_default():
    record = {"config": dataclasses.asdict(_config()), "labels": LABELS, "feature_params": {}}
    old = {**record, "config": {k: v for k, v in record["config"].items() if k != "augment"}}
    assert training._same_record(old, record)
    augmented = {**record, "config": {**record["config"], "augment": True}}
    assert not training._same_record(old, augmented) and not training._same_record(None, record)


class _Planted:
    """Unpickled, it would create the file `marker` (as a planted state file could run any code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_planted_or_corrupt_resume_state_runs_no_code_and_is_one_error(toy_dataset, cache, tmp_path):
    _, tracks = toy_dataset
    config, marker = _config(epochs=1), tmp_path / "code-ran"
    state = tmp_path / "out" / "cnn-logmel.state.pt"
    state.parent.mkdir()
    for content in (lambda: torch.save({"record": _Planted(marker), "epoch": 0}, state),
                    lambda: state.write_bytes(b"not a state file")):
        content()
        with pytest.raises(GenrekitError, match=r"cnn-logmel.state.pt: not a genrekit training state \(delete it"):
            train(config, select(tracks, "train"), select(tracks, "valid"), tmp_path / "out", labels=LABELS,
                  cache=cache, workers=1, progress=False)
        assert not marker.exists()


@pytest.mark.parametrize("option, value, message", [
    ("--patience", "0", "patience must be at least 1, got 0"), ("--lr", "-1", "lr must be a positive number, got -1.0"),
    ("--lr", "nan", "lr must be a positive number, got nan"),
    ("--dropout", "1.5", "dropout must be at least 0 and below 1, got 1.5"),
    ("--window-seconds", "0.01", "window_seconds must be at least 0.5 s, got 0.01"),
    ("--teacher-weight", "1.5", "teacher_weight must be between 0 and 1, got 1.5")])
def test_cli_train_refuses_bad_settings_in_one_line_before_any_work(toy_dataset, tmp_path, monkeypatch, capsys,
                                                                     option, value, message):
    monkeypatch.setattr(ClipSet, "from_tracks", lambda *a, **kw: pytest.fail("features were computed"))
    monkeypatch.setattr("sys.argv", ["genrekit", "train", "--architecture", "cnn-chroma", "--data", str(toy_dataset[0]),
                                     "--out", str(tmp_path), option, value])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2 and capsys.readouterr().err == f"error: {message}\n"


def test_cli_train_refuses_a_window_longer_than_every_clip(toy_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["genrekit", "train", "--architecture", "cnn-chroma", "--data", str(toy_dataset[0]),
                                     "--out", str(tmp_path), "--window-seconds", "100", "--workers", "1",
                                     "--cache-dir", str(tmp_path / "cache")])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == \
        "error: the 100 s window is longer than every training clip (the longest is 2.0 s): choose a shorter window"
    assert not list(tmp_path.glob("*.pt")) and not (tmp_path / "cache").exists()  # before any feature work


def test_a_model_starts_from_the_weights_a_checkpoint_shares_with_it(members, toy_dataset, tmp_path):
    from genrekit.checkpoints import load_members
    from genrekit.ensemble import Ensemble
    from genrekit.models import create_model

    (cnn, rnn), _ = members
    trained = load_checkpoint(cnn)[0].state_dict()
    wider = create_model("cnn-logmel", 3, channels=(4, 8, 12))  # its first two blocks have the checkpoint's shapes
    training.start_from(wider, cnn)
    ours = wider.state_dict()
    assert all(torch.equal(ours[name], trained[name]) for name in trained if not name.startswith("head."))
    assert ours["head.fc.weight"].shape != trained["head.fc.weight"].shape  # left as it was made
    with pytest.raises(ParameterError, match="no weights in common"):
        training.start_from(create_model("rnn-waveform", 3, hidden=8), cnn)
    both = Ensemble(load_members([cnn, rnn]), "equal").fit(select(toy_dataset[1], "valid"), progress=False)
    both = both.save(tmp_path / "both.pt")
    with pytest.raises(ParameterError, match="an ensemble of 2 members"):
        training.start_from(wider, both)
