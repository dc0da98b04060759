"""HTTP to the registry: timeouts, bounded retries, typed errors, verified downloads.

- Retries (exponential backoff with jitter, capped) on connection errors, 429 and 5xx, waiting
  at least what ``Retry-After`` asks. Every API call is safe to repeat: uploads are keyed by
  digest, so a repeated push answers 200 with the existing version.
- Redirects are followed by hand so the token goes only to the registry's own origin; file
  downloads redirect to presigned storage URLs, which must never see it.
- Errors become the exception named by ``X-Error-Code`` / the body's ``code`` (never by message
  text); anything else (a proxy's HTML page) is ``UnexpectedResponse``.
- ``download`` hashes the body as it streams and returns it only if it matches the digest asked
  for: truncated bodies, wrong bytes and HTML pages served with 200 all raise DigestMismatch.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client import __version__
from client.core.errors import DigestMismatch, ErrorCode, LexiconError, Unavailable, error_for_code

from .refs import validate_digest

if TYPE_CHECKING:  # httpx (~0.1 s) loads with the first Transport: a warm pull never needs it
    import httpx

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# A POST or PATCH may have taken effect when the answer was lost or a 500/502/504: retrying it
# could submit a job twice. Those retry only when the server surely did nothing: the connection
# never opened, or it answered 429/503.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
NOT_PROCESSED_STATUS = frozenset({429, 503})
MAX_REDIRECTS = 5
MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024  # embeddings are KB; anything bigger is not one
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


class UnexpectedResponse(LexiconError):
    """The server answered with something that is not this API (no error code): usually a proxy
    page or a wrong LEXICON_URL."""

    def __init__(self, message: str, *, status: int, code: ErrorCode | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


class _Retry(Exception):
    """Internal: this attempt failed in a way worth repeating; ``final`` is raised if none left."""

    def __init__(self, final: LexiconError, retry_after: float | None = None) -> None:
        self.final = final
        self.retry_after = retry_after


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the typed error for a non-2xx response; the body must already be read."""
    if response.is_success:
        return
    raise problem_error(response)


def problem_error(response: httpx.Response) -> LexiconError:
    """Map an error response to its exception by code: header first, then problem+json body."""
    status = response.status_code
    body: Any = None
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/problem+json", "application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
    if not isinstance(body, dict):
        body = {}
    code = response.headers.get("x-error-code") or body.get("code")
    if isinstance(code, str) and code:
        detail = body.get("detail") or body.get("title") or f"HTTP {status}"
        return error_for_code(code, str(detail))
    snippet = " ".join(response.text[:200].split()) if response.content else "(empty body)"
    return UnexpectedResponse(
        f"{response.request.method} {response.request.url} answered {status} with non-API "
        f"content ({ctype or 'no content type'}): {snippet!r}. Check that LEXICON_URL points at "
        "a Lexicon Hub registry; if it does, a proxy in between is failing, so retry later.",
        status=status,
        code=ErrorCode.UNAVAILABLE if status >= 500 else None,
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP-date), None when absent or garbled."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """One registry's HTTP session. ``backoff_base``/``sleep`` are injectable so tests run fast."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_retry_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.token = token
        self.retries = max(0, retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": f"lexicon-hub/{__version__}"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------
    def url(self, path: str) -> httpx.URL:
        return self.base_url.join(path.lstrip("/"))

    def _auth_headers(self, url: httpx.URL) -> dict[str, str]:
        same_origin = (url.scheme, url.host, url.port) == (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        )
        return {"Authorization": f"Bearer {self.token}"} if self.token and same_origin else {}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2**attempt)
        delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: clients do not retry in step
        return max(delay, retry_after or 0.0)

    def _with_retries(self, attempt: Callable[[], Any]) -> Any:
        for n in range(self.retries + 1):
            try:
                return attempt()
            except _Retry as retry:
                wait = retry.retry_after
                if n == self.retries or (wait is not None and wait > self.max_retry_after):
                    raise retry.final from None
                self._sleep(self._backoff(n, wait))
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, *, stream: bool, **kwargs: Any) -> httpx.Response:
        """One attempt, following redirects by hand (the token stays on the registry's origin).
        Retryable failures raise ``_Retry``; other errors raise their typed exception."""
        import httpx

        url = self.url(path)
        headers = dict(kwargs.pop("headers", None) or {})
        for _ in range(MAX_REDIRECTS + 1):
            request = self._client.build_request(
                method, url, headers={**headers, **self._auth_headers(url)}, **kwargs
            )
            try:
                response = self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                error = Unavailable(
                    f"could not reach {url.copy_with(query=None)} ({type(exc).__name__}: "
                    f"{exc}); check LEXICON_URL and that the registry is running"
                )
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if method in IDEMPOTENT_METHODS or never_sent:
                    raise _Retry(error) from None
                raise error from None
            if response.is_redirect and "location" in response.headers:
                response.close()
                url = response.url.join(response.headers["location"])
                if response.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                    method, kwargs = "GET", {"params": None}
                continue
            if response.is_success:
                return response
            response.read()
            response.close()
            retryable = response.status_code in RETRY_STATUS and (
                method in IDEMPOTENT_METHODS or response.status_code in NOT_PROCESSED_STATUS
            )
            if retryable:
                raise _Retry(problem_error(response), retry_after_seconds(response))
            raise problem_error(response)
        raise UnexpectedResponse(
            f"{method} {self.url(path)} redirected more than {MAX_REDIRECTS} times", status=310
        )

    # --- API -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A complete (read) 2xx response; ``kwargs`` go to httpx (params, json, data, files)."""

        return self._with_retries(lambda: self._send(method, path, stream=False, **kwargs))

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def download(
        self,
        path: str,
        expected_digest: str,
        *,
        params: dict[str, Any] | None = None,
        digest_of: Callable[[bytes], str] | None = None,
        progress: Progress | None = None,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> bytes:
        """Stream ``path`` and return its bytes only once they match ``expected_digest``.

        ``digest_of`` computes the digest of the received bytes: sha256 of the bytes (the default)
        for canonical files; converted formats pass a function that parses the file and computes
        the embedding digest. ``progress(done, total)`` is called per chunk (the CLI draws bars).
        """

        import httpx

        validate_digest(expected_digest)

        def attempt() -> bytes:
            response = self._send("GET", path, stream=True, params=params)
            hasher = hashlib.sha256()
            chunks: list[bytes] = []
            done = 0
            total = _content_length(response)
            try:
                for chunk in response.iter_bytes():
                    done += len(chunk)
                    if done > max_bytes:
                        raise DigestMismatch(
                            f"download of {path} exceeds {max_bytes} bytes; an embedding is a "
                            "few KB, so this is not the file that was asked for"
                        )
                    hasher.update(chunk)
                    chunks.append(chunk)
                    if progress is not None:
                        progress(done, total)
            except httpx.TransportError as exc:
                raise _Retry(
                    DigestMismatch(
                        f"download of {path} was cut off after {done} bytes ({exc}); "
                        "retry later; nothing was kept"
                    )
                ) from None
            finally:
                response.close()
            data = b"".join(chunks)
            actual = digest_of(data) if digest_of else "sha256:" + hasher.hexdigest()
            if not hmac.compare_digest(actual, expected_digest):
                ctype = response.headers.get("content-type", "unknown")
                raise _Retry(
                    DigestMismatch(
                        f"download of {path} ({done} bytes, {ctype}) hashes to {actual}, not "
                        f"{expected_digest}; nothing was kept. Retry; if it persists the server "
                        "or a proxy is corrupting downloads"
                    )
                )
            return data

        return self._with_retries(attempt)


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None
