"""Hostile requests: over-long fields, wrong JSON types, NUL bytes, NaN, deep and huge JSON,
unicode-digit version refs, integers past 64 bits, tampered cursors, names with a trailing
newline, claimed ``source_sha256`` squatting, previews naming foreign digests (training jobs and
the worker protocol: ``hostile_training.py``). Each is refused with a 4xx naming the cause;
nothing is stored.

Placeholders (``$NAME``, ``$VICTIM_DIGEST``, ``$VICTIM_SHA256``, ``$JOB``, ``$WORKER``) are
filled in by the test from the world it built (see :class:`tests.attack.cases.RequestCase`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from client.core.errors import ErrorCode as E

from .cases import BAD_FIELD, BAD_FIELD_OR_NAME, NO_SUCH_REF, RequestCase, codes
from .hostile_publish import publish_cases

BASE = "/api/v1/embeddings/alice/base"
BIG = 2**70
HUGE_DIGITS = "9" * 5000
BAD_NAME = codes(E.BAD_NAME)


def _big(expected: frozenset[str], size: int) -> frozenset[str]:
    """Bodies past the JSON routes' 64 KiB cap may be refused for their size first."""
    return expected | codes(E.TOO_LARGE) if size > 60_000 else expected


def _json(
    name: str, kind: str, method: str, path: str, body: Any, expected: frozenset[str], **kw: Any
) -> RequestCase:
    expected = _big(expected, len(json.dumps(body)))
    return RequestCase(
        name, kind, method, path, expected, f"{method} {path} {str(body)[:60]}", json=body, **kw
    )


def _raw(
    name: str, kind: str, method: str, path: str, text: str, expected: frozenset[str], **kw: Any
) -> RequestCase:
    return RequestCase(
        name,
        kind,
        method,
        path,
        _big(expected, len(text)),
        f"{method} {path} {text[:50]!r}",
        body=text.encode(),
        **kw,
    )


def edit_and_account_cases() -> Iterator[RequestCase]:
    yield _json(
        "patch-long-description",
        "over-long field",
        "PATCH",
        BASE,
        {"description": "d" * 100_000},
        BAD_FIELD,
    )
    yield _json("patch-trigger-int", "wrong JSON type", "PATCH", BASE, {"trigger": 5}, BAD_FIELD)
    yield _json("patch-tags-int", "wrong JSON type", "PATCH", BASE, {"tags": 5}, BAD_FIELD)
    yield _json(
        "patch-visibility-list",
        "wrong JSON type",
        "PATCH",
        BASE,
        {"visibility": ["public"]},
        BAD_FIELD,
    )
    yield _json("patch-nul", "NUL byte", "PATCH", BASE, {"description": "\x00"}, BAD_FIELD)
    yield _raw("patch-nan", "NaN in JSON", "PATCH", BASE, '{"description": NaN}', BAD_FIELD)
    yield _raw(
        "patch-deep",
        "deep JSON",
        "PATCH",
        BASE,
        '{"description": "x", "k": ' + "[" * 100_000 + "]" * 100_000 + "}",
        BAD_FIELD,
    )
    yield _raw(
        "patch-5000-digits",
        "huge JSON number",
        "PATCH",
        BASE,
        '{"license": ' + HUGE_DIGITS + "}",
        BAD_FIELD,
    )
    yield _json(
        "tag-target-big-int",
        ">64-bit int",
        "PUT",
        f"{BASE}/tags/x",
        {"version": BIG},
        NO_SUCH_REF,
        client=("tag_number", BIG),
    )
    yield _json(
        "tag-name-newline",
        "name with trailing newline",
        "PUT",
        f"{BASE}/tags/x%0A",
        {"version": 1},
        BAD_NAME,
        client=("tag", "x\n"),
    )
    yield _json(
        "token-expires-string",
        "wrong JSON type",
        "POST",
        "/api/v1/tokens",
        {"name": "t", "expires_in_days": "5"},
        BAD_FIELD,
    )
    yield _raw(
        "token-expires-1e300",
        "huge JSON number",
        "POST",
        "/api/v1/tokens",
        '{"name": "t", "expires_in_days": 1e300}',
        BAD_FIELD,
    )
    yield _json(
        "token-expires-big-int",
        ">64-bit int",
        "POST",
        "/api/v1/tokens",
        {"name": "t", "expires_in_days": BIG},
        BAD_FIELD,
    )
    yield _json(
        "token-scopes-string",
        "wrong JSON type",
        "POST",
        "/api/v1/tokens",
        {"name": "t", "scopes": "read"},
        BAD_FIELD,
    )
    yield _json(
        "token-name-long",
        "over-long field",
        "POST",
        "/api/v1/tokens",
        {"name": "n" * 10_000},
        BAD_FIELD,
    )
    yield _json(
        "token-delete-big-int", ">64-bit int", "DELETE", f"/api/v1/tokens/{BIG}", None, NO_SUCH_REF
    )
    yield _json(
        "user-password-int",
        "wrong JSON type",
        "POST",
        "/api/v1/users",
        {"username": "eve-pw", "password": 5},
        BAD_FIELD,
        as_user="admin",
    )
    yield _json(
        "user-email-long",
        "over-long field",
        "POST",
        "/api/v1/users",
        {"username": "eve-mail", "email": "e" * 10_000 + "@x.org"},
        BAD_FIELD,
        as_user="admin",
    )
    yield _json(
        "user-name-newline",
        "name with trailing newline",
        "POST",
        "/api/v1/users",
        {"username": "bob\n"},
        BAD_NAME,
        as_user="admin",
    )
    yield _json(
        "org-name-newline",
        "name with trailing newline",
        "POST",
        "/api/v1/orgs",
        {"name": "acme\n"},
        BAD_NAME,
    )
    yield _json(
        "org-description-long",
        "over-long field",
        "POST",
        "/api/v1/orgs",
        {"name": "longdesc", "description": "d" * 100_000},
        BAD_FIELD,
    )
    yield _json(
        "org-name-int", "wrong JSON type", "POST", "/api/v1/orgs", {"name": 5}, BAD_FIELD_OR_NAME
    )
    yield _json(
        "user-path-nul",
        "NUL byte",
        "GET",
        "/api/v1/users/a%00b",
        None,
        codes(E.NOT_FOUND, E.BAD_REQUEST, E.BAD_NAME),
    )


def read_cases() -> Iterator[RequestCase]:
    for name, ref in (
        ("superscript-two", "%C2%B2"),
        ("arabic-one", "%D9%A1"),
        ("fullwidth-one", "%EF%BC%91"),
        ("devanagari-three", "%E0%A5%A9"),
    ):
        yield _json(
            f"ref-{name}",
            "unicode digit version ref",
            "GET",
            f"{BASE}/versions/{ref}",
            None,
            NO_SUCH_REF,
        )
    yield _json(
        "ref-unicode-digit-file",
        "unicode digit version ref",
        "GET",
        f"{BASE}/versions/%C2%B2/file",
        None,
        NO_SUCH_REF,
        client=("pull", "²"),
    )
    yield _json("ref-big-int", ">64-bit int", "GET", f"{BASE}/versions/{BIG}", None, NO_SUCH_REF)
    yield _json(
        "ref-big-int-file", ">64-bit int", "GET", f"{BASE}/versions/{BIG}/file", None, NO_SUCH_REF
    )
    yield _json(
        "yank-big-int",
        ">64-bit int",
        "POST",
        f"{BASE}/versions/{BIG}/yank",
        None,
        NO_SUCH_REF,
        client=("yank", BIG),
    )
    yield _json("ref-nul", "NUL byte", "GET", f"{BASE}/versions/1%00", None, NO_SUCH_REF)

    def cursor(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    for name, sort, value in (
        ("cursor-no-utc-offset", "recent", ["2024-01-01T00:00:00", 1]),
        ("cursor-object", "downloads", {"a": 1}),
        ("cursor-big-id", "downloads", [1, BIG]),
        ("cursor-key-type", "downloads", ["x", 1]),
        ("cursor-5000-digits", "downloads", b"[" + HUGE_DIGITS.encode() + b", 1]"),
        ("cursor-deep", "downloads", b"[" * 3_000 + b"]" * 3_000),
        ("cursor-nan", "trending", b"[NaN, 1]"),
    ):
        yield _json(
            name,
            "tampered cursor",
            "GET",
            f"/api/v1/embeddings?sort={sort}&cursor={cursor(value)}",
            None,
            BAD_FIELD,
            client=("search", {"sort": sort, "cursor": cursor(value)}),
        )
    yield _json(
        "search-nul",
        "NUL byte",
        "GET",
        "/api/v1/embeddings?q=a%00b",
        None,
        BAD_FIELD,
        client=("search", {"query": "a\x00b"}),
    )
    yield _json(
        "lookup-nul",
        "NUL byte",
        "GET",
        "/api/v1/lookup?hash=abcdef12%00",
        None,
        BAD_FIELD,
        client=("lookup", "abcdef12\x00"),
    )
    yield _json(
        "limit-big-int",
        ">64-bit int",
        "GET",
        f"/api/v1/embeddings?limit={BIG}",
        None,
        BAD_FIELD,
        client=("search", {"limit": BIG}),
    )


def request_cases() -> list[RequestCase]:
    """Every request case but the training ones (``hostile_training.training_cases``)."""
    return [*publish_cases(), *edit_and_account_cases(), *read_cases()]
