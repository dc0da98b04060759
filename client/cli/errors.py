"""Exit codes and error printing for every registry command, in one place.

0 ok, 1 user error, 2 not found, 3 incompatible, 4 auth, 5 network. A command wrapped in
:func:`handles_errors` prints one line ``error: <what> (fix: <what to do>)`` on stderr and
exits with the code for the typed error; no traceback reaches the user. An exception that is
not a typed error is a bug in hub: it too is one line naming the exception (exit 1), and
``LEXICON_DEBUG=1`` lets its traceback through for the bug report.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..core.errors import ErrorCode, LexiconError

OK, USER_ERROR, NOT_FOUND, INCOMPATIBLE, AUTH, NETWORK = 0, 1, 2, 3, 4, 5
INTERRUPTED = 130  # what shells report for Ctrl-C
DEBUG_ENV = "LEXICON_DEBUG"
BUG_FIX = f"this is a bug in hub; rerun with {DEBUG_ENV}=1 for the traceback and report it"

EXIT_CODES: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: NOT_FOUND,
    ErrorCode.INCOMPATIBLE: INCOMPATIBLE,
    ErrorCode.UNAUTHORIZED: AUTH,
    ErrorCode.FORBIDDEN: AUTH,
    ErrorCode.UNAVAILABLE: NETWORK,
    ErrorCode.RATE_LIMITED: NETWORK,
    ErrorCode.DIGEST_MISMATCH: NETWORK,
}

F = TypeVar("F", bound=Callable[..., Any])


def _not_failures() -> tuple[type[BaseException], ...]:
    """How commands end on purpose, passed through: typer's Exit/Abort, and click's when click
    is loaded (typer vendors its own click, so importing click for `hub --help` would cost
    ~60 ms; only code that imported click can raise its exceptions)."""
    click = sys.modules.get("click")
    if click is None:
        return (typer.Exit, typer.Abort)
    return (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort)


def exit_code(exc: BaseException) -> int:
    from ..transport import UnexpectedResponse

    if isinstance(exc, LexiconError):
        if isinstance(exc, UnexpectedResponse) and exc.status >= 500:
            return NETWORK
        return EXIT_CODES.get(exc.code, USER_ERROR)
    return USER_ERROR


def print_error(exc: BaseException, label: str | None = None) -> None:
    """One line on stderr: ``error: [<label>: ]<cause> (fix: <what to do>)``."""
    prefix = f"{label}: " if label else ""
    if isinstance(exc, LexiconError):
        message, fix = str(exc), exc.fix
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename and not label else ""
        message, fix = f"{where}{exc.strerror or exc}", ""
    else:
        message, fix = f"unexpected {type(exc).__name__}: {exc}", BUG_FIX
    message = " ".join(message.split())
    tail = f" (fix: {' '.join(fix.split())})" if fix else ""
    print(f"error: {prefix}{message}{tail}", file=sys.stderr)


def debugging() -> bool:
    """``LEXICON_DEBUG=1``: let unexpected exceptions raise, traceback and all."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def failure_exit_code(exc: BaseException, label: str | None = None) -> int:
    """Report ``exc`` in one line and return the exit code for it; re-raises what is not a
    failure (click's exits and usage errors) and, when debugging, unexpected exceptions."""
    if isinstance(exc, _not_failures()):
        raise exc
    if not isinstance(exc, LexiconError | OSError | KeyboardInterrupt) and debugging():
        raise exc
    if isinstance(exc, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return INTERRUPTED
    print_error(exc, label)
    return exit_code(exc)


def handles_errors(func: F) -> F:
    """Turn every failure (typed errors, unreadable/unwritable files, and bugs) into one line
    and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(failure_exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]
