"""The one place typed errors become HTTP problems (RFC 9457) with a stable ``code`` from
``client.core.errors.ERRORS`` in the body and in ``X-Error-Code``."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)

from client.core.errors import ERRORS, ErrorCode, LexiconError

log = logging.getLogger("registry")

_STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.BAD_REQUEST,  # the body's status and the Allow header say 405
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_FORMAT,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def problem_body(code: ErrorCode, detail: str, status: int | None = None) -> dict[str, Any]:
    """The RFC 9457 body every refusal carries, also where no app is running yet
    (``registry.serving`` answers slow request heads itself)."""
    spec = ERRORS[code]
    return {
        "type": f"https://lexicon-hub.dev/errors/{code.value}",
        "title": spec.title,
        "status": status or spec.status,
        "detail": detail,
        "code": code.value,
        "fix": spec.fix,
    }


def problem(
    code: ErrorCode,
    detail: str,
    request: Request | None = None,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``status`` overrides the code's own (an HTTP status with no code of its own, like 405);
    the body's ``status`` always equals the response's."""
    status = status or ERRORS[code].status
    body = problem_body(code, detail, status)
    if request is not None:
        body["instance"] = request.url.path
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
    return Response(
        body,
        status_code=status,
        media_type="application/problem+json",
        headers={**(headers or {}), "X-Error-Code": code.value},
    )


def lexicon_error_handler(request: Request, exc: LexiconError) -> Response:
    return problem(exc.code, str(exc), request)


def _validation_detail(exc: ValidationException) -> str:
    """Name each field Litestar refused: "'number' (path): expected int"."""
    items = exc.extra if isinstance(exc.extra, list) else []
    parts = [
        f"'{e.get('key')}' ({e.get('source', 'request')}): {e.get('message')}"
        for e in items
        if isinstance(e, dict)
    ]
    return "; ".join(parts) or str(exc.detail)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    detail = str(exc.detail)
    if isinstance(exc, ValidationException):
        detail = _validation_detail(exc)
    elif isinstance(exc.__cause__, SerializationException):
        detail = f"the request body is not valid JSON ({exc.detail})"
    if isinstance(exc, NotFoundException):
        detail = "no such route or resource"
    if isinstance(exc, MethodNotAllowedException):
        detail = f"{request.method} is not allowed here; allowed: {exc.headers.get('allow', '')}"
    return problem(code, detail, request, status=exc.status_code, headers=exc.headers)


def too_deep_handler(request: Request, exc: RecursionError) -> Response:
    """Only hostile input recurses this deep (msgspec raises RecursionError on nesting past
    its limit while decoding a body): a 400 naming the body, not a 500."""
    return problem(
        ErrorCode.BAD_REQUEST, "the request body is nested too deeply to be JSON we accept", request
    )


def not_utf8_handler(request: Request, exc: UnicodeDecodeError) -> Response:
    """Litestar decodes every multipart part without a filename as UTF-8 text before a handler
    runs; binary bytes there are the caller's mistake (400), not ours (500)."""
    return problem(
        ErrorCode.BAD_REQUEST,
        "a multipart text field (such as 'metadata') is not UTF-8 text; send binary data "
        "('file', 'original', 'images') as file parts with a filename",
        request,
    )


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(ErrorCode.INTERNAL, "internal error; the request id is in the logs", request)


EXCEPTION_HANDLERS = {
    LexiconError: lexicon_error_handler,
    HTTPException: http_error_handler,
    RecursionError: too_deep_handler,
    UnicodeDecodeError: not_utf8_handler,
    Exception: internal_error_handler,
}
