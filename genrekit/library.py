"""Tagging a whole music library: every audio file under a folder gets its genre, kept in a SQLite table.

The table (`tracks`) has one row per file, keyed by its absolute path, with the file's size, modification
time and SHA-1, the model that classified it, the top genre, the probabilities (JSON) and the error text
(NULL when the file was fine). Each finished file is committed at once from the main process (WAL mode), so
a run that is killed loses at most the files in flight, and the next run continues: a file whose path,
size, modification time and model match its row is skipped; a file whose content (SHA-1) is already in the
table for the same model (a copy, a moved or renamed file, a touched one) reuses that result. Rows of files
that are gone from the folder are removed when a run completes. A path that is not valid UTF-8 (Latin-1
names of old collections) is kept as its bytes (a BLOB), every other one as text.

Genre tags are written into the files only when asked (`write_tags=True`): on a copy beside the file, with
mutagen, and the copy replaces the original only when it still decodes to the same number of frames. Copies
left by a killed run are never taken for tracks and are removed by the next run. Links to files outside
the folder and files with several hard links are left untagged (the copy would replace only one name).
"""

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple


from .atomic import atomic_path
from .audio import audio_info
from .checkpoints import load_scorer
from .constants import AUDIO_EXTENSIONS
from .datasets.folder import scan_folder
from .digest import file_digest
from .exceptions import AudioError, GenrekitError, ParameterError, printable
from .predict import Classifier
from .parallel import submit_bounded, worker_pool
from .progress import progress_bar

SCHEMA_VERSION = 2
"""1: no `warning` column (added on opening)."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha1 TEXT,
    model_id TEXT NOT NULL,
    genre TEXT,
    probabilities TEXT,
    error TEXT,
    warning TEXT,
    tag TEXT,
    tagged_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_sha1 ON tracks (sha1);
"""
COLUMNS = ("path", "size", "mtime_ns", "sha1", "model_id", "genre", "probabilities", "error", "warning", "tag",
           "tagged_at")
UPSERT = (f"INSERT INTO tracks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
          f"ON CONFLICT(path) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[1:])}")
EXPORT_FORMATS = ("csv", "json")
EXPORT_FIELDS = ("path", "genre", "status", "confidence", "top3", "error", "warning", "size", "mtime", "sha1",
                 "model_id", "tagged_at", "tag")
EXPORT_STARTS = {"csv": (b"path,genre",), "json": (b'[\n {\n  "path": ', b"[]\n")}
"""How the exports of each format begin: an existing file that begins otherwise is never overwritten."""
CRASH_REASON = "the worker process crashed while decoding or classifying this file"


GENRE_NAMES = {"hiphop": "Hip-Hop", "rnb_soul": "R&B/Soul"}
"""How a label is written into a file's genre tag where its title case would not do (`display_genre`)."""
REPLACED = "written, was: "
"""How the table's `tag` column begins for a file whose genre `force_tags` replaced, the old one after it."""


def display_genre(label, names=None):
    """The genre as written into tags, as people and players spell it: `rock` -> Rock, `hiphop` -> Hip-Hop;
    `names` (label -> name) overrides `GENRE_NAMES`."""
    return {**GENRE_NAMES, **(names or {})}.get(label, label.replace("_", " ").title())


class TagError(GenrekitError):
    """A genre tag that could not be written; `unsupported` when the format has no genre tag at all."""

    def __init__(self, path, reason, unsupported=False):
        self.path, self.reason, self.unsupported = str(path), reason, unsupported
        super().__init__(f"{self.path}: {reason}")


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
        if self.warnings:
            text += f"; {len(self.warnings)} scored on what decodes (truncated)"
        if self.uncertain:
            text += f"; {self.uncertain} uncertain (no genre: top genre below --min-confidence)"
        if self.removed:
            text += f"; {self.removed} rows of vanished files removed"
        if self.not_scanned:
            text += f"; {len(self.not_scanned)} not scanned (dangling links, symlink loops, unreadable folders)"
        if self.partial_copies_removed:
            text += f"; {self.partial_copies_removed} tagging copies left by a killed run removed"
        return text


def _key(path):
    """A path as stored in the table: text, or its bytes when it is not valid UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _rows(conn, query, *args):
    """The rows of a query as dicts, with their paths as `os.fsdecode` text (see `_key`)."""
    return [dict(row, path=os.fsdecode(row["path"])) for row in conn.execute(query, *args)]


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


# ---------------------------------------------------------------------------------------------- model id


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


# ---------------------------------------------------------------------------------------------- classifying


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


_WORKER_CLASSIFIER = None


def worker_classifier(model_path, **settings):
    """The classifier a worker process of an engine runs (`settings`: a `Classifier`'s): onnxruntime (for an
    `.onnx` file) with one thread, as torch has one in workers, so that a worker per core does not
    oversubscribe the cores."""
    return Classifier(load_scorer(model_path, threads=1), model_path, **settings)


def _init_worker(model_path, settings):
    global _WORKER_CLASSIFIER
    _WORKER_CLASSIFIER = worker_classifier(model_path, **settings)


def _work(path):
    return classify(_WORKER_CLASSIFIER, path)


def _run_in_process(jobs, classifier, handle):
    for job in jobs:
        handle(job, classify(classifier, job.path))


def _drain(queue):
    while queue:
        yield queue.popleft()


def _run_pool(jobs, classifier, workers, handle):
    """Classify `jobs` in a process pool, at most 2 per worker in flight, handing each result to `handle` as
    it arrives. When a worker dies (a decoder crash), the files that were in flight are retried one at a
    time in a fresh pool; a file that kills a worker on its own is recorded as failed."""
    jobs, suspects = iter(jobs), deque()
    while True:
        pool, crashed = worker_pool(workers, _init_worker, (str(classifier.source), classifier.settings)), []
        try:
            for source, limit in ((_drain(suspects), 1), (jobs, 2 * workers)):
                for job, future in submit_bounded(pool, _work, source, limit, arg=lambda job: job.path):
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashed.append(job)
                        continue
                    handle(job, result)
                if crashed:
                    break
        finally:
            pool.shutdown(wait=not crashed, cancel_futures=True)
        if not crashed:
            return
        if len(crashed) == 1:
            handle(crashed[0], Classified(error=CRASH_REASON))
        else:
            suspects.extend(crashed)


def run_local(jobs, count, classifier, workers, handle):
    """The default engine of `tag_library`: classify `jobs` (`count` at most) on this machine, handing each
    (job, result) to `handle` as it finishes: in this process with one worker, else in a pool of `workers`
    processes (default: one per core)."""
    workers = max(1, min(workers or os.cpu_count() or 1, count))
    if workers == 1:
        _run_in_process(jobs, classifier, handle)
    else:
        _run_pool(jobs, classifier, workers, handle)


# ---------------------------------------------------------------------------------------------- database


def _connect(db_path):
    db_path = Path(db_path)
    if not db_path.parent.is_dir():  # a mistyped folder is not made silently
        raise GenrekitError(f"{db_path}: its folder {db_path.parent} does not exist (create it first)")
    try:
        conn = sqlite3.connect(db_path, timeout=60)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            conn.close()
            raise GenrekitError(f"{db_path}: library database of an unknown version ({version})")
        conn.executescript(SCHEMA)
        if version == 1:
            conn.execute("ALTER TABLE tracks ADD COLUMN warning TEXT")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(f"SELECT {', '.join(COLUMNS)} FROM tracks LIMIT 1")
    except sqlite3.DatabaseError as error:
        raise GenrekitError(f"{db_path}: not a usable library database ({error})") from None
    return conn


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_rows(db_path):
    db_path = Path(db_path)
    if not db_path.is_file():
        raise GenrekitError(f"{db_path}: library database not found")
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return _rows(conn, "SELECT * FROM tracks ORDER BY path")
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise GenrekitError(f"{db_path}: not a library database ({error})") from None


# ---------------------------------------------------------------------------------------------- tagging


def tag_library(root, db_path, classifier, *, workers=None, engine=run_local, progress=True, write_tags=False,
                retry_failed=False, min_confidence=0.0, force_tags=False, dry_run=False, genre_names=None):
    """Classify every audio file under `root` (recursively) into the SQLite table at `db_path`.

    `classifier` is a `genrekit.predict.Classifier`; with more than one worker each process loads it again
    from `classifier.source`. `engine` classifies the files that need it (`run_local`: this machine's
    processes; `genrekit.distributed.run_ray`: a Ray cluster's), `workers` at once (None: the engine's
    default), while this process hashes them and commits each result as it comes. Files unchanged since a
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
                engine(jobs(), len(todo), classifier, workers, record)
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


def _tag_refusal(root, path, stat):
    """Why `path` is left untagged on purpose ("skipped: ..."), or None."""
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != str(root):
        return f"skipped: a link to {printable(target)}, outside {printable(root)}"
    if stat.st_nlink > 1:
        return f"skipped: {stat.st_nlink} hard links to this file (a tagged copy would replace only this one)"
    return None


def _write_tags(conn, root, files, summary, progress, *, force=False, dry_run=False, names=None):
    """Write the genre into every classified file with a genre whose tag is not written yet (or failed or was
    kept before), except links out of `root`, hard-linked files and (unless `force`) files with a genre."""
    rows = {row["path"]: row for row in _rows(conn, (
        "SELECT * FROM tracks WHERE error IS NULL AND genre IS NOT NULL AND (tag IS NULL OR tag LIKE 'failed%' "
        "OR tag LIKE 'kept%')"))}
    pending = [rows[path] for path in files if path in rows]
    for row in progress_bar(pending, desc="writing tags", unit="file", enabled=progress and bool(pending)):
        path = row["path"]
        try:
            stat = os.stat(path)
            if (stat.st_size, stat.st_mtime_ns) != (row["size"], row["mtime_ns"]):
                continue  # changed since it was classified: the next run classifies it again
            refusal = _tag_refusal(root, path, stat)
            if refusal:
                summary.tag_problems.append((path, refusal))  # not stored: looked at again on every run
                continue
            genre = display_genre(row["genre"], names)
            had = existing_genres(path)
            replaced = "; ".join(had) if had and had != [genre] else ""
            if replaced and not force:
                status = f"kept: it has genre {replaced!r} (--force-tags replaces it)"
            elif dry_run:
                status = f"would write: {genre}" + (f" (replacing {replaced!r})" if replaced else "")
            else:
                status = None
            if status:
                summary.tag_problems.append((path, status))
                summary.tags_written += status.startswith("would write")
                if not dry_run:
                    with conn:
                        conn.execute("UPDATE tracks SET tag = ? WHERE path = ?", (status, _key(path)))
                continue
            changed = write_genre_tag(path, genre)
        except TagError as error:
            status = f"unsupported: {error.reason}" if error.unsupported else f"failed: {error.reason}"
            summary.tag_problems.append((path, status))
            if not dry_run:
                with conn:
                    conn.execute("UPDATE tracks SET tag = ? WHERE path = ?", (status, _key(path)))
            continue
        except OSError as error:
            summary.tag_problems.append((path, f"failed: {error.strerror or error}"))
            continue
        summary.tags_written += changed
        _store_tag(conn, path, f"{REPLACED}{replaced}" if replaced else "written", None if changed else row)


def _store_tag(conn, path, tag, unchanged=None):
    """Record a tag written into the file at `path` (`tag`: what the table's `tag` column says), with the size,
    time and hash the file has now: those of its row `unchanged` when writing left it as it was."""
    if unchanged is None:
        stat = os.stat(path)
        size, mtime_ns, sha1 = stat.st_size, stat.st_mtime_ns, file_digest(path)
    else:
        size, mtime_ns, sha1 = unchanged["size"], unchanged["mtime_ns"], unchanged["sha1"]
    with conn:
        conn.execute("UPDATE tracks SET tag = ?, size = ?, mtime_ns = ?, sha1 = ? WHERE path = ?",
                     (tag, size, mtime_ns, sha1, _key(path)))


def restore_tags(root, db_path, *, progress=True):
    """Put back the genre tags `force_tags` replaced in the files under `root` (the table keeps each), where the
    file is unchanged since genrekit wrote its tag; returns [(path, what happened)]."""
    root = Path(root).resolve()
    conn = _connect(db_path)
    done = []
    try:
        rows = [row for row in _rows(conn, "SELECT * FROM tracks WHERE tag LIKE ?", (f"{REPLACED}%",))
                if os.path.commonpath([str(root), row["path"]]) == str(root)]
        for row in progress_bar(rows, desc="restoring tags", unit="file", enabled=progress and bool(rows)):
            path, before = row["path"], row["tag"][len(REPLACED):]
            try:
                stat = os.stat(path)
                if (stat.st_size, stat.st_mtime_ns) != (row["size"], row["mtime_ns"]):
                    done.append((path, "left alone: changed since its tag was written"))
                    continue
                write_genre_tag(path, before)
            except (TagError, OSError) as error:
                done.append((path, f"failed: {getattr(error, 'reason', error)}"))
                continue
            _store_tag(conn, path, f"restored: {before}")
            done.append((path, f"restored: {before}"))
    finally:
        conn.close()
    return done


def _frames(path):
    try:
        return audio_info(path).frames
    except AudioError:
        return None


def _genre_key(audio):
    """The genre field's name in mutagen's dict-like tags: WMA (ASF) has no easy interface."""
    from mutagen.asf import ASF

    return "WM/Genre" if isinstance(audio, ASF) else "genre"


def _genres_in(audio):
    from mutagen.id3 import ID3

    if audio.tags is None:
        return []
    if isinstance(audio.tags, ID3):
        return [text for frame in audio.tags.getall("TCON") for text in frame.text]
    return [str(value) for value in audio.tags.get(_genre_key(audio), [])]


def _set_genre(audio, path, genre):
    from mutagen import MutagenError
    from mutagen.id3 import ID3, TCON

    if audio.tags is None:
        try:
            audio.add_tags()
        except MutagenError as error:  # e.g. a raw AAC stream, which has no tags
            raise TagError(path, f"{Path(path).suffix} files cannot hold tags ({error})", True) from None
    if isinstance(audio.tags, ID3):  # WAV and AIFF: an ID3 chunk, without mutagen's easy interface
        audio.tags.setall("TCON", [TCON(encoding=3, text=[genre])])
        return
    try:
        audio.tags[_genre_key(audio)] = [genre]
    except (KeyError, TypeError, ValueError) as error:
        raise TagError(path, f"{Path(path).suffix} tags have no genre field ({error})", True) from None


def _open_tags(path, shown):
    """mutagen's view of the tags of the file at `path` (None: a format mutagen does not know); TagError naming
    `shown` when they cannot be read."""
    import mutagen

    try:
        return mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as error:
        raise TagError(shown, f"cannot read its tags ({error})") from None


def existing_genres(path):
    """The genres a file's tags hold already ([] for none, or a format without tags)."""
    audio = _open_tags(path, path)
    return [] if audio is None else [genre for genre in _genres_in(audio) if genre.strip()]


def write_genre_tag(path, genre):
    """Set the genre tag of an audio file; True when the file changed, False when it had that genre already.

    The tag is written to a copy in the same folder (`.NAME.xxxxxxxx.tagging.EXT`, which folder scans never
    take for a track), which replaces the original (`os.replace`) only once it reads back with the new genre
    and decodes to as many frames as before, so the file is never left half-written. A link is followed and
    its target tagged; a file with several hard links gets a new inode under this name, the other names
    keep the old file (`tag_library` leaves such files untagged). Raises `TagError` (with
    `unsupported=True` for formats without a genre tag).
    """
    import mutagen

    path = Path(os.path.realpath(path))

    def open_tags(target):
        return _open_tags(target, path)

    audio = open_tags(path)
    if audio is None:
        raise TagError(path, f"mutagen cannot tag {path.suffix or 'extension-less'} files", True)
    if _genres_in(audio) == [genre]:
        return False
    frames = _frames(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tagging{path.suffix}")
    os.close(handle)
    temp = Path(temp)
    try:
        shutil.copy2(path, temp)
        copy = open_tags(temp)
        _set_genre(copy, path, genre)
        try:
            copy.save()
        except (mutagen.MutagenError, OSError, ValueError) as error:
            raise TagError(path, f"writing the tag failed ({error})") from None
        if _genres_in(open_tags(temp)) != [genre]:
            raise TagError(path, "the tag did not read back; file left untouched")
        if _frames(temp) != frames:
            raise TagError(path, "the tagged copy no longer decodes as before; file left untouched")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------------------------------------- export


def check_export_target(out_path, fmt, db_path):
    """Raise `GenrekitError` ("OUT: reason") unless `out_path` may receive an export in `fmt`: never the
    database (or its -wal/-shm/-journal files), a name with an audio extension, a folder, or an existing
    file that is not an earlier export in the same format."""
    out_path, db_path = Path(out_path), Path(db_path).resolve()
    target = out_path.resolve()
    if target in [db_path] + [db_path.with_name(db_path.name + end) for end in ("-wal", "-shm", "-journal")] or (
            out_path.exists() and db_path.exists() and os.path.samefile(out_path, db_path)):
        raise GenrekitError(f"{out_path}: is the library database (or one of its files); export elsewhere")
    if out_path.suffix.lower() in AUDIO_EXTENSIONS:
        raise GenrekitError(f"{out_path}: an audio file name; export to a .{fmt} file")
    if out_path.is_dir():
        raise GenrekitError(f"{out_path}: is a folder; give a file name")
    if out_path.exists():
        with open(out_path, "rb") as handle:
            start = handle.read(32)
        if not start.startswith(EXPORT_STARTS[fmt]):
            raise GenrekitError(f"{out_path}: exists and is not an earlier {fmt} export; not overwritten")


def export_library(db_path, out_path, fmt=None):
    """Write the library table as CSV or JSON (format from `fmt`, else from the file's suffix), atomically,
    to a file `check_export_target` allows.

    CSV has one column per genre (`p_<genre>`); JSON has the probabilities as an object. Paths that are not
    valid UTF-8 are written as their own bytes in CSV (errors='surrogateescape': read it back with that
    handler and `os.fsencode` gives the file name) and as `\\udcNN` escapes in JSON (errors='backslashreplace'
    keeps the file valid UTF-8; `json` reads them back as the surrogate-escaped name). Returns the number
    of rows written.
    """
    out_path = Path(out_path)
    fmt = (fmt or out_path.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    check_export_target(out_path, fmt, db_path)
    records = []
    for row in _read_rows(db_path):
        probabilities = json.loads(row["probabilities"]) if row["probabilities"] else {}
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])[:3]
        status = "failed" if row["error"] else "tagged" if row["genre"] else "uncertain"
        records.append({
            "path": row["path"], "genre": row["genre"], "status": status,
            "confidence": ranked[0][1] if ranked else None,
            "top3": " ".join(f"{genre}:{p:.3f}" for genre, p in ranked),
            "error": row["error"], "warning": row["warning"], "size": row["size"],
            "mtime": datetime.fromtimestamp(row["mtime_ns"] / 1e9, timezone.utc).isoformat(timespec="seconds"),
            "sha1": row["sha1"], "model_id": row["model_id"], "tagged_at": row["tagged_at"], "tag": row["tag"],
            "probabilities": probabilities})
    if fmt == "json":
        text = json.dumps(records, indent=1, ensure_ascii=False) + "\n"
    else:
        labels = list(dict.fromkeys(label for record in records for label in record["probabilities"]))
        buffer = io.StringIO()
        fields = list(EXPORT_FIELDS)
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields + [f"p_{label}" for label in labels])
        for record in records:
            writer.writerow([("" if record[name] is None else record[name]) for name in fields]
                            + [record["probabilities"].get(label, "") for label in labels])
        text = buffer.getvalue()
    with atomic_path(out_path) as temp:
        temp.write_text(text, encoding="utf-8", errors="backslashreplace" if fmt == "json" else "surrogateescape")
    return len(records)
