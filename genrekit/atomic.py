"""Writing files so that a crash never leaves a half-written one: write a temporary file, then rename."""

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.
    A folder at `path` is refused at once (`IsADirectoryError`), before any work."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file to write", str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder to write in", error.filename) from None
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:  # named by the file asked for, not its temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    os.close(handle)
    try:
        yield Path(temp)
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def write_text(path, text):
    """Write a text file atomically and return its path."""
    with atomic_path(path) as temp:
        temp.write_text(text)
    return Path(path)
