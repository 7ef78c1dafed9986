"""Genre tags in the files themselves (mutagen): read, written on a copy that replaces the file only when it
still decodes alike, kept where the user set one (unless forced), and put back (`restore_tags`)."""

import os
import shutil
import tempfile
from pathlib import Path

from ..audio import audio_info
from ..digest import file_digest
from ..exceptions import AudioError, GenrekitError, printable
from ..progress import progress_bar
from .database import _connect, _key, _rows


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
