"""Distillation: a student learns its teacher's window probabilities (genrekit.distillation via train)."""

import numpy as np
import pytest

from genrekit.augment import Augmentation
from genrekit.clips import ClipSet
from genrekit.datasets import select
from genrekit.distillation import Teacher, distilled_clips
from genrekit.evaluation import clip_log_probs
from genrekit.exceptions import ParameterError
from genrekit.checkpoints import load_members, load_scorer
from genrekit.ensemble import Ensemble
from genrekit.training import TrainConfig, train

LABELS = ["high", "low", "noisy"]
SWAP = {"high": "low", "low": "high", "noisy": "noisy"}


def _config(**kw):
    return TrainConfig(model="cnn-logmel", **{"window_seconds": 1.0, "batch_size": 8, "lr": 3e-3, "epochs": 8,
                                              "patience": 8, "views": 3, "windows_per_clip": 12,
                                              "model_kwargs": {"channels": (4, 8)}, **kw})


@pytest.fixture(scope="module")
def swapped_teacher(toy_dataset, tmp_path_factory):
    """A tiny model that learnt the toy clips with `low` and `high` swapped, and its feature cache."""
    from genrekit.cache import FeatureCache

    _, tracks = toy_dataset
    cache = FeatureCache(tmp_path_factory.getbasetemp() / "feature-cache")
    swapped = [t.replace(label=SWAP[t.label]) for t in tracks]
    folder = tmp_path_factory.mktemp("teacher")
    path = train(_config(), select(swapped, "train"), select(swapped, "valid"), folder, labels=LABELS, cache=cache,
                 workers=1, progress=False)
    teacher = Ensemble(load_members([path]), "weighted").fit(select(swapped, "valid"), progress=False)
    teacher.temperature = 0.2  # a tiny model is unsure: sharpened, its probabilities are a clear target
    return teacher.save(folder / "teacher.pt"), cache


def _predicted(path, tracks):
    scorer = load_scorer(path)
    log_probs, _ = clip_log_probs(scorer, tracks, progress=False)
    return [scorer.labels[i] for i in log_probs.argmax(1)]


def test_a_student_follows_its_teacher_and_without_one_the_labels(toy_dataset, swapped_teacher, tmp_path):
    _, tracks = toy_dataset
    teacher, cache = swapped_teacher
    tones = [t for t in tracks if t.label != "noisy"]
    swapped = [SWAP[t.label] for t in tones]
    assert np.mean([p == e for p, e in zip(_predicted(teacher, tones), swapped)]) >= 0.75  # it learnt the swap
    # trained on the true labels; early-stopped on what it is meant to learn (the teacher's swap, or the labels)
    for weight, valid, expected in ((1.0, SWAP, swapped), (0.0, {k: k for k in SWAP}, [t.label for t in tones])):
        student = train(_config(teacher=str(teacher), teacher_weight=weight), select(tracks, "train"),
                        [t.replace(label=valid[t.label]) for t in select(tracks, "valid")], tmp_path / str(weight),
                        labels=LABELS, cache=cache, workers=1, progress=False)
        agreement = np.mean([p == e for p, e in zip(_predicted(student, tones), expected)])
        assert agreement >= 0.75, (weight, agreement)


def test_targets_mix_the_teachers_probabilities_of_the_same_views_with_the_label(toy_dataset, swapped_teacher):
    _, tracks = toy_dataset
    path, cache = swapped_teacher
    teacher = Teacher(path)
    clips = ClipSet.from_tracks(select(tracks, "train"), "waveform", LABELS, cache, window_seconds=1.0, workers=1,
                                progress=False)
    distilled = distilled_clips(clips, teacher, "logmel", 1.0, augment=True, views=3, teacher_weight=0.25, seed=7,
                                cache_root=cache.root, progress=False)
    assert len(distilled) == len(clips) and distilled.inputs[0].shape == (3, 128, 44)
    # the views are the augmented windows the seed gives, scored by the teacher
    rng = np.random.default_rng([7, 0])
    views = np.stack([Augmentation().window(clips.arrays[0], 22050, 22050, rng) for _ in range(3)])
    import torch

    expected = teacher.log_probs(torch.from_numpy(views)).numpy()
    np.testing.assert_allclose(distilled.teacher_log_probs[0], expected, atol=1e-5)
    x, y = distilled.batch(np.array([0, 0, 1]), np.random.default_rng(0))
    assert x.shape == (3, 128, 44)
    np.testing.assert_allclose(y.sum(1).numpy(), 1.0, atol=1e-5)
    label = clips.targets[0].astype(float)  # one genre: its mask is its one-hot label
    candidates = [0.25 * np.exp(row) + 0.75 * label for row in expected]
    assert any(np.allclose(y[0].numpy(), c, atol=1e-5) for c in candidates)


def test_a_teacher_with_other_labels_or_windows_is_refused(toy_dataset, swapped_teacher, tmp_path):
    _, tracks = toy_dataset
    teacher, cache = swapped_teacher
    for config, labels in ((_config(teacher=str(teacher)), ["high", "low", "noisy", "other"]),
                           (_config(teacher=str(teacher), window_seconds=0.5), LABELS)):
        with pytest.raises(ParameterError, match="the student must have the same"):
            train(config, select(tracks, "train"), select(tracks, "valid"), tmp_path, labels=labels, cache=cache,
                  workers=1, progress=False)
    with pytest.raises(ParameterError, match="teacher_weight"):
        _config(teacher=str(teacher), teacher_weight=1.5)


def test_cli_distils_from_a_model_file_and_refuses_a_missing_teacher_in_one_line(toy_dataset, swapped_teacher,
                                                                                 tmp_path, capsys, monkeypatch):
    from genrekit.checkpoints import load_checkpoint
    from genrekit.cli import main

    root, _ = toy_dataset
    teacher, cache = swapped_teacher
    common = ["genrekit", "train", "--architecture", "cnn-logmel", "--data", str(root), "--out", str(tmp_path),
              "--window-seconds", "1", "--epochs", "1", "--views", "2", "--workers", "1", "--cache-dir", str(cache.root)]
    monkeypatch.setattr("sys.argv", [*common, "--teacher", str(teacher), "--teacher-weight", "0.8"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    record = load_checkpoint(tmp_path / "cnn-logmel.pt")[1]["training"]["record"]
    assert record["config"]["teacher_weight"] == 0.8 and record["teacher"] == Teacher(teacher).key
    capsys.readouterr()
    monkeypatch.setattr("sys.argv", [*common, "--teacher", str(tmp_path / "missing.pt")])
    with pytest.raises(SystemExit) as stop:
        main()
    error = capsys.readouterr().err.splitlines()
    assert stop.value.code != 0 and len(error) == 1 and "missing.pt" in error[0], error
