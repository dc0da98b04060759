"""The shapes of a hostile-input case and the error codes each class of attack may be refused
with (``client.core.errors.ErrorCode``; the HTTP status follows from the code's row in
``ERRORS``, so asserting the code asserts the status too)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from client.core.errors import ErrorCode as E


def codes(*values: E) -> frozenset[str]:
    return frozenset(v.value for v in values)


# A malformed container: the strict safetensors parser names it ("malformed_safetensors", by
# string so the corpus builds on a tree without that code), or the reader's general refusal.
MALFORMED = codes(E.INVALID_EMBEDDING, E.NOT_CANONICAL) | {"malformed_safetensors"}
# Anything the registry gets that is not safetensors at all.
NOT_SAFETENSORS = codes(E.NOT_CANONICAL)
# A request whose fields or JSON are wrong: 400 naming the field (422 for a name rule).
BAD_FIELD = codes(E.BAD_REQUEST)
# A body past the route's size cap may be refused for its size before its fields are read.
BAD_OR_TOO_BIG = codes(E.BAD_REQUEST, E.TOO_LARGE)
BAD_FIELD_OR_NAME = codes(E.BAD_REQUEST, E.BAD_NAME)
# A reference that cannot name anything: not found, or refused as malformed.
NO_SUCH_REF = codes(E.NOT_FOUND, E.BAD_REQUEST, E.BAD_NAME)


@dataclass(frozen=True)
class FileCase:
    """A hostile embedding file: ``hub push`` must refuse it with one of ``client_codes``, and
    the raw bytes posted to the publish route must be refused with one of ``api_codes``."""

    name: str
    kind: str
    filename: str
    data: bytes
    client_codes: frozenset[str]
    api_codes: frozenset[str]
    why: str

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "filename": self.filename,
            "bytes": len(self.data),
            "client_codes": sorted(self.client_codes),
            "api_codes": sorted(self.api_codes),
            "why": self.why,
        }


@dataclass(frozen=True)
class Part:
    """One multipart part: ``filename`` None sends it as a text field."""

    field: str
    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class RequestCase:
    """A hostile request. ``path`` and string values may hold the placeholders ``$NAME`` (a
    name of this case's own), ``$VICTIM_DIGEST``, ``$VICTIM_SHA256``, ``$JOB`` and ``$WORKER``
    filled in by the test from the world it built. ``as_user``: alice (a plain user), admin,
    worker, or anonymous.

    ``client`` says how the ``Hub`` library sends the same thing (None: no library call does);
    ``leak_check`` names the check that must hold when the registry *accepts* the request
    instead of refusing it (a design may strip the hostile part rather than refuse)."""

    name: str
    kind: str
    method: str
    path: str
    codes: frozenset[str]
    why: str
    as_user: str = "alice"
    json: Any = None
    body: bytes | None = None
    parts: tuple[Part, ...] = ()
    client: tuple[Any, ...] | None = None
    client_codes: frozenset[str] | None = None
    leak_check: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "as_user": self.as_user,
            "codes": sorted(self.codes),
            "why": self.why,
        }
        if self.json is not None:
            text = json.dumps(self.json)
            out["json"] = self.json if len(text) <= 500 else f"<{len(text)} bytes of JSON>"
        if self.body is not None:
            out["body_bytes"] = len(self.body)
        if self.parts:
            out["parts"] = [
                {"field": p.field, "filename": p.filename, "bytes": len(p.data)} for p in self.parts
            ]
        if self.client is not None:
            out["client"] = repr(self.client)[:200]
        if self.leak_check:
            out["leak_check"] = self.leak_check
        return out
