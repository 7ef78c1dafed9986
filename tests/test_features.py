import librosa
import numpy as np
import pytest
import torch

from conftest import tone
from genrekit.audio import load_audio
from genrekit.exceptions import ParameterError
from genrekit.feature_params import FeatureParams
from genrekit.features import FeatureExtractor, compute_features


def _librosa_reference(y, p=FeatureParams()):
    stft = librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length)
    return {"spectrogram": librosa.amplitude_to_db(np.abs(stft), top_db=p.top_db),
            "logmel": librosa.power_to_db(librosa.feature.melspectrogram(
                y=y, sr=p.sr, n_fft=p.n_fft, hop_length=p.hop_length, n_mels=p.n_mels), top_db=p.top_db),
            "chroma": librosa.feature.chroma_stft(y=y, sr=p.sr, n_fft=p.n_fft, hop_length=p.hop_length, tuning=0.0)}


def _music(seconds=3.0, sr=22050, seed=0):
    rng = np.random.default_rng(seed)
    chord = sum(tone(f, seconds, sr, amplitude=0.2) for f in (261.6, 329.6, 392.0))
    return (chord + 0.05 * rng.standard_normal(chord.size)).astype(np.float32)


@pytest.mark.parametrize("name,tolerance", [("spectrogram", 1e-2), ("logmel", 1e-2), ("chroma", 1e-4)])
def test_matches_librosa_on_generated_music(name, tolerance):
    y = _music()
    ours = compute_features(y)[name]
    reference = _librosa_reference(y)[name]
    assert ours.shape == reference.shape
    assert np.max(np.abs(ours - reference)) < tolerance


def test_matches_librosa_on_a_real_clip(gtzan_mini):
    y = load_audio(gtzan_mini / "jazz" / "jazz.00000.au", duration=10.0)
    ours, reference = compute_features(y), _librosa_reference(y)
    for name, tolerance in (("logmel", 1e-2), ("chroma", 1e-4), ("spectrogram", 1e-2)):
        assert np.max(np.abs(ours[name] - reference[name])) < tolerance, name


def test_batch_equals_one_by_one_and_shapes():
    params = FeatureParams()
    batch = np.stack([_music(seed=s) for s in range(3)])
    with torch.inference_mode():
        together = FeatureExtractor(params)(batch)
    for i in range(3):
        alone = compute_features(batch[i])
        for name, value in alone.items():
            assert np.allclose(together[name][i].numpy(), value, atol=1e-4)
    n = batch.shape[1]
    for name in ("waveform", "spectrogram", "logmel", "chroma"):
        assert tuple(together[name].shape[1:]) == params.shape(name, n)


def test_chroma_finds_the_pitch_class():
    chroma = compute_features(tone(440.0, 1.0), representations=("chroma",))["chroma"]
    assert np.argmax(chroma.mean(axis=1)) == 9  # A
    assert compute_features(np.zeros(22050, np.float32))["chroma"].max() == 0.0


def test_bad_inputs():
    with pytest.raises(ParameterError, match="unknown representation 'mfcc'"):
        compute_features(tone(), representations=("mfcc",))
    with pytest.raises(ParameterError, match="shape"):
        compute_features(np.zeros((2, 2, 10), np.float32))
