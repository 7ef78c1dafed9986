"""Predicting the genre of songs of any length, format and sample rate, with a timeline over the song.

A song is decoded in blocks (bounded memory), every block is cut into the model's windows, and each member
model scores every window. The song's result averages the window log-probabilities per member (as in
evaluation) and combines the members as the ensemble was fitted to; the timeline combines them window by
window. A trailing piece shorter than one window is left out unless it is all there is.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .audio import UNKNOWN_FRAMES, audio_info, stream_audio
from .checkpoints import load_scorer
from .constants import DEFAULT_CACHE_DIR
from .digest import file_digest
from .exceptions import GenrekitError, ParameterError, TooLong
from .progress import progress_bar
from .scoring import Stopped, score_audio, song_probabilities

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.pt"
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "fast": DEFAULT_MODEL.with_name("fast.pt")}
"""Models shipped with genrekit, by the name `load` and `--model` accept: `default` (best on real recordings,
twelve genres) and `fast` (a small log-mel CNN distilled from an earlier, ten-genre `default`)."""


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
    ends: np.ndarray
    """[shape=(n_windows,)] end of each window, seconds (the song's end for a song shorter than a window)"""
    warning: str | None = None
    """what was wrong with the file but did not stop it being scored ("truncated: ...")"""

    def top(self, k=3):
        """The `k` most likely genres as (label, probability), most likely first."""
        order = np.argsort(-self.probabilities)[:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    @property
    def genre(self):
        return self.top(1)[0][0]

    def to_dict(self, top=3, timeline=False):
        out = {"source": self.source, "genre": self.genre, "duration": round(self.duration, 3), "warning": self.warning,
               "top": [{"genre": g, "probability": round(p, 4)} for g, p in self.top(top)],
               "probabilities": {label: round(float(p), 4) for label, p in zip(self.labels, self.probabilities)}}
        if timeline:
            out["timeline"] = [{"start": round(float(t), 2), "end": round(float(end), 2),
                                **{label: round(float(p), 4) for label, p in zip(self.labels, row)}}
                               for t, end, row in zip(self.times, self.ends, self.timeline)]
        return out


class Classifier:
    """A model file's `Scorer` ready to predict songs of any length (see `load`).

    `name` is what the user called it (`default`, `fast`, or the file given); `source` is the file it runs
    from (for a bundled model run by onnxruntime, its cached export), which `load` accepts again.
    `max_windows`: a song's genre from that many windows spread evenly over it (`genrekit.scoring.score_audio`;
    a timeline then holds only those) when it has more; None: every window. `max_seconds`: a file longer than
    that is refused (`TooLong`, from its header before decoding where the header tells); None: any length.
    """

    def __init__(self, scorer, source, name=None, max_windows=None, max_seconds=None):
        self.scorer, self.source, self.name = scorer, str(source), str(name or source)
        self.max_windows, self.max_seconds = max_windows, max_seconds

    @property
    def settings(self):
        """How it predicts besides its model file: what a worker process needs to predict alike."""
        return {"max_windows": self.max_windows, "max_seconds": self.max_seconds}

    @property
    def labels(self):
        return self.scorer.labels

    @cached_property
    def version(self):
        """Which model this is: a bundled model's card version, else the first 12 digits of its file's SHA-1."""
        if self.name in BUNDLED_MODELS:
            card = BUNDLED_MODELS[self.name].with_suffix(".json")
            if card.is_file():
                return json.loads(card.read_text()).get("version")
        return file_digest(self.source)[:12] if Path(self.source).is_file() else None

    @property
    def member_names(self):
        return self.scorer.member_names

    @property
    def backend(self):
        return self.scorer.backend

    def __repr__(self):
        return f"Classifier({self.name!r}, members={self.member_names}, labels={self.labels})"

    def predict(self, audio, sr=None, *, duration=None, stop=None):
        """Genres of a file (any format libsndfile or FFmpeg reads) or of an array of samples at `sr` Hz.

        Only the first `duration` seconds are decoded when given. Once `stop` (a `threading.Event`) is set,
        the work ends at the next block of about 30 s with `genrekit.scoring.Stopped`.
        """
        if self.max_seconds and isinstance(audio, (str, Path)):
            check_length(audio, self.max_seconds, stop=stop)
        scores = score_audio(self.scorer, audio, sr=sr, duration=duration, stop=stop, max_windows=self.max_windows)
        probabilities, per_window = song_probabilities(self.scorer, scores)
        source = str(audio) if isinstance(audio, (str, Path)) else "<array>"
        ends = np.minimum(scores.times + self.scorer.window_seconds, scores.duration)
        return Prediction(source, self.labels, probabilities, scores.times, per_window, scores.duration, ends,
                          scores.warning)

    def predict_many(self, paths, *, on_error=None, progress=False):
        """Predictions for many files, in order; a file that fails gives its `GenrekitError` in its place
        (and is passed to `on_error`), and the others go on. `progress`: a progress bar on stderr."""
        results = []
        for path in progress_bar(paths, desc="predicting", unit="file", enabled=progress):
            try:
                results.append(self.predict(path))
            except GenrekitError as error:
                if on_error:
                    on_error(path, error)
                results.append(error)
        return results


def songs_in(paths):
    """Each path as given, a folder replaced by the audio files under it (sorted, found as `tag` finds them),
    and {folder: why} for the folders that give none: they stay in the list, to be reported."""
    songs, empty = [], {}
    for path in paths:
        scan = None
        if _is_folder(path):
            from .datasets.folder import scan_folder  # the dataset readers load PyYAML: only for a folder

            scan = scan_folder(path)
        songs.extend(scan.files if scan and scan.files else [path])
        if scan and not scan.files:
            unread = len(scan.skipped)
            empty[path] = (scan.skipped[0][1] if unread == 1 and scan.skipped[0][0] == path else
                           "folder without audio files" + (f" ({unread} entries could not be read)" if unread else ""))
    return songs, empty


def _is_folder(path):
    try:
        return Path(path).is_dir()
    except OSError:  # e.g. inside a folder that may not be searched: predicting it says so
        return False


def length_text(seconds):
    """A length as people read it: 45.0 s, 20.0 min, 6.0 h."""
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds / 60:.1f} min" if seconds >= 120 \
        else f"{seconds:.1f} s"


def check_length(path, max_seconds, *, stop=None):
    """`TooLong` when the file at `path` lasts over `max_seconds`: from its header, or where the header does not
    tell (a streamed FLAC) by decoding up to there (cheap next to scoring); `stop` ends the decoding."""
    info = audio_info(path)
    too_long = f"longer than the limit of {length_text(max_seconds)}"
    if info.frames != UNKNOWN_FRAMES:
        if info.duration > max_seconds:
            raise TooLong(path, f"{too_long} ({length_text(info.duration)})")
        return
    decoded = 0
    for block in stream_audio(path, sr=info.samplerate, duration=max_seconds + 1.0, on_truncated=lambda _: None):
        if stop is not None and stop.is_set():
            raise Stopped
        decoded += len(block)
    if decoded > max_seconds * info.samplerate:
        raise TooLong(path, f"{too_long} (found by decoding up to there: its header does not say)")


EXPORTING_CODE = sorted((Path(__file__).parent / "models").glob("*.py")) + [Path(__file__).with_name("export.py")]
"""What an export is made by, besides the model file: a change to it makes the cached exports again."""


def cached_onnx_export(model_path, cache_dir=DEFAULT_CACHE_DIR):
    """The ONNX export of a checkpoint or ensemble, made on first use and kept under `cache_dir/onnx`, keyed by
    the file's content and the code that exports it (the bundled models ship as `.pt` only; the export is
    deterministic)."""
    model_path = Path(model_path)
    key = hashlib.sha1("".join(file_digest(path) for path in [model_path, *EXPORTING_CODE]).encode()).hexdigest()
    out = Path(cache_dir) / "onnx" / f"{model_path.stem}-{key[:16]}.onnx"
    if not out.is_file():
        make_onnx_export(model_path, out)
    return out


def make_onnx_export(model_path, out):
    """Write the ONNX export of a model file to `out` (genrekit.export), saying so."""
    from .export import export_onnx  # torch, loaded only to export: predicting from the export needs none

    log.info("%s: exporting it to ONNX once, for onnxruntime (%s)", model_path, out)
    export_onnx(model_path, out)


def cached_onnx_scorer(model_path, cache_dir=DEFAULT_CACHE_DIR):
    """(scorer, export path) of the cached ONNX export of a checkpoint or ensemble (`cached_onnx_export`);
    an export that onnxruntime cannot read (damaged in the cache) is made again."""
    out = cached_onnx_export(model_path, cache_dir)
    try:
        return load_scorer(out), out
    except GenrekitError as error:
        log.warning("%s; exporting it again", error)
        make_onnx_export(model_path, out)
        return load_scorer(out), out


def onnxruntime_available():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _refuse_architecture(name):
    """An architecture's name given where a trained model is expected: say how to train one."""
    from .models import list_models  # torch: only on this error path

    if name in list_models():
        raise GenrekitError(f"{name}: an architecture, not a trained model; train one with `genrekit train "
                            f"--architecture {name} --data DATASET --out runs` and give runs/{name}.pt, or use a "
                            f"bundled model ({', '.join(BUNDLED_MODELS)})")


def load(model=None, *, backend="auto", max_windows=None, max_seconds=None):
    """A `Classifier` for a checkpoint, ensemble or exported `.onnx` file, or for a bundled model by name
    (`BUNDLED_MODELS`; None is "default").

    backend: "torch", "onnx", or "auto" (onnxruntime for `.onnx` files, and for bundled models when
    onnxruntime is installed, exported on first use; torch otherwise). max_windows, max_seconds: see `Classifier`.
    """
    if backend not in ("auto", "torch", "onnx"):
        raise ParameterError(f"backend must be auto, torch or onnx, got {backend!r}")
    name = "default" if model is None else str(model)
    if name in BUNDLED_MODELS and not Path(name).exists():
        path = BUNDLED_MODELS[name]
        if not path.is_file():
            raise GenrekitError(f"{path}: the bundled {name} model is missing (make it with genrekit train-bundled)")
        if backend == "onnx" or (backend == "auto" and onnxruntime_available()):
            try:
                scorer, export = cached_onnx_scorer(path)
                return Classifier(scorer, export, name, max_windows, max_seconds)
            except OSError as error:  # e.g. a read-only cache folder
                if backend == "onnx":
                    raise GenrekitError(f"{path}: cannot write its ONNX export ({error})") from None
                log.warning("%s: no ONNX export (%s); running it with torch", path, error)
    else:
        path = Path(model)
        name = str(model)
        if not path.exists():
            _refuse_architecture(name)
    if path.suffix == ".onnx" and backend == "torch":
        raise ParameterError(f"{path}: an ONNX file runs with onnxruntime, not torch")
    if path.suffix != ".onnx" and backend == "onnx":
        raise ParameterError(f"{path}: export it first (genrekit export {path} --onnx out.onnx)")
    return Classifier(load_scorer(path), path, name, max_windows, max_seconds)
