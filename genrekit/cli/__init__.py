"""The `genrekit` command: it parses, calls genrekit's API and prints; each module holds a group of commands."""

import logging
import os
import sys

from ..exceptions import GenrekitError
from . import data, research, songs  # noqa: F401 - registering their commands
from .common import app


def main():
    """Entry point: run the app, turning genrekit's errors, and files that cannot be written or read, into one
    line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("genrekit").setLevel(logging.INFO)  # genrekit's notes (a first-use export); --quiet: none
    try:
        app()
    except GenrekitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # e.g. an output in a folder that may not be written, or a full disk
        where = f"{os.fsdecode(error.filename)}: " if error.filename is not None else ""
        print(f"error: {where}{(error.strerror or str(error)).lower()}", file=sys.stderr)
        sys.exit(2)
