"""Files named by their content: the SHA-1 that keys cached features, exports and library rows."""

import hashlib
import os
from functools import lru_cache


def clip_id(track):
    """A name of a clip's audio that survives copies and moves: its file's SHA-1 (16 digits), and its span."""
    digest = file_digest(track.path)[:16]
    return digest if track.start is None else f"{digest}@{track.start:g}-{track.end:g}"


def clip_ids(tracks):
    """The sorted `clip_id`s of tracks (those a model learned from, for `genrekit.checkpoints.seen_clips`)."""
    return sorted({clip_id(track) for track in tracks})


def file_digest(path):
    """SHA-1 of a file's content, computed once per process for a file of the same size and time."""
    stat = os.stat(path)
    return _digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=65536)
def _digest(path, size, mtime_ns):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()
