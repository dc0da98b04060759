"""The registry's OpenAPI document (``/schema/openapi.json``), completed in one place with what
every operation can answer besides its success: RFC 9457 problems.

Why here and not on each handler: every refusal goes through ``registry/problems.py`` as
``application/problem+json`` with a code from ``client.core.errors.ERRORS``, whatever the route,
so the error answers are the same for every operation. Litestar documents only the success
response and its own validation error (a JSON ``{status_code, detail, extra}`` we never send);
clients generated from the document, and schemathesis (``tests/attack/test_schemathesis.py``),
would otherwise see every 4xx as undocumented (issue 8). The statuses and the list of codes come
from the error table itself, so a new code is documented the day it is added.

The document is completed lazily, when ``/schema/openapi.json`` is first served (building it at
start-up would cost every app, test apps included, ~70 ms).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from client.core.errors import ERRORS, ErrorCode

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem; `code` is stable (also sent as `X-Error-Code`).",
    "required": ["type", "title", "status", "detail", "code", "fix"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the error code"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What was refused, naming the field"},
        "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
        "fix": {"type": "string", "description": "What to do instead"},
        "instance": {"type": "string", "description": "The request path"},
        "request_id": {"type": "string", "description": "The id the server logged"},
    },
}


def _codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code, spec in ERRORS.items():
        by_status[spec.status].append(code.value)
    # 405 has no code of its own: a bad_request body with status 405 and an Allow header.
    by_status[405].append(ErrorCode.BAD_REQUEST.value)
    return dict(sorted(by_status.items()))


def problem_response(status: int, codes: list[str]) -> dict[str, Any]:
    return {
        "description": f"Refused ({', '.join(codes)})",
        "headers": {
            "X-Error-Code": {"schema": {"type": "string"}, "description": "The problem's `code`"}
        },
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` where every operation documents each error status as a problem
    (replacing Litestar's own 400 schema, which this registry never sends)."""
    out = copy.deepcopy(document)
    out.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    errors = {str(s): problem_response(s, codes) for s, codes in _codes_by_status().items()}
    for path_item in out.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.update(copy.deepcopy(errors))
    return out


class ProblemDocumentedJson(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` (Swagger UI reads it too) with the problems added."""

    def __init__(self) -> None:
        super().__init__()
        self._document: dict[str, Any] | None = None

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        if self._document is None:
            self._document = document_problems(openapi_schema)
        return self.render_json(request, self._document)
