"""Training-time augmentation: each variant's effect on a window, and training with it switched on."""

import numpy as np
import pytest

from conftest import tone
from genrekit.augment import Augmentation
from genrekit.cache import FeatureCache
from genrekit.checkpoints import load_checkpoint
from genrekit.clips import ClipSet
from genrekit.scoring import window_length
from genrekit.datasets import select
from genrekit.exceptions import ParameterError
from genrekit.feature_params import FeatureParams
from genrekit.training import TrainConfig, train
from test_variants import peak_hz

SR = 22050
LENGTH = SR  # one-second windows


def test_without_augmentation_a_window_is_a_slice_of_the_clip():
    y = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    window = Augmentation(probability=0.0).window(y, LENGTH, SR, np.random.default_rng(1))
    starts = [s for s in range(len(y) - LENGTH + 1) if y[s] == window[0] and np.array_equal(y[s:s + LENGTH], window)]
    assert len(starts) == 1


def test_speed_up_raises_the_frequency_and_keeps_the_window_length():
    sped = Augmentation(speed=(1.25, 1.25), semitones=0.0, snr_db=(120.0, 120.0), probability=1.0)
    window = sped.window(tone(440.0, seconds=3.0), LENGTH, SR, np.random.default_rng(0))
    assert window.shape == (LENGTH,) and window.dtype == np.float32
    assert peak_hz(window) == pytest.approx(550.0, rel=0.005)


def test_pitch_shift_stays_within_two_semitones_and_varies():
    shifted = Augmentation(speed=(1.0, 1.0), semitones=2.0, snr_db=(120.0, 120.0), probability=1.0)
    rng = np.random.default_rng(0)
    peaks = [peak_hz(shifted.window(tone(440.0, seconds=3.0), LENGTH, SR, rng)) for _ in range(6)]
    assert all(440 * 2 ** (-2.05 / 12) < p < 440 * 2 ** (2.05 / 12) for p in peaks)
    assert max(peaks) - min(peaks) > 5.0


def test_noise_lowers_the_signal_to_noise_ratio_into_range():
    noisy = Augmentation(speed=(1.0, 1.0), semitones=0.0, snr_db=(10.0, 10.0), gain_db=(0.0, 0.0), probability=1.0)
    clean = tone(440.0, seconds=1.0)
    out = noisy.window(clean, LENGTH, SR, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((out - clean) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)


def test_gain_plays_the_window_louder_or_quieter_within_range():
    for low, high in ((-40.0, -40.0), (6.0, 6.0), (-20.0, 10.0)):
        louder = Augmentation(speed=(1.0, 1.0), semitones=0.0, snr_db=(200.0, 200.0), gain_db=(low, high),
                              probability=1.0)
        clean = tone(440.0, seconds=1.0)
        out = louder.window(clean, LENGTH, SR, np.random.default_rng(0))
        gain = 10 * np.log10(np.mean(out ** 2) / np.mean(clean ** 2))
        assert low - 0.01 <= gain <= high + 0.01


def test_short_clips_are_padded_to_the_window():
    out = Augmentation(probability=1.0).window(tone(440.0, seconds=0.3), LENGTH, SR, np.random.default_rng(0))
    assert out.shape == (LENGTH,) and np.all(np.isfinite(out))


@pytest.mark.parametrize("settings", [{"speed": (0.0, 1.0)}, {"speed": (1.2, 0.9)}, {"probability": 1.5},
                                      {"semitones": -1.0}, {"snr_db": (30.0, 10.0)}, {"gain_db": (0.0, -6.0)}])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ParameterError):
        Augmentation(**settings)


def test_batches_have_the_models_window_shape(toy_dataset, tmp_path):
    _, tracks = toy_dataset
    clips = ClipSet.from_tracks(select(tracks, "train"), "waveform", ["high", "low", "noisy"],
                                FeatureCache(tmp_path), window_seconds=1.0, workers=1, progress=False)
    batch = Augmentation().batch(clips, [0, 1, 2], LENGTH, "logmel", FeatureParams(), np.random.default_rng(0))
    assert tuple(batch.shape) == (3, FeatureParams().n_mels, window_length("logmel", 1.0)) and bool(batch.isfinite().all())


def test_training_with_augmentation_is_recorded_and_deterministic(toy_dataset, tmp_path):
    _, tracks = toy_dataset
    cache = FeatureCache(tmp_path / "cache")
    config = TrainConfig(model="cnn-logmel", epochs=2, window_seconds=1.0, batch_size=8, augment=True,
                         model_kwargs={"channels": (4, 8)})
    args = (select(tracks, "train"), select(tracks, "valid"))
    runs = [load_checkpoint(train(config, *args, tmp_path / name, labels=["high", "low", "noisy"], cache=cache,
                                  workers=1, progress=False))[1] for name in ("a", "b")]
    assert runs[0]["training"]["record"]["config"]["augment"] is True
    assert runs[0]["history"] == runs[1]["history"]
