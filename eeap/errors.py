"""Errors that reach the user as one line and a non-zero exit, never as a traceback."""


class EEAPError(Exception):
    """Base of every error caused by the user's input (config, command line, data files)."""


class ConfigError(EEAPError):
    """A config key, value, type or component name is wrong."""


class DataError(EEAPError):
    """A data file is missing or malformed, or an input cannot be processed."""


def one_line(error: Exception) -> str:
    """The first line of an exception's message."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
