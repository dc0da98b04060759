"""Real services for the tests, started on demand: PostgreSQL, moto's S3 server, OpenStack Swift.

The project carries its own start-up code so a fresh clone (and CI) needs nothing from outside
the repository beyond Debian's PostgreSQL binaries."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``ready`` until it returns True; a service that never answers is a hard error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def wait_until_serving(proc: Any, base_url: str, log: Path, *, timeout: float = 60) -> None:
    """Wait for a ``lexicon-registry serve`` subprocess to answer ``/healthz``; if it exits
    first, fail with its log (a crash at start-up says why)."""
    import httpx

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=timeout, what=f"lexicon-registry serve at {base_url}")
