"""Transport against real HTTP servers on 127.0.0.1 (stdlib http.server in threads)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from client.core.errors import (
    DigestMismatch,
    Forbidden,
    LexiconError,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from client.transport import Transport, UnexpectedResponse

BLOB = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256)) * 4
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
HTML = b"<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
TOKEN = "secret-token"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate_to: int | None = None  # claim len(body) but send only this many bytes


@dataclass
class Server:
    """Answers each path with its queue of replies (the last one repeats) and records requests."""

    url: str = ""
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def hits(self, path: str) -> int:
        return sum(1 for _, p, _ in self.seen if p.split("?")[0] == path)


def _serve(server: Server) -> Callable[[], None]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            server.seen.append((self.command, self.path, dict(self.headers.items())))
            queue = server.routes.get(self.path.split("?")[0]) or [Reply(404, b"nope")]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate_to is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body[: reply.truncate_to])

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return stop


@pytest.fixture
def registry() -> Iterator[Server]:
    server = Server()
    stop = _serve(server)
    yield server
    stop()


@pytest.fixture
def storage() -> Iterator[Server]:
    server = Server()
    stop = _serve(server)
    yield server
    stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def transport(registry: Server, sleeps: list[float]) -> Iterator[Transport]:
    with Transport(
        registry.url, TOKEN, timeout=5, retries=2, backoff_base=0.01, sleep=sleeps.append
    ) as t:
        yield t


def problem(status: int, code: str, detail: str) -> Reply:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": detail, "code": code}
    headers = {"Content-Type": "application/problem+json", "X-Error-Code": code}
    return Reply(status, json.dumps(body).encode(), headers)


def ok_json(obj: object) -> Reply:
    return Reply(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def test_sends_bearer_token(transport: Transport, registry: Server) -> None:
    registry.routes["/api/v1/whoami"] = [ok_json({"user": "alice"})]
    assert transport.get_json("/api/v1/whoami") == {"user": "alice"}
    assert registry.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"


def test_retries_503_then_succeeds(transport: Transport, registry: Server, sleeps: list) -> None:
    registry.routes["/x"] = [problem(503, "unavailable", "busy"), ok_json({"ok": True})]
    assert transport.get_json("/x") == {"ok": True}
    assert registry.hits("/x") == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.01


def test_post_is_not_repeated_after_a_502(transport: Transport, registry: Server) -> None:
    """A 502 may come after the job was created: a second POST could submit it twice."""
    registry.routes["/jobs"] = [problem(502, "internal_error", "gateway"), ok_json({"ok": True})]
    with pytest.raises(LexiconError):
        transport.request("POST", "/jobs", json={"a": 1})
    assert registry.hits("/jobs") == 1


def test_post_is_retried_after_503(transport: Transport, registry: Server, sleeps: list) -> None:
    registry.routes["/jobs"] = [problem(503, "unavailable", "busy"), ok_json({"ok": True})]
    assert transport.request("POST", "/jobs", json={"a": 1}).json() == {"ok": True}
    assert registry.hits("/jobs") == 2


def test_backoff_grows_and_is_capped(registry: Server, sleeps: list) -> None:
    registry.routes["/x"] = [Reply(500, b"")]
    t = Transport(registry.url, retries=6, backoff_base=1, backoff_cap=4, sleep=sleeps.append)
    with pytest.raises(UnexpectedResponse):
        t.request("GET", "/x")
    assert registry.hits("/x") == 7
    assert [0.5 <= s <= 1 for s in sleeps[:1]] == [True]
    assert all(2 <= s <= 4 for s in sleeps[2:])  # base*2**n, jittered into [d/2, d], capped at 4


def test_honours_retry_after(transport: Transport, registry: Server, sleeps: list) -> None:
    limited = problem(429, "rate_limited", "slow down")
    limited.headers["Retry-After"] = "3"
    registry.routes["/x"] = [limited, ok_json([])]
    assert transport.get_json("/x") == []
    assert sleeps == [3.0]


def test_gives_up_with_typed_error(transport: Transport, registry: Server) -> None:
    limited = problem(429, "rate_limited", "slow down")
    limited.headers["Retry-After"] = "0"
    registry.routes["/x"] = [limited]
    with pytest.raises(RateLimited, match="slow down"):
        transport.request("GET", "/x")
    assert registry.hits("/x") == 3  # retries=2


def test_retry_after_beyond_limit_fails_at_once(registry: Server, sleeps: list) -> None:
    limited = problem(429, "rate_limited", "come back tomorrow")
    limited.headers["Retry-After"] = "86400"
    registry.routes["/x"] = [limited]
    t = Transport(registry.url, retries=3, max_retry_after=60, sleep=sleeps.append)
    with pytest.raises(RateLimited):
        t.request("GET", "/x")
    assert (registry.hits("/x"), sleeps) == (1, [])


def test_real_sleep_path_is_short(registry: Server) -> None:
    registry.routes["/x"] = [problem(503, "unavailable", "busy"), ok_json(1)]
    with Transport(registry.url, retries=1, backoff_base=0.001) as t:
        assert t.get_json("/x") == 1


def test_maps_error_code_not_message(transport: Transport, registry: Server) -> None:
    # The message says "unauthorized" but the code says forbidden: the code wins.
    registry.routes["/forbidden"] = [problem(403, "forbidden", "unauthorized for this namespace")]
    registry.routes["/missing"] = [problem(404, "not_found", "no such embedding")]
    body_only = problem(401, "unauthorized", "log in")
    del body_only.headers["X-Error-Code"]
    registry.routes["/body-only"] = [body_only]
    with pytest.raises(Forbidden):
        transport.request("GET", "/forbidden")
    with pytest.raises(NotFound, match="no such embedding"):
        transport.request("GET", "/missing")
    with pytest.raises(Unauthorized, match="log in"):
        transport.request("GET", "/body-only")
    assert registry.hits("/missing") == 1  # 4xx is not retried


def test_html_error_page_is_a_clear_error(transport: Transport, registry: Server) -> None:
    registry.routes["/x"] = [Reply(502, HTML, {"Content-Type": "text/html"})]
    with pytest.raises(UnexpectedResponse, match=r"502 with non-API content \(text/html\)") as e:
        transport.request("GET", "/x")
    assert e.value.status == 502 and "nginx" in str(e.value)
    assert registry.hits("/x") == 3
    registry.routes["/y"] = [Reply(404, HTML, {"Content-Type": "text/html"})]
    with pytest.raises(UnexpectedResponse, match="404 with non-API content"):
        transport.request("GET", "/y")


def test_connection_refused_is_unavailable(sleeps: list) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    t = Transport(f"http://127.0.0.1:{port}", retries=2, backoff_base=0.01, sleep=sleeps.append)
    with pytest.raises(Unavailable, match="could not reach"):
        t.request("GET", "/api/v1/whoami")
    assert len(sleeps) == 2


FILE = "/api/v1/embeddings/alice/cat/versions/1/file"


def test_download_verifies_and_reports_progress(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [Reply(200, BLOB, {"ETag": f'"{DIGEST}"'})]
    progress: list[tuple[int, int | None]] = []
    data = transport.download(
        FILE, DIGEST, params={"format": "canonical"}, progress=lambda d, t: progress.append((d, t))
    )
    assert data == BLOB
    assert progress[-1] == (len(BLOB), len(BLOB))
    assert registry.seen[0][1] == FILE + "?format=canonical"


def test_download_refuses_wrong_bytes(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [Reply(200, BLOB[:-1] + b"x")]
    with pytest.raises(DigestMismatch, match="hashes to"):
        transport.download(FILE, DIGEST)


def test_download_refuses_html_page_served_as_200(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [Reply(200, HTML, {"Content-Type": "text/html"})]
    with pytest.raises(DigestMismatch, match="text/html"):
        transport.download(FILE, DIGEST)


def test_download_truncated_body(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [Reply(200, BLOB, truncate_to=100)]
    with pytest.raises(DigestMismatch, match="cut off after 100 bytes"):
        transport.download(FILE, DIGEST)
    assert registry.hits(FILE) == 3


def test_download_retries_truncation_then_succeeds(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [Reply(200, BLOB, truncate_to=10), Reply(200, BLOB)]
    assert transport.download(FILE, DIGEST) == BLOB


def test_download_custom_digest_for_converted_formats(
    transport: Transport, registry: Server
) -> None:
    registry.routes[FILE] = [Reply(200, b"a1111 bytes")]
    assert transport.download(FILE, DIGEST, digest_of=lambda _: DIGEST) == b"a1111 bytes"
    with pytest.raises(DigestMismatch):
        transport.download(FILE, DIGEST, digest_of=lambda _: "sha256:" + "0" * 64)


def test_download_error_is_typed(transport: Transport, registry: Server) -> None:
    registry.routes[FILE] = [problem(404, "not_found", "no version 1")]
    with pytest.raises(NotFound):
        transport.download(FILE, DIGEST)


def test_redirect_to_storage_drops_token(
    transport: Transport, registry: Server, storage: Server
) -> None:
    presigned = "/bucket/blobs/sha256/ab?X-Amz-Signature=abc"
    registry.routes[FILE] = [Reply(307, b"", {"Location": storage.url + presigned})]
    storage.routes["/bucket/blobs/sha256/ab"] = [Reply(200, BLOB)]
    assert transport.download(FILE, DIGEST) == BLOB
    assert registry.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"
    method, path, headers = storage.seen[0]
    assert (method, path) == ("GET", presigned)
    assert "authorization" not in {k.lower() for k in headers}


def test_same_origin_redirect_keeps_token(transport: Transport, registry: Server) -> None:
    registry.routes["/old"] = [Reply(308, b"", {"Location": "/new"})]
    registry.routes["/new"] = [ok_json("moved")]
    assert transport.get_json("/old") == "moved"
    assert registry.seen[1][2]["Authorization"] == f"Bearer {TOKEN}"


def test_redirect_loop_is_refused(transport: Transport, registry: Server) -> None:
    registry.routes["/loop"] = [Reply(302, b"", {"Location": "/loop"})]
    with pytest.raises(UnexpectedResponse, match="redirected more than"):
        transport.request("GET", "/loop")
