"""Errors that reach the user as one line and a non-zero exit, never as a traceback (``EEAP_DEBUG=1`` shows it)."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, NoReturn

from eeap.console import debugging


class EEAPError(Exception):
    """Base of every error caused by the user's input (config, command line, data files)."""


class ConfigError(EEAPError):
    """A config key, value, type or component name is wrong."""


class DataError(EEAPError):
    """A data file is missing or malformed, or an input cannot be processed."""


class UsageError(EEAPError):
    """A command line that its parser refuses (an unknown option, a missing argument, a value of a wrong type)."""


class ClusterError(EEAPError):
    """A job's ranks could not meet at the rendezvous, or one lost another mid-run (``eeap.training.cluster``)."""


def one_line(error: Exception) -> str:
    """The first line of an exception's message."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def fail(message: str, code: int = 2) -> int:
    """Print ``error: message`` (after the traceback under ``EEAP_DEBUG=1``) and return the exit code."""
    if debugging():
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def os_error_line(error: OSError) -> str:
    """An operating-system error in one line: the file, what went wrong (``No space left on device``, ...)."""
    names = [str(n) for n in (error.filename, error.filename2) if n is not None]
    reason = error.strerror or one_line(error)
    return f"{' → '.join(names)}: {reason}" if names else reason


def guarded(command: Callable[[], int], prog: str) -> int:
    """Run a command's body, its warnings shown as ``warning:`` lines (``eeap.console``): user errors and file-system
    errors become one ``error:`` line and exit 2; a signal that stopped it, one line saying how to continue and exit
    128 + the signal's number; a closed standard output (a pipe into ``head``) ends it silently with 128 + SIGPIPE,
    as a Unix tool ends."""
    import sys

    from eeap.console import command_warnings
    from eeap.faults import Stopped

    try:
        with command_warnings():
            code = command()
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's flush at exit
        return code
    except EEAPError as e:
        return fail(str(e))
    except BrokenPipeError:  # the reader went away (eeap components | head): stop quietly, as Unix tools do
        import os
        import signal

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit writes nowhere
        return 128 + signal.SIGPIPE
    except OSError as e:  # the file system: permission denied, no space left, a file where a folder should be
        return fail(os_error_line(e))
    except Stopped as e:
        return fail(stopped_line(e, prog), e.exit_code)


def stopped_line(stop: object, prog: str) -> str:
    """What a stopped run says: where it stood, what it wrote, the command that continues it."""
    from eeap.faults import Stopped

    assert isinstance(stop, Stopped)
    launcher = f"python {prog}" if prog.endswith(".py") else prog
    text = f"stopped by {stop.name}"
    if stop.phase == "training" and stop.checkpoint is not None:
        run_dir = stop.checkpoint.parent.parent
        held = f"{text}{' at ' + stop.where if stop.where else ''}; {stop.checkpoint} holds the run so far"
        if stop.note:
            return f"{held}; {stop.note}"
        return f"{held}; continue with: {launcher} {run_dir / 'config.yaml'} resume={run_dir}"
    if stop.phase == "training":
        return f"{text} before its first checkpoint; nothing to continue from, a new run starts over"
    if stop.phase == "testing" and stop.checkpoint is not None:
        return f"{text} while testing, after training finished; test with: eeap test {stop.checkpoint}"
    return f"{text} before training began; no checkpoint was written" if "train" in prog else text


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its refusals in the same one-line ``error: ...`` form as every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")
