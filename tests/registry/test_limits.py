"""Limits on slow, large and unauthenticated traffic (issue 8, defect 8).

The wire-level tests run ``lexicon-registry serve`` in a subprocess, since that is what users
run, and talk raw HTTP/1.1 over sockets: a client that sends headers and then nothing, a
half-written request line, a body trickled a byte at a time. Timeouts are set short here (2 s
for headers, 1 s of grace for bodies); connection counts stay small (two cores).

Rate limits are in test_rate_limits.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from registry.cli import app as cli
from tests.registry.helpers import auth
from tests.services import free_port, wait_until_serving

BIN = Path(sys.executable).parent / "lexicon-registry"
HEADER_TIMEOUT_S = 2.0
BODY_GRACE_S = 1.0
BODY_MIN_RATE = 1000  # bytes/s
MAX_HEADER_BYTES = 16384
MB = 1024 * 1024


@dataclass
class Served:
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def _serve(tmp: Path, **settings: str) -> Iterator[Served]:
    """``lexicon-registry serve`` on the embedded default in ``tmp`` with ``LEXICON_*``
    ``settings``; alice's token comes from ``create-user`` on the same data directory."""
    data = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEXICON_")}
    created = CliRunner(env={"LEXICON_DATA_DIR": str(data)}).invoke(
        cli, ["create-user", "alice", "--data-dir", str(data)]
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    env.update({f"LEXICON_{k.upper()}": v for k, v in settings.items()})
    env["LEXICON_LOG_LEVEL"] = "WARNING"
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_serving(proc, f"http://127.0.0.1:{port}", log)
        yield Served(port, token, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, with short header/body timeouts and a small header cap."""
    with _serve(
        tmp_path_factory.mktemp("limits"),
        request_header_timeout_seconds=str(HEADER_TIMEOUT_S),
        request_body_grace_seconds=str(BODY_GRACE_S),
        request_body_min_rate=str(BODY_MIN_RATE),
        max_header_bytes=str(MAX_HEADER_BYTES),
    ) as server:
        yield server


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends within ``timeout``; True when it closed the connection."""
    received = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def _status_and_body(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":  # one chunk is all a problem takes
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return status, headers, json.loads(body) if body else {}


def _assert_problem(raw: bytes, status: int, code: str) -> dict:
    got, headers, body = _status_and_body(raw)
    assert got == status, raw[:500]
    assert headers["content-type"].startswith("application/problem+json"), headers
    assert headers["x-error-code"] == code and body["code"] == code, body
    assert body["detail"] and body["fix"], body
    return body


# -- authenticate and check the size before reading a body --------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/training-jobs"),
        ("POST", "/api/v1/embeddings/alice/cat/versions"),
        ("PUT", "/api/v1/training-jobs/job-1/checkpoint"),
    ],
)
@pytest.mark.parametrize("token", [None, "lxh_not-a-real-token"])
def test_unauthenticated_upload_is_refused_before_any_body_byte(
    served: Served, method: str, path: str, token: str | None
) -> None:
    """200 MB announced, no (valid) token, no body sent: 401 at once and the connection closed,
    instead of the server waiting for (and reading) 200 MB first."""
    headers = {
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(200 * MB),
        **auth(token),
    }
    with _connect(served) as sock:
        sock.sendall(_head(method, path, headers))
        raw, closed = _read_until_closed(sock, timeout=10)
    body = _assert_problem(raw, 401, "unauthorized")
    assert "token" in body["detail"]
    assert closed, "the server kept the connection open for the body it refused"


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/v1/embeddings/alice/cat/versions", 200 * MB),  # an embedding is a few KB
        ("/api/v1/orgs", 1 * MB),  # a JSON route
    ],
)
def test_announced_body_over_the_route_cap_is_refused_before_reading(
    served: Served, path: str, size: int
) -> None:
    content_type = "multipart/form-data; boundary=x" if "versions" in path else "application/json"
    headers = {"Content-Type": content_type, "Content-Length": str(size), **auth(served.token)}
    with _connect(served) as sock:
        sock.sendall(_head("POST", path, headers))
        raw, closed = _read_until_closed(sock, timeout=10)
    body = _assert_problem(raw, 413, "too_large")
    assert "bytes" in body["detail"]
    assert closed


def test_chunked_body_is_cut_once_past_the_route_cap(served: Served) -> None:
    """No Content-Length to check up front: the server counts while it reads and stops at the
    JSON cap (64 KiB by default) instead of taking the whole upload."""
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        **auth(served.token),
    }
    chunk = b"a" * 16384
    raw, closed, sent = b"", False, 0
    with _connect(served) as sock:
        sock.sendall(_head("POST", "/api/v1/orgs", headers))
        while sent < 4 * MB:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            raw, closed = _read_until_closed(sock, timeout=0.01)
            if raw or closed:
                break
        if not raw:
            raw, closed = _read_until_closed(sock, timeout=5)
    _assert_problem(raw, 413, "too_large")
    assert sent < 1 * MB, f"the server read {sent} bytes before refusing"


def test_authenticated_upload_within_the_caps_still_works(served: Served) -> None:
    from tests.registry.helpers import embedding_bytes

    response = httpx.post(
        f"{served.url}/api/v1/embeddings/alice/fine/versions",
        files={"file": ("f.safetensors", embedding_bytes())},
        headers=auth(served.token),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    org = httpx.post(
        f"{served.url}/api/v1/orgs", json={"name": "acme"}, headers=auth(served.token), timeout=30
    )
    assert org.status_code == 201, org.text


# -- slow clients -------------------------------------------------------------------------


def test_half_written_request_lines_are_closed_after_the_header_timeout(served: Served) -> None:
    """Slowloris: 50 connections that send half a request line and wait. The server closes each
    one once the header timeout passes, and keeps answering everyone else."""
    sockets = [_connect(served) for _ in range(50)]
    started = time.monotonic()
    try:
        for sock in sockets:
            sock.sendall(b"GET /api/v1/embeddi")
        closed_after = []
        for sock in sockets:
            _, closed = _read_until_closed(
                sock, timeout=HEADER_TIMEOUT_S + 4 - (time.monotonic() - started)
            )
            assert closed, "a half-written request was still open past the header timeout"
            closed_after.append(time.monotonic() - started)
        assert min(closed_after) >= HEADER_TIMEOUT_S * 0.8, closed_after  # not cut at once
    finally:
        for sock in sockets:
            sock.close()
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200


def test_the_next_request_on_a_kept_alive_connection_has_a_header_deadline_too(
    served: Served,
) -> None:
    with _connect(served) as sock:
        sock.sendall(_head("GET", "/healthz", {}))
        first, closed = _read_until_closed(sock, timeout=1)
        assert first.startswith(b"HTTP/1.1 200") and not closed
        sock.sendall(b"GET /api/v1/embe")
        started = time.monotonic()
        _, closed = _read_until_closed(sock, timeout=HEADER_TIMEOUT_S + 4)
    assert closed
    assert HEADER_TIMEOUT_S * 0.8 <= time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_an_oversized_request_head_is_refused_without_waiting_for_its_end(served: Served) -> None:
    """Headers past LEXICON_MAX_HEADER_BYTES get 431 at once: the server does not buffer an
    endless head until the header timeout."""
    started = time.monotonic()
    with _connect(served) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 4 * MAX_HEADER_BYTES
        )
        raw, closed = _read_until_closed(sock, timeout=HEADER_TIMEOUT_S + 2)
    assert raw.startswith(b"HTTP/1.1 431"), raw[:200]
    assert closed and time.monotonic() - started < HEADER_TIMEOUT_S
    # a head under the cap, with a body in the same packet, is served as before
    fine = httpx.get(
        f"{served.url}/healthz", headers={"X-Padding": "p" * (MAX_HEADER_BYTES // 2)}, timeout=5
    )
    assert fine.status_code == 200


def test_connections_past_the_limit_get_503(tmp_path: Path) -> None:
    """LEXICON_MAX_CONNECTIONS bounds open connections per worker; past it, requests are
    answered 503 at once instead of queueing behind idle sockets."""
    with _serve(tmp_path, max_connections="3") as server:
        idle = [_connect(server) for _ in range(3)]
        try:
            with _connect(server) as sock:
                sock.sendall(_head("GET", "/api/v1/embeddings", {}))
                raw, _ = _read_until_closed(sock, timeout=3)
            assert raw.startswith(b"HTTP/1.1 503"), raw[:200]
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/api/v1/embeddings", timeout=5).status_code == 200


def test_headers_trickled_byte_by_byte_are_cut_at_the_header_timeout(served: Served) -> None:
    """Sending a byte now and then does not keep a request head alive past the deadline."""
    head = _head("GET", "/api/v1/embeddings", {"X-Padding": "p" * 200})
    started = time.monotonic()
    closed = False
    with _connect(served) as sock:
        for byte in head[:-4]:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            _, closed = _read_until_closed(sock, timeout=0.2)
            if closed or time.monotonic() - started > HEADER_TIMEOUT_S + 4:
                break
    assert closed
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_trickled_body_is_cut_with_408(served: Served) -> None:
    """A body arriving far below the minimum rate is answered 408 and the connection closed."""
    headers = {"Content-Type": "application/json", "Content-Length": "4000", **auth(served.token)}
    started = time.monotonic()
    raw, closed = b"", False
    with _connect(served) as sock:
        sock.sendall(_head("POST", "/api/v1/orgs", headers) + b'{"name": "')
        while time.monotonic() - started < 10:
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            raw, closed = _read_until_closed(sock, timeout=0.25)
            if raw or closed:
                break
        if raw and not closed:
            more, closed = _read_until_closed(sock, timeout=5)
            raw += more
    _assert_problem(raw, 408, "request_timeout")
    assert closed
    assert time.monotonic() - started < BODY_GRACE_S + 4
