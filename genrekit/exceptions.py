"""The exceptions genrekit raises: one base class, one subclass per kind of bad input; and how a file name that
is not UTF-8 is shown to people."""

import os


def printable(text):
    """A path (or text naming one) that can be printed and drawn anywhere: bytes that are not UTF-8 (decoded
    by Python as lone surrogates) shown as `\\xNN`."""
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that stand for no byte
        return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


class GenrekitError(Exception):
    """Base class of every error genrekit raises on purpose."""


class ParameterError(GenrekitError, ValueError):
    """A bad argument: the message names the value and what was expected."""


class AudioError(GenrekitError):
    """An audio file that cannot be used; the message names the file and the reason."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable(self.path)}: {reason}")


class TooLong(AudioError):
    """An audio file longer than the limit asked for (`max_seconds`): not bad audio, too much of it."""


class Truncated(AudioError):
    """An audio file cut so short that too little of it decodes to use (`genrekit.audio.MIN_DECODED_SECONDS`)."""


class DatasetError(GenrekitError):
    """A dataset folder, manifest or split list that cannot be read as asked."""
