"""The one path from audio to genre probabilities: block -> windows -> member log-probabilities -> combined.

A signal is read in blocks of a whole number of windows (about `BLOCK_SECONDS`, so memory stays bounded),
each block's representations come from one STFT, windows are cut at the same times in every
representation, every member scores every window, and the members are combined as the ensemble was fitted
to. Prediction, evaluation, ensemble fitting and the benchmarks all call this module; training cuts its
windows with the same rules:

- a window is `round(window_seconds * sr)` samples, or `1 + samples // hop_length` STFT frames;
- windows start every window length from 0 (blocks hold whole windows, so this runs on across blocks);
  a trailing piece shorter than a window is left out, unless it is all there is: a signal shorter than a
  window is looped to fill it (looping beats padding with silence, which pushes predictions towards sparse
  genres);
- a clip's score per member is the mean of its windows' log-probabilities, renormalised.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import UNKNOWN_FRAMES, audio_info, is_silent, load_audio, resample, stream_audio, to_mono
from .combiners import GATE_REPRESENTATIONS, gate_frames, gate_statistics_of_frames, temper
from .exceptions import AudioError, ParameterError, Truncated
from .feature_params import FeatureParams

BLOCK_SECONDS = 30.0
MAX_PEAK = 1e4
"""Float samples beyond +-MAX_PEAK (80 dB over full scale: no recording, but a wrongly scaled array) are scaled
to a peak of 1 before any model sees them, where powers would overflow float32."""
MIN_SECONDS = 0.5
"""Shortest audio given a genre: anything shorter (a click, a stray sample) is refused, not looped into a window."""


def window_length(representation, window_seconds, params=FeatureParams()):
    """Samples (waveform) or STFT frames (the others) in a window of `window_seconds`."""
    samples = int(round(window_seconds * params.sr))
    return samples if representation == "waveform" else params.n_frames(samples)


def window_starts(total, length):
    """Starts of the windows of `length` over `total` positions: every `length` from 0 while a whole window
    fits (one at 0 when `total` <= `length`: the signal is looped to fill it)."""
    return list(range(0, max(total - length, 0) + 1, length))


def loop_to(array, length):
    """`array` repeated along its last axis up to at least `length` (unchanged when long enough)."""
    if array.shape[-1] >= length:
        return array
    repeats = -(-length // max(array.shape[-1], 1))
    return np.concatenate([array] * repeats, axis=-1)


def cut_windows(array, starts, length):
    """Windows of `length` at `starts` along the last axis [shape=(len(starts), ..., length)], float32."""
    array = loop_to(array, max(starts) + length)
    return np.stack([array[..., s:s + length] for s in starts]).astype(np.float32, copy=False)


def window_frames(starts, representation, params):
    """Window starts in samples -> positions along `representation`'s last axis."""
    return list(starts) if representation == "waveform" else [s // params.hop_length for s in starts]


def block_windows(y, params, window_seconds, representations):
    """(features, windows per representation, window starts in samples) of a signal block (looped to one
    window when shorter): the same windows in time for every representation."""
    samples = window_length("waveform", window_seconds, params)
    y = loop_to(np.asarray(y, dtype=np.float32), samples)
    if set(representations) == {"waveform"}:
        features = {"waveform": y}
    else:
        from .features import compute_features  # torch: loaded only for members that read spectra

        features = compute_features(y, params, representations)
    starts = window_starts(len(y), samples)
    windows = {rep: cut_windows(features[rep], window_frames(starts, rep, params),
                                window_length(rep, window_seconds, params)) for rep in representations}
    return features, windows, np.asarray(starts)


class Scorer:
    """What a model file holds: member networks that score windows, and how their scores combine.

    `members` are (name, representation) pairs; `combiner` is None for a single model; `temperature`
    rescales the combined probabilities (calibration, `genrekit.combiners.fit_temperature`). Subclasses run
    the networks in `member_log_probs`.
    """

    def __init__(self, *, labels, members, params, window_seconds, kind=None, combiner=None, temperature=1.0):
        self.labels, self.members = list(labels), [tuple(m) for m in members]
        self.params, self.window_seconds, self.kind, self.combiner = params, window_seconds, kind, combiner
        self.temperature = temperature

    @property
    def member_names(self):
        return [name for name, _ in self.members]

    @property
    def member_representations(self):
        return sorted({rep for _, rep in self.members})

    @property
    def gated(self):
        return self.kind == "gating"

    @property
    def representations(self):
        """Every representation a block needs: the members' and, for a gate, its statistics'."""
        return sorted(set(self.member_representations) | (set(GATE_REPRESENTATIONS) if self.gated else set()))

    def member_log_probs(self, windows):
        """Window log-probabilities [shape=(n_members, n_windows, n_labels)] from windows per representation."""
        raise NotImplementedError

    def combine(self, member_log_probs, stats=None):
        """Probabilities [shape=(n, n_labels)] from member log-probabilities [shape=(n_members, n, n_labels)]."""
        probs = np.exp(member_log_probs)
        combined = probs[0] if self.combiner is None else self.combiner.predict_proba(probs, stats)
        return temper(combined, self.temperature)


class TorchScorer(Scorer):
    """Members run as torch modules (each has a `representation`)."""

    backend = "torch"

    def __init__(self, models, **kwargs):
        super().__init__(**kwargs)
        self.models = list(models)

    def member_log_probs(self, windows):
        return np.stack([model_log_probs(model, windows[model.representation]) for model in self.models])


def model_log_probs(model, windows, batch_size=64):
    """Log-probabilities [shape=(n_windows, n_labels)] of a torch model (in eval mode) for windows."""
    import torch  # only scoring with torch needs it (onnxruntime does not)

    x = torch.from_numpy(windows)
    with torch.inference_mode():
        return torch.cat([torch.log_softmax(model(x[s:s + batch_size]), dim=1)
                          for s in range(0, len(x), batch_size)]).numpy()


def clip_log_probs(window_log_probs):
    """A clip's score: the mean of its windows' log-probabilities (axis -2), renormalised."""
    mean = np.mean(window_log_probs, axis=-2)
    return mean - np.logaddexp.reduce(mean, axis=-1, keepdims=True)


class OnnxScorer(Scorer):
    """Members run by one onnxruntime session (see `genrekit.export`)."""

    backend = "onnxruntime"

    def __init__(self, session, **kwargs):
        super().__init__(**kwargs)
        self.session = session

    def member_log_probs(self, windows):
        return self.session.run(None, {rep: windows[rep] for rep in self.member_representations})[0]


INTEGER_SCALES = {np.dtype(np.int8): (0, 2 ** 7), np.dtype(np.uint8): (2 ** 7, 2 ** 7),
                  np.dtype(np.int16): (0, 2 ** 15), np.dtype(np.int32): (0, 2 ** 31)}
"""(offset, scale) that bring integer samples to [-1, 1), as soundfile reads them (8-bit WAV is unsigned)."""


def array_signal(y, sr, params):
    """Samples at `sr` Hz as mono float32 at `params.sr`: a 1-D array, or channels on either axis of a 2-D one
    (the shorter axis); floats as they are, integers scaled as soundfile scales them (int16 / 32768, ...)."""
    if sr is None:
        raise ParameterError("pass sr= with an array of samples")
    y = np.asarray(y)
    if y.dtype in INTEGER_SCALES:
        offset, scale = INTEGER_SCALES[y.dtype]
        y = (y.astype(np.float32) - offset) / scale
    elif y.dtype.kind != "f":
        raise ParameterError(f"samples of dtype {y.dtype} are not audio: give floats or int8/uint8/int16/int32")
    if y.ndim not in (1, 2) or 0 in y.shape:
        raise ParameterError(f"samples of shape {y.shape} are not audio: give (samples,) or (samples, channels)")
    if not 0 < sr < np.inf:
        raise ParameterError(f"sr must be a positive number of Hz, got {sr}")
    y = np.asarray(y, dtype=np.float32)
    return resample(to_mono(y.T if y.ndim == 2 and y.shape[0] < y.shape[1] else y), sr, params.sr)


def signal_blocks(audio, params, window_seconds, *, sr=None, offset=0.0, duration=None, on_truncated=None):
    """A file (streamed; a truncated one as `genrekit.audio.stream_audio` says) or an array of samples at `sr` Hz
    as float32 blocks at `params.sr` of a whole number of windows (about BLOCK_SECONDS), the last one shorter."""
    size = max(1, int(BLOCK_SECONDS // window_seconds)) * window_length("waveform", window_seconds, params)
    if isinstance(audio, (str, Path)):
        pending = np.zeros(0, np.float32)
        for piece in stream_audio(audio, sr=params.sr, block_seconds=BLOCK_SECONDS, offset=offset, duration=duration,
                                  on_truncated=on_truncated):
            pending = np.concatenate([pending, piece])
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if len(pending):
            yield pending
        return
    y = array_signal(audio, sr, params)
    for start in range(0, max(len(y), 1), size):
        yield y[start:start + size]


@dataclass
class AudioScores:
    """Every member's score of every window of a signal."""

    window_log_probs: np.ndarray
    """[shape=(n_members, n_windows, n_labels)]"""
    times: np.ndarray
    """[shape=(n_windows,)] window starts, seconds"""
    stats: np.ndarray | None
    """[shape=(88,)] the gate's statistics of the whole signal (gated ensembles only)"""
    duration: float
    warning: str | None = None
    """what was wrong with the file but did not stop it being scored (a truncated file: what is missing)"""

    def clip_log_probs(self):
        """Per member, the clip's score (`clip_log_probs`) [shape=(n_members, n_labels)]."""
        return clip_log_probs(self.window_log_probs)


class Stopped(Exception):
    """A prediction ended early because its `stop` event was set."""


def sampled_windows(audio, params, window_seconds, max_windows, *, sr=None, offset=0.0, duration=None):
    """(window starts in samples, window signals, the signal's length in samples) of `max_windows` windows of
    the scoring grid spread evenly over a file (only they are decoded) or an array at `sr` Hz, or None when
    it has no more windows than that, its length is unknown, or it turns out shorter than its header says."""
    window, is_file, y = window_length("waveform", window_seconds, params), isinstance(audio, (str, Path)), None
    if is_file:
        info = audio_info(audio)
        if info.frames == UNKNOWN_FRAMES:  # e.g. a streamed FLAC: only decoding all of it tells
            return None
        total = int(info.frames * params.sr / info.samplerate) - int(round(offset * params.sr))
        total = min(total, int(round(duration * params.sr))) if duration is not None else total
    else:
        y = array_signal(audio, sr, params)
        total = len(y)
    grid = window_starts(total, window)
    if total <= 0 or len(grid) <= max_windows:
        return None
    starts = [grid[i] for i in np.unique(np.linspace(0, len(grid) - 1, max_windows).round().astype(int))]
    truncated = []
    try:
        pieces = [load_audio(audio, sr=params.sr, offset=offset + start / params.sr, duration=window_seconds,
                             on_truncated=truncated.append) if is_file else y[start:start + window] for start in starts]
    except Truncated:
        return None
    return (starts, pieces, total) if not truncated else None


def finite_block(y, source):
    """A block of samples scaled to a peak of 1 when beyond `MAX_PEAK`; AudioError for NaN or infinity."""
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if not np.isfinite(peak):
        raise AudioError(source, "samples that are not numbers (NaN or infinity)")
    return y / np.float32(peak) if peak > MAX_PEAK else y


def score_audio(scorer, audio, *, sr=None, offset=0.0, duration=None, stop=None, max_windows=None):
    """`AudioScores` of a file (`offset`/`duration` in seconds pick a span) or of samples at `sr` Hz; once
    `stop` (a `threading.Event`) is set, `Stopped` is raised before the next block is scored.

    `max_windows`: score only that many windows of the grid, spread evenly over the signal (`sampled_windows`;
    a file's other windows are not even decoded), when it has more; the song's score is then their average.

    A truncated file is scored on what decodes, and its `AudioScores.warning` says what is missing.
    Raises AudioError for a file without samples, shorter than `MIN_SECONDS`, or silent (or constant).
    """
    source = str(audio) if isinstance(audio, (str, Path)) else "<array>"
    params, window = scorer.params, window_length("waveform", scorer.window_seconds, scorer.params)
    sampled = max_windows and sampled_windows(audio, params, scorer.window_seconds, max_windows, sr=sr,
                                              offset=offset, duration=duration)
    truncated = []
    if sampled:
        starts, pieces, total = sampled
    else:
        pieces = signal_blocks(audio, params, scorer.window_seconds, sr=sr, offset=offset, duration=duration,
                               on_truncated=truncated.append)
    scores, frames, times, position, loud = [], [], [], 0, False
    for i, block in enumerate(pieces):
        block = finite_block(block, source)
        start = starts[i] if sampled else position
        loud = loud or not is_silent(block)
        if stop is not None and stop.is_set():
            raise Stopped
        if sampled or len(block) >= window or position == 0:  # a sampled window a sample short is looped
            features, windows, block_starts = block_windows(block, params, scorer.window_seconds,
                                                            scorer.representations)
            scores.append(scorer.member_log_probs(windows))
            if scorer.gated:
                frames.append(gate_frames(features))
            times.extend((start + block_starts) / params.sr)
        position += len(block)
    total = total if sampled else position
    if total == 0:
        raise AudioError(source, "contains no audio samples")
    if total < MIN_SECONDS * params.sr:
        raise AudioError(source, f"too short to classify ({total / params.sr:.2f} s; the minimum is {MIN_SECONDS:g} s)")
    if not loud:
        if sampled:  # the sampled windows are quiet: look at all of it
            return score_audio(scorer, audio, sr=sr, offset=offset, duration=duration, stop=stop)
        raise AudioError(source, "silent (never above -80 dBFS, its DC offset aside): nothing to classify")
    stats = gate_statistics_of_frames(np.concatenate(frames, axis=1)) if scorer.gated else None
    return AudioScores(np.concatenate(scores, axis=1), np.asarray(times), stats, total / params.sr,
                       truncated[0] if truncated else None)


def song_probabilities(scorer, scores):
    """(song probabilities [shape=(n_labels,)], per-window probabilities [shape=(n_windows, n_labels)])."""
    stats = None if scores.stats is None else scores.stats[None]
    song = scorer.combine(scores.clip_log_probs()[:, None], stats)[0]
    n = scores.window_log_probs.shape[1]
    per_window = scorer.combine(scores.window_log_probs, None if stats is None else np.repeat(stats, n, 0))
    return song, per_window
