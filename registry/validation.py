"""Field rules every route applies before anything is stored: one home, so each refusal names
its field the same way and no malformed value reaches the database or the blob store.

Why these rules (issue 8, defect 4): PostgreSQL refuses text over a column's length, NUL bytes
in text and integers past 64 bits, while SQLite silently stores them; a value that fails at the
INSERT has already had its blob stored. Python's own parsers are also too lenient for wire
input: ``str.isdigit()`` and ``int()`` accept ``²`` and ``١``, ``json.loads`` accepts ``NaN``
and recurses on deep nesting. Every error here is a :class:`BadRequest` whose message starts
with the field's name in quotes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from litestar import Request

from client.core.errors import BadRequest

INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 256 * 1024
BODY = "request body"
_DECIMAL = re.compile(r"[0-9]{1,19}", re.ASCII)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def text(value: Any, field: str, max_len: int, *, required: bool = False) -> str | None:
    """A string of at most ``max_len`` characters with no NUL byte (None passes unless
    ``required``)."""
    if value is None:
        if required:
            raise BadRequest(f"'{field}' is required (a string of up to {max_len} characters)")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string, not {_kind(value)}")
    if "\x00" in value:
        raise BadRequest(f"'{field}' must not contain NUL bytes")
    if len(value) > max_len:
        raise BadRequest(f"'{field}' has {len(value):,} characters; at most {max_len:,} allowed")
    return value


def no_nul(value: str | None, field: str) -> str | None:
    """Query and path values: any length the route allows, but never a NUL byte."""
    if value is not None and "\x00" in value:
        raise BadRequest(f"'{field}' must not contain NUL bytes")
    return value


def integer(value: Any, field: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """A JSON integer (not a boolean, not a float, not a string) within ``lo..hi``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{field}' must be an integer, not {_kind(value)}")
    if not lo <= value <= hi:
        raise BadRequest(f"'{field}' must be an integer from {lo} to {hi}")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"'{field}' must be true or false, not {_kind(value)}")
    return value


def plain_decimal(value: str) -> int | None:
    """The number a path segment such as a version reference spells in ASCII digits, or None:
    ``²``, ``١``, ``1_0``, ``+1`` and numbers past 64 bits are not numbers here."""
    if not _DECIMAL.fullmatch(value):
        return None
    number = int(value)
    return number if number <= INT64_MAX else None


def json_value(value: Any, field: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Check decoded JSON: depth, finite floats, 64-bit integers, no NUL in strings or keys.
    A refusal names the value's path (``'metadata.training.loss'``). Iterative, so hostile
    depth cannot exhaust the stack."""
    stack: list[tuple[Any, int, str]] = [(value, 1, field)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                where = path.split("[")[0]  # the field, not 32 levels of indexes
                raise BadRequest(f"'{where}' is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str) or "\x00" in key:
                        raise BadRequest(f"'{path}' has a key that is not a plain string")
                    stack.append((child, depth + 1, _child(path, field, key)))
            else:
                stack.extend((c, depth + 1, f"{path}[{i}]") for i, c in enumerate(item))
        elif isinstance(item, str):
            if "\x00" in item:
                raise BadRequest(f"'{path}' must not contain NUL bytes")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadRequest(f"'{path}' holds NaN or an infinite number")
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -INT64_MAX - 1 <= item <= INT64_MAX:
                raise BadRequest(f"'{path}' holds an integer past 64 bits")
        elif item is not None and not isinstance(item, bool):
            raise BadRequest(f"'{path}' holds a value that is not JSON")
    return value


def _child(path: str, root: str, key: str) -> str:
    """A body's fields are named on their own (``'name'``); parts' fields with the part
    (``'metadata.training'``)."""
    return key if path == root == BODY else f"{path}.{key}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 19:
        raise ValueError("an integer past 64 bits")
    return int(digits)


def _finite_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise ValueError(f"{digits[:20]} is out of range")
    return number


def loads(raw: str | bytes, field: str, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Strict JSON from a form field or file part: no NaN/Infinity, no number past 64 bits or
    out of float range, at most ``max_bytes`` and :data:`MAX_JSON_DEPTH` levels."""
    if len(raw) > max_bytes:
        raise BadRequest(f"'{field}' is {len(raw):,} bytes of JSON; at most {max_bytes:,}")
    try:
        value = json.loads(
            raw,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise BadRequest(f"'{field}' is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequest(f"'{field}' is not valid JSON ({exc})") from None
    return json_value(value, field)


async def refuse_nul_bytes(request: Request) -> None:
    """App-wide ``before_request`` hook: a NUL byte in the path or a query parameter is a 400
    before any handler runs, so none of them sends one to PostgreSQL (which refuses it). Async:
    a sync hook would cost every request a worker-thread round trip (issue 12)."""
    if "\x00" in request.scope["path"]:
        raise BadRequest("the request path must not contain NUL bytes (%00)")
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise BadRequest(f"query parameter '{key}' must not contain NUL bytes")
