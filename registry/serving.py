"""How ``lexicon-registry serve`` runs uvicorn: the limits a server owns before any request
reaches the app (issue 8: 300 half-sent requests all stayed open).

uvicorn's own knobs cover idle keep-alive connections (``timeout_keep_alive``), the number of
connections (``limit_concurrency``: past it, 503) and the h11 parser's buffer for an unfinished
request head (``h11_max_incomplete_event_size``). It has no deadline for the request head
itself (uvicorn issue #157 "--timeout-request-start" is still open; ``timeout_keep_alive`` stops
counting at the first byte), so a client that sends half a request line holds its connection
for ever. :class:`HeaderTimeoutProtocol` adds that deadline to uvicorn's HTTP/1.1 protocol
(httptools when installed, else h11): armed when a connection opens and when the next request
on a kept-alive connection starts, disarmed once the head is complete. Bodies are timed by
the app (``registry/limits.py``), which can answer 408 in problem+json.

Left to a reverse proxy in front (README, production): slow readers of responses, limits
across worker processes and machines, and TLS.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from client.core.errors import ErrorCode
from registry.problems import problem_body
from registry.settings import Settings

try:  # uvicorn's "auto" choice: httptools when installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - depends on the install
    _Base = H11Protocol  # type: ignore[assignment,misc]


def _problem_answer(status_line: str, code: ErrorCode, detail: str, status: int) -> bytes:
    """A whole problem+json response, written by the protocol before any app sees the request."""
    body = json.dumps(problem_body(code, detail, status)).encode()
    head = (
        f"HTTP/1.1 {status_line}\r\ncontent-type: application/problem+json\r\n"
        f"x-error-code: {code.value}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


TIMEOUT_ANSWER = _problem_answer(
    "408 Request Timeout",
    ErrorCode.REQUEST_TIMEOUT,
    "the request line and headers did not arrive in time",
    408,
)
HEAD_TOO_LARGE_ANSWER = _problem_answer(
    "431 Request Header Fields Too Large",
    ErrorCode.BAD_REQUEST,
    "the request line and headers are too large (LEXICON_MAX_HEADER_BYTES)",
    431,
)


class HeaderTimeoutProtocol(_Base):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP/1.1 protocol with a deadline and a size cap for each request head (llhttp,
    behind httptools, has no size cap of its own; h11's is ``h11_max_incomplete_event_size``).

    Both uvicorn protocols start a new ``cycle`` exactly when a request's headers are complete,
    so "the head is done" is "``self.cycle`` changed while parsing", whichever parser runs.
    """

    def __init__(
        self, *args: Any, header_timeout: float, max_header_bytes: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.header_timer: asyncio.TimerHandle | None = None
        self.in_head = False  # between the first byte of a request and its last header
        self.head_bytes = 0  # bytes received since the current request head began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def data_received(self, data: bytes) -> None:
        if not self.in_head and (self.cycle is None or self.cycle.response_complete):
            self._start_head()  # the next request on a kept-alive connection
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._end_head()
        elif self.in_head:
            # Counted only while the head is still unfinished after parsing, so a body that
            # arrives in the same read as a small head never counts.
            self.head_bytes += len(data)
            if 0 < self.max_header_bytes < self.head_bytes and not self.transport.is_closing():
                self._end_head()
                self.transport.write(HEAD_TOO_LARGE_ANSWER)
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self.in_head, self.head_bytes = True, 0
        if self.header_timeout > 0:
            self.header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _end_head(self) -> None:
        self.in_head = False
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timed_out(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing else is being written
            self.transport.write(TIMEOUT_ANSWER)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` from the settings. The protocol is a
    ``functools.partial`` (picklable, so ``--workers N`` processes get the same deadline)."""
    return {
        "http": functools.partial(
            HeaderTimeoutProtocol,
            header_timeout=settings.request_header_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
        ),
        "ws": "none",  # no websocket routes: an upgrade is not a way round the limits
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "limit_concurrency": settings.max_connections or None,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
