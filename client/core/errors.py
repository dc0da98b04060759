"""One table of error codes, shared by the registry (problem+json ``code`` and ``X-Error-Code``)
and the client (which maps a code back to the typed exception, never matching message text).

Every refusal names the cause and the fix: the exception's message says what is wrong, and the
table's ``fix`` says what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # Embedding files
    INVALID_EMBEDDING = "invalid_embedding"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNSAFE_PICKLE = "unsafe_pickle"
    NON_FINITE = "non_finite_values"
    BAD_SHAPE = "bad_shape"
    BAD_DTYPE = "bad_dtype"
    TOO_LARGE = "too_large"
    INCOMPATIBLE = "incompatible_embedding"
    NOT_CANONICAL = "not_canonical"
    MALFORMED_SAFETENSORS = "malformed_safetensors"
    DIGEST_MISMATCH = "digest_mismatch"
    ORIGINAL_MISMATCH = "original_mismatch"
    # Requests
    BAD_NAME = "bad_name"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    REQUEST_TIMEOUT = "request_timeout"
    INTERNAL = "internal_error"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    title: str
    fix: str


ERRORS: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.INVALID_EMBEDDING: ErrorSpec(
        422,
        "Not a textual-inversion embedding",
        "Give a textual-inversion file: diffusers .bin/.safetensors, A1111 .pt/.safetensors, "
        "kohya safetensors, SDXL clip_l/clip_g, or an A1111 embedding PNG.",
    ),
    ErrorCode.UNSUPPORTED_FORMAT: ErrorSpec(
        415,
        "Unsupported file format",
        "Convert the file first (`hub convert IN OUT --to canonical`); the registry accepts "
        "canonical safetensors only.",
    ),
    ErrorCode.UNSAFE_PICKLE: ErrorSpec(
        422,
        "Refused pickle",
        "The pickle asks for code beyond plain tensors; it was not run. Ask the author for a "
        ".safetensors file.",
    ),
    ErrorCode.NON_FINITE: ErrorSpec(
        422,
        "Embedding holds NaN or infinite values",
        "Re-train or re-export the embedding; NaN/inf vectors break every prompt they are in.",
    ),
    ErrorCode.BAD_SHAPE: ErrorSpec(
        422,
        "Embedding has a shape no known text encoder takes",
        "Use 1-75 vectors, 768 wide (SD 1.x), 1024 (SD 2.x) or 768 + 1280 (SDXL clip_l + clip_g).",
    ),
    ErrorCode.BAD_DTYPE: ErrorSpec(
        422, "Unsupported tensor dtype", "Save the vectors as float32, float16 or bfloat16."
    ),
    ErrorCode.TOO_LARGE: ErrorSpec(
        413,
        "File too large",
        "Embeddings are a few KB; check that this is not a model checkpoint or a LoRA.",
    ),
    ErrorCode.INCOMPATIBLE: ErrorSpec(
        422,
        "Embedding does not fit this base model",
        "Pick an embedding trained for this base-model family, or declare the right base model.",
    ),
    ErrorCode.NOT_CANONICAL: ErrorSpec(
        415,
        "Upload is not canonical safetensors",
        "Upload through `hub push`, which converts, or `hub convert IN OUT --to canonical` first.",
    ),
    ErrorCode.MALFORMED_SAFETENSORS: ErrorSpec(
        422,
        "Not a strictly valid safetensors file",
        "The file is damaged or was written by a tool that breaks the safetensors format; "
        "download it again, or re-save it with the safetensors library (save_file).",
    ),
    ErrorCode.DIGEST_MISMATCH: ErrorSpec(
        502,
        "Downloaded bytes do not match their digest",
        "Retry; if it persists the server or a proxy is corrupting the download.",
    ),
    ErrorCode.ORIGINAL_MISMATCH: ErrorSpec(
        422,
        "Original file does not hold the uploaded vectors",
        "Send as 'original' the file the upload was converted from (`hub push FILE` does), or "
        "publish without it.",
    ),
    ErrorCode.BAD_NAME: ErrorSpec(
        422,
        "Invalid name",
        "Use 1-64 characters: lowercase letters, digits, '-', '_' and '.', starting with a letter "
        "or digit.",
    ),
    ErrorCode.BAD_REQUEST: ErrorSpec(400, "Bad request", "Check the request against /schema."),
    ErrorCode.NOT_FOUND: ErrorSpec(
        404, "Not found", "Check the name and version; private items show only to their team."
    ),
    ErrorCode.CONFLICT: ErrorSpec(409, "Conflict", "Reload the resource and retry."),
    ErrorCode.UNAUTHORIZED: ErrorSpec(
        401, "Authentication required", "Pass a valid API token (`hub login`)."
    ),
    ErrorCode.FORBIDDEN: ErrorSpec(
        403, "Not allowed", "Use a token with the needed scope and role in this namespace."
    ),
    ErrorCode.RATE_LIMITED: ErrorSpec(429, "Too many requests", "Wait and retry."),
    ErrorCode.REQUEST_TIMEOUT: ErrorSpec(
        408,
        "Request sent too slowly",
        "Retry on a steadier connection; the server cuts requests whose headers or body stall.",
    ),
    ErrorCode.INTERNAL: ErrorSpec(500, "Internal error", "Retry; report it if it persists."),
    ErrorCode.UNAVAILABLE: ErrorSpec(503, "Service unavailable", "Retry shortly."),
}


class LexiconError(Exception):
    """Base of every typed error; ``code`` selects the row of :data:`ERRORS`."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def spec(self) -> ErrorSpec:
        return ERRORS[self.code]

    @property
    def fix(self) -> str:
        return self.spec.fix


class InvalidEmbedding(LexiconError):
    code = ErrorCode.INVALID_EMBEDDING


class UnsupportedFormat(InvalidEmbedding):
    code = ErrorCode.UNSUPPORTED_FORMAT


class UnsafePickle(InvalidEmbedding):
    code = ErrorCode.UNSAFE_PICKLE


class NonFiniteValues(InvalidEmbedding):
    code = ErrorCode.NON_FINITE


class BadShape(InvalidEmbedding):
    code = ErrorCode.BAD_SHAPE


class BadDtype(InvalidEmbedding):
    code = ErrorCode.BAD_DTYPE


class TooLarge(InvalidEmbedding):
    code = ErrorCode.TOO_LARGE


class NotCanonical(InvalidEmbedding):
    code = ErrorCode.NOT_CANONICAL


class MalformedSafetensors(InvalidEmbedding):
    """A safetensors file some loader could read differently from another (or not at all)."""

    code = ErrorCode.MALFORMED_SAFETENSORS


class IncompatibleEmbedding(LexiconError):
    code = ErrorCode.INCOMPATIBLE


class DigestMismatch(LexiconError):
    code = ErrorCode.DIGEST_MISMATCH


class OriginalMismatch(LexiconError):
    """The ``original`` file sent with a publish reads as other vectors than the upload."""

    code = ErrorCode.ORIGINAL_MISMATCH


class BadName(LexiconError):
    code = ErrorCode.BAD_NAME


class BadRequest(LexiconError):
    code = ErrorCode.BAD_REQUEST


class NotFound(LexiconError):
    code = ErrorCode.NOT_FOUND


class Conflict(LexiconError):
    code = ErrorCode.CONFLICT


class Unauthorized(LexiconError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(LexiconError):
    code = ErrorCode.FORBIDDEN


class RateLimited(LexiconError):
    code = ErrorCode.RATE_LIMITED


class RequestTimeout(LexiconError):
    code = ErrorCode.REQUEST_TIMEOUT


class Unavailable(LexiconError):
    code = ErrorCode.UNAVAILABLE


def _exception_classes() -> dict[ErrorCode, type[LexiconError]]:
    found: dict[ErrorCode, type[LexiconError]] = {}
    stack: list[type[LexiconError]] = [LexiconError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def error_for_code(code: str, message: str) -> LexiconError:
    """The typed exception for a server's error ``code`` (unknown codes give a LexiconError)."""
    try:
        ecode = ErrorCode(code)
    except ValueError:
        return LexiconError(message)
    return _exception_classes().get(ecode, LexiconError)(message, code=ecode)
