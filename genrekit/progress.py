"""Progress of long work on stderr: a tqdm bar (count, rate, ETA) on a terminal, one line every
`LOG_INTERVAL` seconds where stderr is a log or a pipe, nothing with `genrekit --quiet` (GENREKIT_QUIET=1)."""

import os
import sys

from tqdm import tqdm

LOG_INTERVAL = 30.0
"""Seconds between the lines of a bar written to a log."""


class _Lines:
    """stderr for a bar that is not on a terminal: each update a line of its own, without carriage returns."""

    def write(self, text):
        text = text.replace("\r", "").strip()
        if text:
            sys.stderr.write(text + "\n")

    def flush(self):
        sys.stderr.flush()


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: workers may be forked while a bar is shown


def quiet():
    """Whether progress is turned off (`genrekit --quiet` sets GENREKIT_QUIET, which worker processes inherit)."""
    return os.environ.get("GENREKIT_QUIET", "") not in ("", "0")


def progress_bar(iterable=None, *, total=None, desc=None, unit="item", enabled=True, initial=0):
    """A bar over `iterable` (or of `total` steps: call `update`), shown when `enabled` and not `quiet()`."""
    terminal = sys.stderr.isatty()
    return _Bar(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=not enabled or quiet(),
                file=None if terminal else _Lines(), mininterval=0.1 if terminal else LOG_INTERVAL,
                dynamic_ncols=terminal)
