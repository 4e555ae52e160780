"""What EEAP's commands print beside their results: short lines on standard error, other libraries' chatter kept out.

``EEAP_DEBUG=1`` in the environment shows tracebacks above error lines and everything the libraries say (Lightning's
info lines, deprecation warnings from third-party code, W&B's banner), warnings with their file and line as Python
prints them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Any, Iterator

DEBUG_ENV = "EEAP_DEBUG"


def debugging() -> bool:
    """Whether ``EEAP_DEBUG`` asks for everything the libraries print."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def say(message: str) -> None:
    """One line for the person watching, on standard error (standard output carries a command's results)."""
    print(message, file=sys.stderr, flush=True)


def warning_line(message: Any, category: type, filename: str, lineno: int, line: Any = None) -> str:
    """A warning as one ``warning:`` line, without the file, line and category Python adds."""
    return f"warning: {message}\n"


_commands = 0  # how many commands are running in this process (command_warnings)


def hide_library_warnings() -> None:
    """Inside a command (and not ``EEAP_DEBUG``): deprecation and future warnings raised outside EEAP (Lightning's,
    torch's, W&B's: nothing a user of the command can act on) not shown, and warnings printed as ``warning:`` lines.
    Called again once Lightning is imported, which sets a filter and a format of its own."""
    if _commands and not debugging():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=r"(?!eeap\b)")
        warnings.formatwarning = warning_line


@contextlib.contextmanager
def command_warnings() -> Iterator[None]:
    """While a command runs, ``hide_library_warnings``; the settings before are restored afterwards."""
    global _commands
    original = warnings.formatwarning
    with warnings.catch_warnings():
        _commands += 1
        try:
            hide_library_warnings()
            yield
        finally:
            _commands -= 1
            warnings.formatwarning = original
