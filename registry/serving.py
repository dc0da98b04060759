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

from client.core.errors import ERRORS, ErrorCode
from registry.settings import Settings

try:  # uvicorn's "auto" choice: httptools when installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - depends on the install
    _Base = H11Protocol  # type: ignore[assignment,misc]


def _timeout_answer() -> bytes:
    code = ErrorCode.REQUEST_TIMEOUT
    spec = ERRORS[code]
    body = json.dumps(
        {
            "type": f"https://lexicon-hub.dev/errors/{code.value}",
            "title": spec.title,
            "status": spec.status,
            "detail": "the request line and headers did not arrive in time",
            "code": code.value,
            "fix": spec.fix,
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
        f"x-error-code: {code.value}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeaderTimeoutProtocol(_Base):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP/1.1 protocol with a deadline for each request head.

    Both uvicorn protocols start a new ``cycle`` exactly when a request's headers are complete,
    so "the head is done" is "``self.cycle`` changed while parsing", whichever parser runs.
    """

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        between_requests = self.cycle is None or self.cycle.response_complete
        if between_requests and self.header_timer is None:
            self._arm_header_timer()  # the next request on a kept-alive connection
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self.header_timeout > 0:
            self.header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timed_out(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing else is being written
            self.transport.write(_timeout_answer())
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` from the settings. The protocol is a
    ``functools.partial`` (picklable, so ``--workers N`` processes get the same deadline)."""
    return {
        "http": functools.partial(
            HeaderTimeoutProtocol, header_timeout=settings.request_header_timeout_seconds
        ),
        "ws": "none",  # no websocket routes: an upgrade is not a way round the limits
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "limit_concurrency": settings.max_connections or None,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
