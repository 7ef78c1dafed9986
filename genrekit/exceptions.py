"""The exceptions genrekit raises: one base class, one subclass per kind of bad input; and how a file name that
is not UTF-8 is shown to people."""


def printable(text):
    """`text` with what cannot be shown escaped: the bytes of a file name that are not UTF-8 (which Python
    decodes as lone surrogates) as `\\xe9`."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that stand for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


class DatasetError(GenrekitError):
    """A dataset folder, manifest or split list that cannot be read as asked."""
