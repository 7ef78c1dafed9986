"""The library table in SQLite: its schema, reading and writing rows, and exports to CSV and JSON.

One row per file, keyed by its absolute path (a path that is not valid UTF-8 is kept as its bytes, a BLOB),
with the file's size, modification time and SHA-1, the model that classified it, the top genre, the
probabilities (JSON), the error or warning text and what was done to its genre tag.
"""

import csv
import io
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_path
from ..constants import AUDIO_EXTENSIONS
from ..exceptions import GenrekitError, ParameterError


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
