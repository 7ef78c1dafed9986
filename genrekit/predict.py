"""Predicting the genre of songs of any length, format and sample rate, with a timeline over the song.

A song is decoded in blocks (bounded memory), every block is cut into the model's windows, and each member
model scores every window. The song's result averages the window log-probabilities per member (as in
evaluation) and combines the members as the ensemble was fitted to; the timeline combines them window by
window. A trailing piece shorter than one window is left out unless it is all there is.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import log_softmax

from .audio import is_silent, resample, stream_audio, to_mono
from .clips import clip_windows, window_length
from .ensemble import (GATE_REPRESENTATIONS, Ensemble, GatedEnsemble, gate_frames, gate_statistics_of_frames,
                       load_predictor)
from .exceptions import AudioError, GenrekitError, ParameterError
from .features import compute_features

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.pt"
BLOCK_SECONDS = 30.0


@dataclass
class Prediction:
    """Genre probabilities of a song and how they move over its windows."""

    source: str
    labels: list
    probabilities: np.ndarray
    """[shape=(n_labels,)] for the whole song"""
    times: np.ndarray
    """[shape=(n_windows,)] start of each window, seconds"""
    timeline: np.ndarray
    """[shape=(n_windows, n_labels)] probabilities per window"""
    duration: float

    def top(self, k=3):
        """The `k` most likely genres as (label, probability), most likely first."""
        order = np.argsort(-self.probabilities)[:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    @property
    def genre(self):
        return self.top(1)[0][0]

    def to_dict(self, top=3, timeline=False):
        out = {"source": self.source, "genre": self.genre, "duration": round(self.duration, 3),
               "top": [{"genre": g, "probability": round(p, 4)} for g, p in self.top(top)],
               "probabilities": {label: round(float(p), 4) for label, p in zip(self.labels, self.probabilities)}}
        if timeline:
            out["timeline"] = [{"start": round(float(t), 2), **{label: round(float(p), 4)
                                                                 for label, p in zip(self.labels, row)}}
                               for t, row in zip(self.times, self.timeline)]
        return out


class Classifier:
    """A trained model or ensemble ready to predict songs (see `load`)."""

    def __init__(self, predictor, source):
        self.predictor, self.source = predictor, str(source)
        self.members = predictor.members if isinstance(predictor, Ensemble) else [predictor]
        self.labels = predictor.labels
        self.params = self.members[0].info["feature_params"]
        self.window_seconds = self.members[0].info["window_seconds"]
        for member in self.members:
            if member.info["feature_params"] != self.params or member.info["window_seconds"] != self.window_seconds:
                raise GenrekitError(f"{source}: members differ in feature parameters or window length")
        self.gated = isinstance(getattr(predictor, "combiner", None), GatedEnsemble)
        self.representations = sorted({m.model.representation for m in self.members}
                                      | (set(GATE_REPRESENTATIONS) if self.gated else set()))

    def __repr__(self):
        return f"Classifier({self.source!r}, members={[m.name for m in self.members]}, labels={self.labels})"

    def _blocks(self, audio, sr):
        if isinstance(audio, (str, Path)):
            yield from stream_audio(audio, sr=self.params.sr, block_seconds=BLOCK_SECONDS)
            return
        if sr is None:
            raise ParameterError("pass sr= with an array of samples")
        y = np.asarray(audio, dtype=np.float32)
        y = resample(to_mono(y.T if y.ndim == 2 and y.shape[0] < y.shape[1] else y), sr, self.params.sr)
        step = int(BLOCK_SECONDS * self.params.sr)
        for start in range(0, max(len(y), 1), step):
            yield y[start:start + step]

    def _score_block(self, y):
        """Member window log-probabilities [shape=(n_members, n_windows, n_labels)] and gate frames."""
        features = compute_features(y, self.params, self.representations)
        scores = []
        with torch.inference_mode():
            for member in self.members:
                rep = member.model.representation
                windows = clip_windows(features[rep], window_length(rep, self.window_seconds, self.params))
                scores.append(torch.log_softmax(member.model(torch.from_numpy(windows)), dim=1).numpy())
        return np.stack(scores), (gate_frames(features) if self.gated else None)

    def _combine(self, member_log_probs, stats):
        probs = np.exp(member_log_probs)
        if isinstance(self.predictor, Ensemble):
            return self.predictor.predict_from_member_probs(probs, stats)
        return probs[0]

    def predict(self, audio, sr=None):
        """Genres of a file (any format soundfile reads) or of an array of samples at `sr` Hz."""
        source = str(audio) if isinstance(audio, (str, Path)) else "<array>"
        window = int(self.window_seconds * self.params.sr)
        scores, frames, times, offset, loud = [], [], [], 0, False
        for block in self._blocks(audio, sr):
            loud = loud or not is_silent(block)
            if len(block) >= window or offset == 0:
                block_scores, block_frames = self._score_block(block)
                scores.append(block_scores)
                frames.append(block_frames)
                n = block_scores.shape[1]
                times.extend(offset / self.params.sr + self.window_seconds * np.arange(n))
            offset += len(block)
        if offset == 0:
            raise AudioError(source, "contains no audio samples")
        if not loud:
            raise AudioError(source, "silent (never above -80 dBFS): nothing to classify")
        member_log_probs = np.concatenate(scores, axis=1)
        stats = gate_statistics_of_frames(np.concatenate(frames, axis=1))[None] if self.gated else None
        song = log_softmax(member_log_probs.mean(axis=1, keepdims=True), axis=2)
        probabilities = self._combine(song, stats)[0]
        per_window = self._combine(member_log_probs, None if stats is None else np.repeat(stats, len(times), 0))
        return Prediction(source, self.labels, probabilities, np.asarray(times), per_window, offset / self.params.sr)

    def predict_many(self, paths, *, on_error=None):
        """Predictions for many files, in order; a file that fails gives its `GenrekitError` in its place
        (and is passed to `on_error`), and the others go on."""
        results = []
        for path in paths:
            try:
                results.append(self.predict(path))
            except GenrekitError as error:
                if on_error:
                    on_error(path, error)
                results.append(error)
        return results


def load(model=None):
    """A `Classifier` for a checkpoint or ensemble file; the bundled default model when `model` is None."""
    path = Path(model) if model is not None else DEFAULT_MODEL
    if model is None and not path.is_file():
        raise GenrekitError(f"{path}: the bundled default model is missing (run scripts/train_default_model.py)")
    return Classifier(load_predictor(path), path)
