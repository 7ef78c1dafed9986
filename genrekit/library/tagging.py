"""Classifying every audio file under a folder into the library table: what is new or changed, by the
engine (`genrekit.engine`: this machine's processes or Ray), each result committed as it comes."""

import hashlib
import json
import os
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..checkpoints import load_scorer
from ..datasets.folder import scan_folder
from ..digest import file_digest
from ..engine import run_work
from ..exceptions import AudioError, GenrekitError, ParameterError
from ..predict import Classifier
from ..progress import progress_bar
from .database import UPSERT, _connect, _key, _now, _rows
from .tags import _write_tags


CRASH_REASON = "the worker process crashed while decoding or classifying this file"


@dataclass
class LibrarySummary:
    """What a `tag_library` run did."""

    total: int = 0
    """audio files found under the folder"""
    tagged: int = 0
    """classified in this run"""
    reused: int = 0
    """given the result of a file with the same content (copy, move, touch) without classifying"""
    skipped: int = 0
    """unchanged since a run with the same model: left as they were"""
    failed: int = 0
    """failed in this run"""
    unchanged_failed: int = 0
    """failed in an earlier run and unchanged since (not retried unless `retry_failed`)"""
    failures: list = field(default_factory=list)
    """(path, reason) of every file that has no genre, sorted by path"""
    warnings: list = field(default_factory=list)
    """(path, warning) of the files classified in this run on part of their audio (truncated), sorted by path"""
    removed: int = 0
    """rows of files no longer under the folder, deleted"""
    uncertain: int = 0
    """classified files whose top genre is below the run's `min_confidence`: no genre given"""
    tags_written: int = 0
    """genre tags written (with `dry_run`: that would be)"""
    tag_problems: list = field(default_factory=list)
    """(path, reason) of files whose genre tag could not be written ("failed: ..."), or was not on purpose
    ("unsupported: ..." formats, "skipped: ..." links out of the folder and hard-linked files, "kept: ..." a
    genre already in the file, replaced only with `force_tags`; with `dry_run`, "would write: ..." too)"""
    not_scanned: list = field(default_factory=list)
    """(path, reason) of dangling links, symlink loops and unreadable folders under the folder"""
    partial_copies_removed: int = 0
    """tagging copies left by a killed `write_tags` run, deleted"""

    @property
    def ok(self):
        """True when everything under the folder could be looked at, every file has a genre and every
        asked-for tag that the format supports was written."""
        return not self.failures and not self.not_scanned and all(
            reason.startswith(("unsupported", "skipped", "kept", "would write")) for _, reason in self.tag_problems)

    def line(self):
        text = (f"{self.total} audio files: {self.tagged} tagged, {self.reused} reused (same content), "
                f"{self.skipped} unchanged, {self.failed + self.unchanged_failed} failed")
        if self.unchanged_failed:
            text += f" ({self.unchanged_failed} unchanged since an earlier run)"
        notes = ((len(self.warnings), "scored on what decodes (truncated)"),
                 (self.uncertain, "uncertain (no genre: top genre below --min-confidence)"),
                 (self.removed, "rows of vanished files removed"),
                 (len(self.not_scanned), "not scanned (dangling links, symlink loops, unreadable folders)"),
                 (self.partial_copies_removed, "tagging copies left by a killed run removed"))
        text += "".join(f"; {count} {what}" for count, what in notes if count)
        return text


class _Job(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    sha1: str


class Classified(NamedTuple):
    """What classifying one file gave: its genre and probabilities (JSON), or the error that stopped it; a
    `warning` for a file scored on part of its audio."""

    genre: str | None = None
    probabilities: str | None = None
    error: str | None = None
    warning: str | None = None


def model_id(classifier):
    """Identifies the model: the SHA-1 of its file, or of its member names and labels when it has none, and
    the windows it scores when they are sampled (`Classifier.max_windows`)."""
    source = Path(classifier.source)
    if source.is_file():
        digest = file_digest(source)
    else:
        spec = json.dumps({"members": classifier.member_names, "labels": list(classifier.labels)})
        digest = hashlib.sha1(spec.encode()).hexdigest()
    return digest if classifier.max_windows is None else f"{digest}/windows={classifier.max_windows}"


def classify(classifier, path):
    """`Classified` of one file; a bad file gives its reason, never an exception."""
    try:
        prediction = classifier.predict(path)
    except AudioError as error:
        return Classified(error=error.reason)
    except GenrekitError as error:
        return Classified(error=str(error))
    except OSError as error:
        return Classified(error=f"cannot read ({error.strerror or error})")
    except Exception as error:  # noqa: BLE001 - one odd file must not stop a library-wide run
        return Classified(error=f"unexpected error: {type(error).__name__}: {error}")
    probabilities = {label: round(float(p), 6) for label, p in zip(prediction.labels, prediction.probabilities)}
    return Classified(prediction.genre, json.dumps(probabilities), None, prediction.warning)


_LOADED = weakref.WeakValueDictionary()
"""The classifiers `ClassifyFiles.of` was made from, by (process id, their id): the one run in-process."""


@dataclass(frozen=True)
class ClassifyFiles:
    """The work of tagging (a `genrekit.engine.Work`): each job's file classified by the model, whose file's
    bytes travel with the work (no shared model file needed on a cluster) with the classifier's settings."""

    suffix: str
    model: bytes
    settings: tuple
    home: tuple
    """(process id, the classifier's id) where it was made: there that classifier is used"""

    @classmethod
    def of(cls, classifier):
        source, home = Path(classifier.source), (os.getpid(), id(classifier))
        _LOADED[home] = classifier
        return cls(source.suffix, source.read_bytes(), tuple(classifier.settings.items()), home)

    def setup(self):
        """The classifier: in the process that made the work, the one it was made from; elsewhere loaded from
        the shipped bytes, run by onnxruntime (for `.onnx` files) with one thread, as torch has one in
        workers, so that a worker per core does not oversubscribe the cores."""
        here = _LOADED.get(self.home) if self.home[0] == os.getpid() else None
        if here is not None:
            return here
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"model{self.suffix}"
            path.write_bytes(self.model)
            return Classifier(load_scorer(path, threads=1), path, **dict(self.settings))

    def run(self, classifier, job):
        return classify(classifier, job.path)

    def crashed(self, job):
        return Classified(error=CRASH_REASON)


def tag_library(root, db_path, classifier, *, workers=None, engine="local", address=None, progress=True,
                write_tags=False, retry_failed=False, min_confidence=0.0, force_tags=False, dry_run=False,
                genre_names=None):
    """Classify every audio file under `root` (recursively) into the SQLite table at `db_path`.

    `classifier` is a `genrekit.predict.Classifier`; with more than one worker each process loads it again
    (`ClassifyFiles`). `engine` classifies the files that need it (`genrekit.engine.run_work`: "local", this
    machine's processes, or "ray", the cluster at `address`), `workers` at once (None: the engine's default),
    while this process hashes them and commits each result as it comes. Files unchanged since a
    run with the same model are skipped (those that failed too, unless `retry_failed`). A file whose top
    genre is less likely than `min_confidence` gets no genre (it is "uncertain"; its probabilities stay in
    the table, and exports list its top 3); the threshold is applied to every row of the folder at the end
    of each run, so a new threshold needs no new classification. With `write_tags`, the genre is also
    written into each file's tags (uncertain files get none; see `write_genre_tag`): a file that has a genre
    already keeps it (the user's, or genrekit's from an earlier model) unless `force_tags`, and the genre it
    had is kept in the table's `tag` column (`written, was: ...`; `restore_tags` puts it back); `dry_run` says
    what would be written and writes nothing; `genre_names` (label -> name) overrides `GENRE_NAMES`. Tagging
    copies left by a killed run are removed first. Returns a `LibrarySummary`.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ParameterError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    root = Path(root).resolve()
    if not root.is_dir():
        raise GenrekitError(f"{root}: folder not found")
    scan = scan_folder(root)
    files = [str(path) for path in scan.files]
    model = model_id(classifier)
    summary = LibrarySummary(total=len(files), not_scanned=[(str(path), why) for path, why in scan.skipped])
    for copy in scan.partial_copies:
        copy.unlink(missing_ok=True)
        summary.partial_copies_removed += 1
    conn = _connect(db_path)
    try:
        known = {row["path"]: row for row in _rows(conn, "SELECT * FROM tracks")}
        reusable = {row["sha1"]: row for row in known.values()
                    if row["model_id"] == model and row["error"] is None and row["sha1"]}
        todo = []
        for path in files:
            try:
                stat = os.stat(path)
            except OSError as error:
                summary.failed += 1
                summary.failures.append((path, f"cannot read ({error.strerror or error})"))
                continue
            row = known.get(path)
            if (row is not None and row["size"] == stat.st_size and row["mtime_ns"] == stat.st_mtime_ns
                    and row["model_id"] == model and not (retry_failed and row["error"] is not None)):
                if row["error"] is None:
                    summary.skipped += 1
                else:
                    summary.unchanged_failed += 1
                    summary.failures.append((path, row["error"]))
                continue
            todo.append((path, stat))

        def record(job, result, reused=False):
            with conn:
                conn.execute(UPSERT, (_key(job.path), job.size, job.mtime_ns, job.sha1, model, result.genre,
                                      result.probabilities, result.error, result.warning, None, _now()))
            if result.warning:
                summary.warnings.append((job.path, result.warning))
            if reused:
                summary.reused += 1
            elif result.error is None:
                summary.tagged += 1
                reusable.setdefault(job.sha1, dict(result._asdict()))
            else:
                summary.failed += 1
                summary.failures.append((job.path, result.error))
            bar.update()

        def jobs():
            """Hash each file as it is about to be handed out; results for known content are reused."""
            for path, stat in todo:
                try:
                    sha1 = file_digest(path)
                except OSError as error:
                    record(_Job(path, stat.st_size, stat.st_mtime_ns, None),
                           Classified(error=f"cannot read ({error.strerror or error})"))
                    continue
                job = _Job(path, stat.st_size, stat.st_mtime_ns, sha1)
                same = reusable.get(sha1)
                if same is not None:
                    record(job, Classified(same["genre"], same["probabilities"], None, same["warning"]), reused=True)
                    continue
                yield job

        bar = progress_bar(total=len(todo), desc="tagging", unit="file", enabled=progress)
        bar.set_postfix(unchanged=summary.skipped + summary.unchanged_failed)
        try:
            if todo:
                run_work(ClassifyFiles.of(classifier), jobs(), record, count=len(todo), engine=engine,
                         workers=workers, address=address)
        finally:
            bar.close()

        under_root, present = str(root) + os.sep, set(files)
        gone = [path for path in known if path.startswith(under_root) and path not in present]
        with conn:
            conn.executemany("DELETE FROM tracks WHERE path = ?", [(_key(path),) for path in gone])
        summary.removed = len(gone)
        summary.uncertain = _apply_min_confidence(conn, files, min_confidence)
        if write_tags:
            _write_tags(conn, root, files, summary, progress, force=force_tags, dry_run=dry_run, names=genre_names)
    finally:
        conn.close()
    summary.failures.sort()
    summary.warnings.sort()
    summary.tag_problems.sort()
    return summary


def _apply_min_confidence(conn, files, min_confidence):
    """Give each classified file of `files` its top genre, or none when that is less likely than
    `min_confidence`; returns how many are left uncertain."""
    present, updates, uncertain = set(files), [], 0
    for row in _rows(conn, "SELECT path, genre, probabilities FROM tracks WHERE error IS NULL"):
        if row["path"] in present:
            probabilities = json.loads(row["probabilities"])
            top = max(probabilities, key=probabilities.get)
            genre = top if probabilities[top] >= min_confidence else None
            uncertain += genre is None
            if genre != row["genre"]:
                updates.append((genre, _key(row["path"])))
    with conn:
        conn.executemany("UPDATE tracks SET genre = ? WHERE path = ?", updates)
    return uncertain
