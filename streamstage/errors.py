"""Exceptions a user can act on.

The CLI prints the message of any :class:`StreamstageError` as one line and exits non-zero; anything else
is a bug and keeps its traceback. Messages say what is wrong and what to do about it.
"""


class StreamstageError(Exception):
    """Base class of every expected failure."""


class InputFileError(StreamstageError):
    """A file to read is missing, unreadable, truncated or of the wrong kind."""


class ChannelError(StreamstageError):
    """A requested channel or derivation does not exist in the source."""


class HypnogramError(StreamstageError):
    """A hypnogram cannot be read or does not fit its recording."""


class StreamError(StreamstageError):
    """An LSL stream cannot be found, opened or kept."""


class ModelError(StreamstageError):
    """A model checkpoint cannot be loaded or does not fit the input."""


class ResumeError(StreamstageError):
    """A saved night cannot be resumed (other model, other version, damaged state)."""


class OutputError(StreamstageError):
    """The output folder cannot be written, or would overwrite a night."""


class ConfigError(StreamstageError):
    """A configuration file or option is invalid."""
