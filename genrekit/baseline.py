"""The classical reference: clip statistics (MFCC, chroma, spectral shape) and an RBF-kernel SVM."""

import librosa
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .cache import FeatureCache, fill_cache
from .feature_params import FeatureParams


def clip_statistics(features, params=FeatureParams()):
    """Means and deviations over time of 20 MFCCs, 12 chroma bins, spectral centroid, bandwidth, rolloff,
    flatness, RMS and zero-crossing rate, from a clip's cached representations. [shape=(76,)]"""
    magnitude = librosa.db_to_amplitude(features["spectrogram"])
    rows = [librosa.feature.mfcc(S=features["logmel"], n_mfcc=20), features["chroma"],
            librosa.feature.spectral_centroid(S=magnitude, sr=params.sr, n_fft=params.n_fft),
            librosa.feature.spectral_bandwidth(S=magnitude, sr=params.sr, n_fft=params.n_fft),
            librosa.feature.spectral_rolloff(S=magnitude, sr=params.sr, n_fft=params.n_fft),
            librosa.feature.spectral_flatness(S=magnitude),
            librosa.feature.rms(S=magnitude, frame_length=params.n_fft),
            librosa.feature.zero_crossing_rate(features["waveform"], frame_length=params.n_fft,
                                               hop_length=params.hop_length)]
    frames = min(r.shape[-1] for r in rows)
    stacked = np.concatenate([r[..., :frames] for r in rows])
    return np.concatenate([stacked.mean(axis=1), stacked.std(axis=1)]).astype(np.float32)


def statistics_of(tracks, cache=None, *, workers=None, progress=True):
    """Clip statistics of tracks that load, and the tracks they belong to."""
    cache = cache or FeatureCache()
    status = fill_cache(tracks, cache, workers=workers, progress=progress)
    usable = [t for t in tracks if not status[t.key].startswith("failed")]
    return np.stack([clip_statistics(cache.load(t), cache.params) for t in usable]), usable


def make_baseline(seed=0):
    """Standardised statistics into an RBF SVM with balanced class weights."""
    return make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale", class_weight="balanced", probability=True,
                                               random_state=seed))
