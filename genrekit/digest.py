"""Files named by their content: the SHA-1 that keys cached features, exports and library rows."""

import hashlib
import os
from functools import lru_cache


def file_digest(path):
    """SHA-1 of a file's content, computed once per process for a file of the same size and time."""
    stat = os.stat(path)
    return _digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=65536)
def _digest(path, size, mtime_ns):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()
