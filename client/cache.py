"""The client's content-addressed cache, safe to share between concurrent processes.

Layout (``<cache>`` is ``ClientConfig.cache_dir``, default ``platformdirs.user_cache_dir``)::

    <cache>/
    ├── blobs/
    │   └── sha256/
    │       └── <hex>                    <- canonical bytes named by their sha256 (64 hex
    │                                       digits); immutable
    ├── refs/
    │   └── <ns>/<name>/<tag>.json       <- {"digest", "version", "resolved_at"}: a tag's last
    │                                       resolution, re-asked after a TTL (tags move)
    ├── versions/
    │   └── <ns>/<name>/<number>.json    <- the registry's version JSON (numbers never move)
    └── locks/
        └── sha256/<hex>.lock            <- one file lock per blob

``client.hub.Hub.pull`` given no ``out`` also writes the converted file it returns under
``<cache>/exports/<ns>/<name>/<hex>/<format>/`` (derived from the verified blob, rewritten on every
pull, never trusted as a source).

Every write goes to a unique ``.tmp-*`` file in the target's directory and is renamed into place,
so readers never see half a file. A blob is hashed *before* it is written: bytes that do not match
their digest are never kept. A cached blob is hashed again when read, and a corrupted one is
deleted and reported as a miss so the caller downloads it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from client.core.errors import DigestMismatch, LexiconError
from client.core.files import atomic_write
from client.core.names import validate_slug

from .refs import validate_digest, validate_tag

LOCK_TIMEOUT_S = 60.0


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(digest: str, data: bytes) -> None:
    """Raise DigestMismatch unless ``data`` hashes to ``digest`` (constant-time comparison)."""
    actual = sha256_digest(data)
    if not hmac.compare_digest(actual, validate_digest(digest)):
        raise DigestMismatch(
            f"bytes hash to {actual}, not {digest}; they were not kept. "
            "Retry the download; if it persists the server or a proxy corrupts it."
        )


@dataclass(frozen=True)
class RefEntry:
    digest: str
    version: int
    resolved_at: float


class Cache:
    """Blobs, tag resolutions and version metadata under one directory (see module docstring)."""

    def __init__(self, root: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self._clock = clock

    # --- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """Where the blob lives (whether or not it is cached yet)."""
        return self.root / "blobs" / "sha256" / validate_digest(digest).removeprefix("sha256:")

    def _lock(self, digest: str) -> FileLock:
        hexd = validate_digest(digest).removeprefix("sha256:")
        path = self.root / "locks" / "sha256" / f"{hexd}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path, timeout=LOCK_TIMEOUT_S)

    def put_blob(self, digest: str, data: bytes) -> Path:
        """Keep ``data`` under ``digest`` after verifying it; raises DigestMismatch, saving
        nothing, when they differ. Storing a blob that is already intact is a no-op."""
        verify_digest(digest, data)
        path = self.blob_path(digest)
        with self._lock(digest):
            if self._read_verified(digest, path) is None:
                atomic_write(path, data)
        return path

    def get_blob(self, digest: str) -> bytes | None:
        """The verified bytes, or None on a miss. A corrupted file is deleted (under the blob's
        lock, so a concurrent writer's fresh copy is not removed) and reported as a miss."""
        path = self.blob_path(digest)
        if not path.exists():
            return None
        data = self._read_verified(digest, path)
        if data is not None:
            return data
        with self._lock(digest):
            data = self._read_verified(digest, path)
            if data is None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return data

    def has_blob(self, digest: str) -> bool:
        return self.get_blob(digest) is not None

    @staticmethod
    def _read_verified(digest: str, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            verify_digest(digest, data)
        except DigestMismatch:
            return None
        return data

    # --- tags --------------------------------------------------------------------------------
    def _ref_path(self, namespace: str, name: str, tag: str) -> Path:
        validate_slug(namespace, "namespace")
        validate_slug(name, "embedding name")
        return self.root / "refs" / namespace / name / f"{validate_tag(tag)}.json"

    def put_ref(self, namespace: str, name: str, tag: str, *, digest: str, version: int) -> None:
        """Remember what ``tag`` resolved to now; ``resolve_tag`` trusts it for a TTL."""
        entry = {"digest": validate_digest(digest), "version": int(version)}
        entry["resolved_at"] = self._clock()
        atomic_write(self._ref_path(namespace, name, tag), _dump(entry))

    def get_ref(self, namespace: str, name: str, tag: str) -> RefEntry | None:
        """The last resolution of ``tag`` whatever its age (offline mode uses stale ones)."""
        raw = _load(self._ref_path(namespace, name, tag))
        try:
            return RefEntry(
                validate_digest(raw["digest"]), int(raw["version"]), float(raw["resolved_at"])
            )
        except (TypeError, KeyError, ValueError, LexiconError):
            return None

    def resolve_tag(self, namespace: str, name: str, tag: str, ttl_s: float | None) -> str | None:
        """The cached digest for ``tag``, or None when missing or older than ``ttl_s`` seconds
        (tags move, so the caller asks the registry again). ``ttl_s=None`` never expires."""
        entry = self.get_ref(namespace, name, tag)
        if entry is None:
            return None
        if ttl_s is not None and self._clock() - entry.resolved_at > ttl_s:
            return None
        return entry.digest

    # --- versions ----------------------------------------------------------------------------
    def _version_path(self, namespace: str, name: str, number: int) -> Path:
        validate_slug(namespace, "namespace")
        validate_slug(name, "embedding name")
        return self.root / "versions" / namespace / name / f"{int(number)}.json"

    def put_version(self, namespace: str, name: str, number: int, meta: dict[str, Any]) -> None:
        """Keep a version's metadata: numbers never move, so it needs no TTL (only ``yanked``
        can change, and the registry is asked again whenever online)."""
        atomic_write(self._version_path(namespace, name, number), _dump(meta))

    def get_version(self, namespace: str, name: str, number: int) -> dict[str, Any] | None:
        raw = _load(self._version_path(namespace, name, number))
        return raw or None


def _dump(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()


def _load(path: Path) -> dict[str, Any]:
    """A JSON object from the cache, or {} for a missing or damaged file (the cache is only a
    cache: damage means a miss, never an error)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}
