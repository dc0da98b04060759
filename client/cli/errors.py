"""Exit codes and error printing for every registry command, in one place.

0 ok, 1 user error, 2 not found, 3 incompatible, 4 auth, 5 network. A command wrapped in
:func:`handles_errors` prints one line ``error: <what> (fix: <what to do>)`` on stderr and
exits with the code for the typed error; no traceback reaches the user.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..core.errors import ErrorCode, LexiconError

OK, USER_ERROR, NOT_FOUND, INCOMPATIBLE, AUTH, NETWORK = 0, 1, 2, 3, 4, 5

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


def exit_code(exc: BaseException) -> int:
    from ..transport import UnexpectedResponse

    if isinstance(exc, LexiconError):
        if isinstance(exc, UnexpectedResponse) and exc.status >= 500:
            return NETWORK
        return EXIT_CODES.get(exc.code, USER_ERROR)
    return USER_ERROR


def print_error(exc: BaseException, label: str | None = None) -> None:
    message = " ".join(str(exc).split())
    prefix = f"{label}: " if label else ""
    if isinstance(exc, LexiconError):
        fix = " ".join(exc.fix.split())
        print(f"error: {prefix}{message} (fix: {fix})", file=sys.stderr)
    else:
        print(f"error: {prefix}{message}", file=sys.stderr)


def handles_errors(func: F) -> F:
    """Turn typed errors (and unreadable/unwritable files) into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LexiconError as exc:
            print_error(exc)
            raise typer.Exit(exit_code(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            raise typer.Exit(USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
