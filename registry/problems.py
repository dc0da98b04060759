"""The one place typed errors become HTTP problems (RFC 9457) with a stable ``code`` from
``client.core.errors.ERRORS`` in the body and in ``X-Error-Code``."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from client.core.errors import ERRORS, ErrorCode, LexiconError

log = logging.getLogger("registry")

_STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.BAD_REQUEST,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_FORMAT,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def problem(code: ErrorCode, detail: str, request: Request | None = None) -> Response:
    spec = ERRORS[code]
    body = {
        "type": f"https://lexicon-hub.dev/errors/{code.value}",
        "title": spec.title,
        "status": spec.status,
        "detail": detail,
        "code": code.value,
        "fix": spec.fix,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
    return Response(
        body,
        status_code=spec.status,
        media_type="application/problem+json",
        headers={"X-Error-Code": code.value},
    )


def lexicon_error_handler(request: Request, exc: LexiconError) -> Response:
    return problem(exc.code, str(exc), request)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    detail = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        detail = f"{exc.detail}: {exc.extra}"
    if isinstance(exc, NotFoundException):
        detail = "no such route or resource"
    response = problem(code, str(detail), request)
    response.status_code = exc.status_code
    return response


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(ErrorCode.INTERNAL, "internal error; the request id is in the logs", request)


EXCEPTION_HANDLERS = {
    LexiconError: lexicon_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
