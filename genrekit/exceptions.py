"""The exceptions genrekit raises: one base class, one subclass per kind of bad input."""


class GenrekitError(Exception):
    """Base class of every error genrekit raises on purpose."""


class ParameterError(GenrekitError, ValueError):
    """A bad argument: the message names the value and what was expected."""


class AudioError(GenrekitError):
    """An audio file that cannot be used; the message names the file and the reason."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(GenrekitError):
    """A dataset folder, manifest or split list that cannot be read as asked."""
