"""EEAP's version, read from the installed package's metadata: ``pyproject.toml`` is the one place it is written."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eeap")
except PackageNotFoundError:  # the source folder imported without being installed
    __version__ = "0+unknown"
