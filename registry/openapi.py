"""The registry's OpenAPI document (``/schema/openapi.json``), completed in one place with what
every operation can answer besides its success: RFC 9457 problems.

Why here and not on each handler: every refusal goes through ``registry/problems.py`` as
``application/problem+json`` with a code from ``client.core.errors.ERRORS``, whatever the route,
so the error answers are the same for every operation. Litestar documents only the success
response and its own validation error (a JSON ``{status_code, detail, extra}`` we never send);
clients generated from the document, and schemathesis (``tests/attack/test_schemathesis.py``),
would otherwise see every 4xx as undocumented (issue 8). The statuses and the list of codes come
from the error table itself, so a new code is documented the day it is added.

It also states what is valid where Litestar can only say "a string" or "an object": the path
and query parameters every route shares (:data:`PARAMETERS`) and the JSON bodies parsed by hand
(:data:`BODIES`). The numbers are imported from the modules that enforce them, never repeated;
``tests/attack/test_schemathesis.py`` sends what this document calls valid and fails when the
server refuses it, so the document and the checks cannot drift apart unnoticed.

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
from client.core.families import FAMILIES
from client.core.writers import FORMATS
from registry import validation
from registry.embeddings import hashes, search
from registry.embeddings.models import ConceptType, Visibility
from registry.embeddings.publish import MAX_TAGS, TEXT_LIMITS
from registry.similarity import services as similarity
from registry.training.metadata import TrainingInfo

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


# client.core.names.validate_slug as a pattern: a letter or digit first, then letters, digits,
# '_', '-' and dots (never two in a row), never ending in '.' or '-'; at most 64 characters.
SLUG_PATTERN = r"^[a-z0-9](?:(?:[a-z0-9_-]|\.[a-z0-9_-])*(?:[a-z0-9_]|\.[a-z0-9_]))?$"
SLUG = {"type": "string", "pattern": SLUG_PATTERN, "maxLength": 64}
DIGEST = {"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"}
NO_NUL = {"type": "string", "pattern": r"^[^\x00]*$"}  # refuse_nul_bytes: 400 on any NUL
# A version number (1..2^63-1, ASCII digits: validation.plain_decimal), a tag or a digest.
REF = {
    "type": "string",
    "maxLength": 71,
    "pattern": rf"^(?:[1-9][0-9]{{0,17}}|{SLUG_PATTERN[1:-1]}|sha256:[0-9a-f]{{64}})$",
}


# What registry/validation.json_value accepts anywhere in a JSON body: no NUL in strings or
# keys, integers within 64 bits, finite numbers (stated here within the same range). Bodies
# Litestar can only call "an object" (``dict[str, Any]``) are objects of these.
JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
_INT64 = {"minimum": -validation.INT64_MAX - 1, "maximum": validation.INT64_MAX}
JSON_OBJECT = {
    "type": "object",
    "propertyNames": {"pattern": r"^[^\x00]*$"},
    "additionalProperties": JSON_VALUE_REF,
}
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "title": "JsonValue",
    "anyOf": [
        {"type": "string", "pattern": r"^[^\x00]*$"},
        {"type": "integer", **_INT64},
        {"type": "number", **_INT64},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": JSON_VALUE_REF},
        JSON_OBJECT,
    ],
}


def _text(limit: int) -> dict[str, Any]:
    return {**NO_NUL, "maxLength": limit}


# Path and query parameters by name (the same name means the same thing on every route).
PARAMETERS: dict[str, dict[str, Any]] = {
    "namespace": SLUG,
    "name": SLUG,
    "tag": SLUG,
    "org_name": SLUG,
    "username": SLUG,
    "author": SLUG,
    "ref": REF,
    "number": {"type": "string", "pattern": r"^[1-9][0-9]{0,17}$"},
    "digest": DIGEST,
    "format": {"type": "string", "enum": list(FORMATS), "default": "canonical"},
    "sort": {"type": "string", "enum": list(search.SORTS), "default": "downloads"},
    "family": {"type": "string", "enum": list(FAMILIES)},
    "type": {"type": "string", "enum": [t.value for t in ConceptType]},
    "q": _text(200),
    "hash": {
        "type": "string",
        "pattern": rf"^(?:sha256:)?[0-9a-f]{{{hashes.MIN_PREFIX},64}}$",
    },
}
# Per-operation overrides, where one name has different bounds.
OPERATION_PARAMETERS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("get", "/api/v1/embeddings"): {
        "limit": {"type": "integer", "minimum": 1, "maximum": search.MAX_LIMIT, "default": 20}
    },
    ("get", "/api/v1/embeddings/{namespace}/{name}/similar"): {
        "limit": {"type": "integer", "minimum": 1, "maximum": similarity.MAX_LIMIT, "default": 10}
    },
}


def _no_nul_strings(schema: Any) -> Any:
    """``schema`` with every string free of NUL (json_value refuses NUL anywhere in a body)."""
    if isinstance(schema, list):
        return [_no_nul_strings(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _no_nul_strings(v) for k, v in schema.items()}
    if out.get("type") == "string" and "pattern" not in out and "enum" not in out:
        out["pattern"] = NO_NUL["pattern"]
    return out


def _metadata_schema() -> dict[str, Any]:
    """PATCH's body: what ``PublishMetadata.validate`` accepts (text limits of the columns)."""
    properties: dict[str, Any] = {k: _text(n) for k, n in TEXT_LIMITS.items()}
    properties["type"] = {"type": "string", "enum": [t.value for t in ConceptType]}
    properties["visibility"] = {"type": "string", "enum": [v.value for v in Visibility]}
    properties["tags"] = {"type": "array", "items": SLUG, "maxItems": MAX_TAGS}
    properties["source_sha256"] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    properties["training"] = _no_nul_strings(TrainingInfo.model_json_schema())
    return {"type": "object", "properties": properties, "additionalProperties": False}


# JSON bodies parsed by hand in the routes, by (method, path).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", "/api/v1/embeddings/{namespace}/{name}/tags/{tag}"): {
        "type": "object",
        "required": ["version"],
        "properties": {
            "version": {"type": "integer", "minimum": 1, "maximum": validation.INT64_MAX}
        },
    },
    ("patch", "/api/v1/embeddings/{namespace}/{name}"): _metadata_schema(),
    ("post", "/api/v1/orgs"): {
        "type": "object",
        "required": ["name"],
        "properties": {"name": SLUG, "description": _text(2000)},
    },
}


BINARY = {"type": "string", "format": "binary"}
VERSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Version",
    "description": "One published version (registry/embeddings/views.py version_json)",
    "required": ["namespace", "name", "ref", "number", "digest", "size", "family", "yanked"],
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "ref": {"type": "string"},
        "number": {"type": "integer", "minimum": 1},
        "digest": DIGEST,
        "size": {"type": "integer", "minimum": 0},
        "family": {"type": "string"},
        "yanked": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "created": {"type": "boolean", "description": "publish only: false for a re-publish"},
    },
}
VERSION_REF = {"$ref": "#/components/schemas/Version"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _items(item: dict[str, Any] | None = None) -> dict[str, Any]:
    """A list answer: ``{"items": [...]}`` (browse adds ``next_cursor``)."""
    items = {"type": "array", "items": item or {"type": "object"}}
    return {"type": "object", "required": ["items"], "properties": {"items": items}}


def _binary(*media_types: str) -> dict[str, Any]:
    return {"description": "The bytes", "content": {m: {"schema": BINARY} for m in media_types}}


EMBEDDING = "/api/v1/embeddings/{namespace}/{name}"
JOB = "/api/v1/training-jobs/{job_id}"
# Success answers Litestar cannot infer from ``dict``/``Response`` return types, by operation.
SUCCESS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("post", f"{EMBEDDING}/versions"): {
        "201": _json(VERSION_REF, "Published"),
        "200": _json(VERSION_REF, "This file was already published here: the same version"),
    },
    ("get", f"{EMBEDDING}/versions/{{ref}}"): {"200": _json(VERSION_REF, "The version")},
    ("post", f"{EMBEDDING}/versions/{{number}}/yank"): {"200": _json(VERSION_REF, "Yanked")},
    ("post", f"{EMBEDDING}/versions/{{number}}/unyank"): {"200": _json(VERSION_REF, "Unyanked")},
    ("get", f"{EMBEDDING}/versions"): {"200": _json(_items(VERSION_REF), "Every version")},
    ("get", f"{EMBEDDING}/versions/{{ref}}/file"): {
        "200": _binary("application/octet-stream", "application/zip"),
        "307": {
            "description": "Download from the blob store (a presigned URL in Location)",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    },
    ("get", f"{EMBEDDING}/versions/{{ref}}/previews/{{digest}}"): {"200": _binary("image/png")},
    ("get", f"{JOB}/images/{{digest}}"): {"200": _binary("application/octet-stream")},
    ("get", f"{JOB}/checkpoint"): {"200": _binary("application/octet-stream")},
    ("post", "/api/v1/workers/{worker_id}/claim"): {
        "200": _json({"type": "object"}, "A job and its lease"),
        "204": {"description": "No job is waiting for this worker's families"},
    },
    ("get", "/api/v1/embeddings"): {"200": _json(_items(), "A page of embeddings")},
    ("get", "/api/v1/lookup"): {"200": _json(_items(), "Versions with a matching hash")},
    ("get", "/api/v1/tokens"): {"200": _json(_items(), "The caller's tokens")},
    ("get", "/api/v1/training-jobs"): {"200": _json(_items(), "Jobs the caller may see")},
    ("get", "/api/v1/orgs/{org_name}/members"): {"200": _json(_items(), "Members and roles")},
    ("get", f"{EMBEDDING}/similar"): {"200": _json(_items(), "Nearest embeddings")},
}


def _document_inputs(method: str, path: str, operation: dict[str, Any]) -> None:
    overrides = OPERATION_PARAMETERS.get((method, path), {})
    for parameter in operation.get("parameters", []):
        schema = overrides.get(parameter.get("name")) or PARAMETERS.get(parameter.get("name"))
        if schema is not None:
            parameter["schema"] = copy.deepcopy(schema)
    body = BODIES.get((method, path))
    content = operation.get("requestBody", {}).get("content", {})
    if body is None and content.get("application/json", {}).get("schema") == {
        "additionalProperties": {},
        "type": "object",
    }:
        body = JSON_OBJECT
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": copy.deepcopy(body)}},
        }


def _codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code, spec in ERRORS.items():
        by_status[spec.status].append(code.value)
    # Statuses with no code of their own, answered as bad_request: 405 (with Allow) and 431
    # (headers too large, written by registry/serving.py before the app sees the request).
    for status in (405, 431):
        by_status[status].append(ErrorCode.BAD_REQUEST.value)
    return dict(sorted(by_status.items()))


def problem_response(codes: list[str]) -> dict[str, Any]:
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
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(Problem=PROBLEM_SCHEMA, Version=VERSION_SCHEMA, JsonValue=JSON_VALUE_SCHEMA)
    errors = {str(s): problem_response(codes) for s, codes in _codes_by_status().items()}
    for path, path_item in out.get("paths", {}).items():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            _document_inputs(method, path, operation)
            responses = operation.setdefault("responses", {})
            responses.update(copy.deepcopy(SUCCESS.get((method, path), {})))
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
