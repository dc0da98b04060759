import hashlib
import json
import multiprocessing
import os
import re
from pathlib import Path

import pytest

import client.cache
from client.cache import Cache
from client.core.errors import DigestMismatch

DATA = b"canonical safetensors bytes, pretend" * 10
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
HEX = DIGEST.removeprefix("sha256:")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def drawn_layout() -> list[str]:
    """Full paths drawn in client.cache's docstring tree (directories end in '/')."""
    doc = client.cache.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    root = lines[0].strip()
    indent = len(lines[0]) - len(lines[0].lstrip())
    stack: list[str] = [root]
    paths: list[str] = []
    for line in lines[1:]:
        match = re.search(r"[├└]── (\S+)", line)
        if not match:
            continue  # a comment continuation line
        depth = (match.start() - indent) // 4 + 1
        del stack[depth:]
        stack.append(match.group(1))
        paths.append("".join(stack))
    return paths


PLACEHOLDERS = {"<hex>": HEX, "<ns>": "alice", "<name>": "cat", "<tag>": "latest", "<number>": "3"}


def test_layout_matches_docstring(tmp_path: Path) -> None:
    clock = Clock()
    cache = Cache(tmp_path, clock=clock)
    cache.put_blob(DIGEST, DATA)
    cache.put_ref("alice", "cat", "latest", digest=DIGEST, version=3)
    cache.put_version("alice", "cat", 3, {"number": 3, "digest": DIGEST})

    drawn = drawn_layout()
    assert "<cache>/blobs/sha256/<hex>" in drawn and len(drawn) >= 8
    patterns = []
    for entry in drawn:
        concrete = entry.replace("<cache>/", f"{tmp_path}/")
        pattern = re.escape(entry.removeprefix("<cache>/"))
        for placeholder, value in PLACEHOLDERS.items():
            concrete = concrete.replace(placeholder, value)
            pattern = pattern.replace(re.escape(placeholder), r"[^/]+")
        assert Path(concrete).exists(), f"docstring draws {entry} but {concrete} is missing"
        assert Path(concrete).is_dir() == entry.endswith("/"), entry
        patterns.append(re.compile(pattern.rstrip("/")))
    # ... and nothing lives where the drawing does not say (no temp files left behind either).
    for path in files_under(tmp_path):
        assert any(p.fullmatch(path) for p in patterns), f"{path} is not in the drawn layout"
    assert (tmp_path / "blobs" / "sha256" / HEX).read_bytes() == DATA
    assert cache.blob_path(DIGEST) == tmp_path / "blobs" / "sha256" / HEX
    ref = json.loads((tmp_path / "refs/alice/cat/latest.json").read_text())
    assert ref == {"digest": DIGEST, "version": 3, "resolved_at": clock.now}


def test_put_blob_refuses_wrong_bytes_and_keeps_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(DigestMismatch):
        cache.put_blob(DIGEST, DATA[:-1])
    assert not cache.blob_path(DIGEST).exists()
    assert [p for p in files_under(tmp_path) if p.startswith("blobs")] == []
    assert cache.get_blob(DIGEST) is None


def test_get_blob_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.get_blob(DIGEST) is None
    assert cache.put_blob(DIGEST, DATA) == cache.blob_path(DIGEST)
    assert cache.get_blob(DIGEST) == DATA
    assert cache.has_blob(DIGEST)
    cache.put_blob(DIGEST, DATA)  # storing again is a no-op
    assert cache.get_blob(DIGEST) == DATA


def test_corrupted_blob_is_deleted_and_reported_as_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    path = cache.put_blob(DIGEST, DATA)
    path.write_bytes(DATA[:10])  # a disk error or a stray editor
    assert cache.get_blob(DIGEST) is None
    assert not path.exists()
    cache.put_blob(DIGEST, DATA)  # the caller fetches again
    assert cache.get_blob(DIGEST) == DATA


def test_put_blob_repairs_a_corrupted_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    path = cache.put_blob(DIGEST, DATA)
    path.write_bytes(b"garbage")
    cache.put_blob(DIGEST, DATA)
    assert path.read_bytes() == DATA


def test_tag_ttl(tmp_path: Path) -> None:
    clock = Clock()
    cache = Cache(tmp_path, clock=clock)
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=60) is None
    cache.put_ref("alice", "cat", "latest", digest=DIGEST, version=3)
    clock.now += 59
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=60) == DIGEST
    clock.now += 2
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=60) is None
    # offline: a stale answer beats none
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=None) == DIGEST
    assert cache.get_ref("alice", "cat", "latest").version == 3
    # re-resolving refreshes it
    cache.put_ref("alice", "cat", "latest", digest=DIGEST, version=4)
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=60) == DIGEST
    assert cache.resolve_tag("alice", "cat", "stable", ttl_s=60) is None


def test_damaged_ref_and_version_files_are_misses(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_ref("alice", "cat", "latest", digest=DIGEST, version=3)
    cache.put_version("alice", "cat", 3, {"number": 3})
    (tmp_path / "refs/alice/cat/latest.json").write_text("{not json")
    (tmp_path / "versions/alice/cat/3.json").write_text("[1, 2]")
    assert cache.resolve_tag("alice", "cat", "latest", ttl_s=None) is None
    assert cache.get_version("alice", "cat", 3) is None


def test_version_metadata_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    meta = {"namespace": "alice", "name": "cat", "number": 3, "tags": ["latest"]}
    assert cache.get_version("alice", "cat", 3) is None
    cache.put_version("alice", "cat", 3, meta)
    assert cache.get_version("alice", "cat", 3) == meta


def test_names_cannot_escape_the_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    with pytest.raises(Exception, match="invalid"):
        cache.put_ref("..", "cat", "latest", digest=DIGEST, version=1)
    with pytest.raises(Exception, match="invalid"):
        cache.blob_path("sha256:../../etc/passwd")
    assert not (tmp_path / "c").exists() or files_under(tmp_path / "c") == set()


# Concurrency: separate processes, as when several `hub pull` runs share one cache.
BIG = os.urandom(2 * 1024 * 1024)  # big enough that writes overlap
BIG_DIGEST = "sha256:" + hashlib.sha256(BIG).hexdigest()


def _writer(root: str, data: bytes, digest: str, rounds: int) -> None:
    cache = Cache(root)
    for _ in range(rounds):
        cache.put_blob(digest, data)
        got = cache.get_blob(digest)
        assert got is None or got == data


def test_concurrent_processes_write_one_intact_blob(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), BIG, BIG_DIGEST, 5)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = Cache(tmp_path)
    assert cache.blob_path(BIG_DIGEST).read_bytes() == BIG
    blob_files = [p for p in files_under(tmp_path) if p.startswith("blobs/")]
    assert blob_files == [f"blobs/sha256/{BIG_DIGEST.removeprefix('sha256:')}"]
