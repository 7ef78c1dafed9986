"""Predicting the genre of songs of any length, format and sample rate, with a timeline over the song.

A song is decoded in blocks (bounded memory), every block is cut into the model's windows, and each member
model scores every window. The song's result averages the window log-probabilities per member (as in
evaluation) and combines the members as the ensemble was fitted to; the timeline combines them window by
window. A trailing piece shorter than one window is left out unless it is all there is.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import log_softmax

from .audio import is_silent, resample, stream_audio, to_mono
from .clips import cut_windows, window_length, window_starts
from .ensemble import (GATE_REPRESENTATIONS, Ensemble, GatedEnsemble, gate_frames, gate_statistics_of_frames,
                       load_predictor)
from .exceptions import AudioError, GenrekitError, ParameterError
from .features import compute_features

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.pt"
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "fast": DEFAULT_MODEL.with_name("fast.pt")}
"""Models shipped with genrekit, by the name `load` and `--model` accept: `default` (musicnn backbone +
log-mel CNN: best on real recordings) and `fast` (three small from-scratch CNN/RNN members: ~10x faster)."""
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


class TorchScorer:
    """Scores windows with the members' torch networks."""

    def __init__(self, members):
        self.models = [member.model for member in members]

    def __call__(self, windows):
        """Member window log-probabilities [shape=(n_members, n_windows, n_labels)] from windows per
        representation."""
        with torch.inference_mode():
            return np.stack([torch.log_softmax(model(torch.from_numpy(windows[model.representation])), dim=1).numpy()
                             for model in self.models])


class Classifier:
    """A trained model or ensemble ready to predict songs (see `load`).

    `scorer` turns windows into member log-probabilities (torch or onnxruntime), `combiner` (None for a
    single model) mixes the members as the ensemble was fitted to.
    """

    def __init__(self, source, *, scorer, combiner, labels, member_names, member_representations, params,
                 window_seconds):
        self.source, self.scorer, self.combiner, self.labels = str(source), scorer, combiner, list(labels)
        self.member_names, self.params, self.window_seconds = list(member_names), params, window_seconds
        self.gated = isinstance(combiner, GatedEnsemble)
        self.member_representations = sorted(set(member_representations))
        self.representations = sorted(set(member_representations) | (set(GATE_REPRESENTATIONS) if self.gated else set()))

    @classmethod
    def from_predictor(cls, predictor, source):
        """A classifier running a `Member` or `Ensemble` with torch."""
        members = predictor.members if isinstance(predictor, Ensemble) else [predictor]
        params, window_seconds = members[0].info["feature_params"], members[0].info["window_seconds"]
        for member in members:
            if member.info["feature_params"] != params or member.info["window_seconds"] != window_seconds:
                raise GenrekitError(f"{source}: members differ in feature parameters or window length")
        return cls(source, scorer=TorchScorer(members), combiner=getattr(predictor, "combiner", None),
                   labels=predictor.labels, member_names=[m.name for m in members],
                   member_representations=[m.model.representation for m in members], params=params,
                   window_seconds=window_seconds)

    def __repr__(self):
        return f"Classifier({self.source!r}, members={self.member_names}, labels={self.labels})"

    def blocks(self, audio, sr=None):
        """The signal in blocks of a whole number of windows (about BLOCK_SECONDS), the last one shorter."""
        window = window_length("waveform", self.window_seconds, self.params)
        size = max(1, int(BLOCK_SECONDS // self.window_seconds)) * window
        if isinstance(audio, (str, Path)):
            pending = np.zeros(0, np.float32)
            for piece in stream_audio(audio, sr=self.params.sr, block_seconds=BLOCK_SECONDS):
                pending = np.concatenate([pending, piece])
                while len(pending) >= size:
                    yield pending[:size]
                    pending = pending[size:]
            if len(pending):
                yield pending
            return
        if sr is None:
            raise ParameterError("pass sr= with an array of samples")
        y = np.asarray(audio, dtype=np.float32)
        y = resample(to_mono(y.T if y.ndim == 2 and y.shape[0] < y.shape[1] else y), sr, self.params.sr)
        for start in range(0, max(len(y), 1), size):
            yield y[start:start + size]

    def windows(self, y):
        """(features, windows per representation, window starts in samples) of a block: the same windows in
        time for every representation."""
        features = compute_features(y, self.params, self.representations)
        starts = window_starts(len(y), window_length("waveform", self.window_seconds, self.params))
        windows = {}
        for rep in self.member_representations:
            scale = 1 if rep == "waveform" else self.params.hop_length
            windows[rep] = cut_windows(features[rep], [s // scale for s in starts],
                                       window_length(rep, self.window_seconds, self.params))
        return features, windows, np.asarray(starts)

    def _score_block(self, y):
        """Member window log-probabilities [shape=(n_members, n_windows, n_labels)], gate frames, and the
        windows' starts in samples."""
        features, windows, starts = self.windows(y)
        return self.scorer(windows), (gate_frames(features) if self.gated else None), starts

    def _combine(self, member_log_probs, stats):
        probs = np.exp(member_log_probs)
        return probs[0] if self.combiner is None else self.combiner.predict_proba(probs, stats)

    def predict(self, audio, sr=None):
        """Genres of a file (any format soundfile reads) or of an array of samples at `sr` Hz."""
        source = str(audio) if isinstance(audio, (str, Path)) else "<array>"
        window = int(self.window_seconds * self.params.sr)
        scores, frames, times, offset, loud = [], [], [], 0, False
        for block in self.blocks(audio, sr):
            loud = loud or not is_silent(block)
            if len(block) >= window or offset == 0:
                block_scores, block_frames, starts = self._score_block(block)
                scores.append(block_scores)
                frames.append(block_frames)
                times.extend((offset + starts) / self.params.sr)
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


def onnxruntime_available():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load(model=None, *, backend="auto"):
    """A `Classifier` for a checkpoint, ensemble or exported `.onnx` file, or for a bundled model by name
    (`BUNDLED_MODELS`; None is "default").

    backend: "torch", "onnx", or "auto" (onnxruntime for `.onnx` files, and for bundled models when
    onnxruntime is installed, exported on first use; torch otherwise).
    """
    if backend not in ("auto", "torch", "onnx"):
        raise ParameterError(f"backend must be auto, torch or onnx, got {backend!r}")
    name = "default" if model is None else str(model)
    if name in BUNDLED_MODELS and not Path(name).exists():
        path = BUNDLED_MODELS[name]
        if not path.is_file():
            raise GenrekitError(f"{path}: the bundled {name} model is missing (run scripts/train_default_model.py)")
        if backend == "onnx" or (backend == "auto" and onnxruntime_available()):
            from .export import cached_onnx_export

            try:
                path = cached_onnx_export(path)
            except OSError as error:  # e.g. a read-only cache folder
                if backend == "onnx":
                    raise GenrekitError(f"{path}: cannot write its ONNX export ({error})") from None
                log.warning("%s: no ONNX export (%s); running it with torch", path, error)
    else:
        path = Path(model)
    if path.suffix == ".onnx":
        if backend == "torch":
            raise ParameterError(f"{path}: an ONNX file runs with onnxruntime, not torch")
        from .export import load_onnx

        return load_onnx(path)
    if backend == "onnx":
        raise ParameterError(f"{path}: export it first (genrekit export {path} --onnx out.onnx)")
    return Classifier.from_predictor(load_predictor(path), path)
