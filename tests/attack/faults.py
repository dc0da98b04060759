"""What the fault tests share: ``lexicon-registry serve`` as a subprocess one can kill -9, a TCP
relay in front of S3 one can cut and restore (moto keeps its data in memory, so stopping moto
itself would lose the blobs the test must find again), raw publishes, and the end-of-run audit
(version numbers, blobs present, every version downloads with its digest)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlmodel import select

from registry.accounts import services as accounts
from registry.app import build_registry
from registry.context import Registry
from registry.db import session_scope
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.settings import Settings
from tests.attack.hostile_publish import good_file
from tests.services import free_port, wait_until


class RegistryProcess:
    """``lexicon-registry serve`` in its own process (migrates, then serves) on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the process
        code = "from registry.cli import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--port", str(self.port)],
            env={**os.environ, "LEXICON_LOG_LEVEL": "WARNING", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=60, what=f"lexicon-registry serve on {self.port}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"registry exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        with contextlib.suppress(OSError):
            self._log.close()


class SwitchableRelay:
    """A loopback TCP relay to ``target_port``. ``cut()`` closes the listening socket and every
    open connection (clients then get 'connection refused', as from a storage service that is
    down); ``restore()`` listens on the same port again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR on POSIX
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def make_token(settings: Settings, username: str) -> str:
    """A user with a read+write token on the registry's database (created directly)."""
    registry = build_registry(settings)
    with session_scope(registry.engine) as session:
        user = accounts.create_user(session, username)
        token, _ = accounts.create_token(session, user, "faults")
    registry.engine.dispose()
    return token


def publish(url: str, token: str, ref: str, seed: int, timeout: float = 30) -> httpx.Response:
    """One raw publish of ``good_file(seed)`` as the next version of ``ref`` (ns/name)."""
    return httpx.post(
        f"{url}/api/v1/embeddings/{ref}/versions",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("e.safetensors", good_file(seed))},
        timeout=timeout,
    )


def is_clean_503(response: httpx.Response) -> bool:
    """A 503 answered as problem+json with a code and a detail (what the client retries)."""
    if response.status_code != 503:
        return False
    body = response.json() if "json" in response.headers.get("content-type", "") else None
    return (
        response.headers.get("content-type", "").startswith("application/problem+json")
        and isinstance(body, dict)
        and body.get("status") == 503
        and bool(body.get("code"))
        and bool(body.get("detail"))
    )


@dataclass
class Audit:
    """What the database and the store say after a fault run."""

    numbers: list[int]
    digests: list[str]
    missing_blobs: list[str] = field(default_factory=list)  # rows whose blob is gone
    bad_downloads: list[str] = field(default_factory=list)  # wrong bytes or not 200
    orphans: set[str] = field(default_factory=set)  # blobs no row references


def audit(registry: Registry, url: str, token: str, ref: str) -> Audit:
    """Every version of ``ref`` (numbers, digests), each blob present in the store, each file
    downloaded (following S3 redirects) with the digest its row names; and orphan blobs."""
    namespace, name = ref.split("/")
    with session_scope(registry.engine) as session:
        rows = session.exec(
            select(EmbeddingVersion.number, EmbeddingVersion.digest)
            .join(Embedding, Embedding.id == EmbeddingVersion.embedding_id)  # type: ignore[arg-type]
            .where(Embedding.name == name)
            .order_by(EmbeddingVersion.number)  # type: ignore[arg-type]
        ).all()
        every = set(session.exec(select(EmbeddingVersion.digest)).all())
    result = Audit([r[0] for r in rows], [r[1] for r in rows])
    result.missing_blobs = [d for d in result.digests if not registry.store.exists(d)]
    with httpx.Client(follow_redirects=True, timeout=30) as http:
        for number, digest in rows:
            response = http.get(
                f"{url}/api/v1/embeddings/{ref}/versions/{number}/file",
                headers={"Authorization": f"Bearer {token}"},
            )
            got = "sha256:" + hashlib.sha256(response.content).hexdigest()
            if response.status_code != 200 or got != digest:
                result.bad_downloads.append(f"v{number}: {response.status_code} {got}")
    result.orphans = set(registry.store.iter_digests()) - every
    return result


def settings_from_env(env: dict[str, str]) -> Settings:
    """The registry's own settings for ``env`` (what the server process builds)."""
    fields = {k.removeprefix("LEXICON_").lower(): v for k, v in env.items()}
    return Settings(**fields)  # type: ignore[arg-type]


def write_file(directory: Path, seed: int) -> Path:
    path = directory / f"e{seed}.safetensors"
    path.write_bytes(good_file(seed))
    return path
