"""``lexicon-registry gc`` is safe to run at any moment (issue 8, defects 2 and 3): a blob must
be unreferenced *and* older than ``LEXICON_GC_MIN_AGE_SECONDS`` to be collected, a publish that
re-uses an old orphan's bytes refreshes its age, and malformed stored JSON is skipped and
reported, never a crash."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

import httpx
from sqlmodel import select
from typer.testing import CliRunner

from client.core.canonical import serialize_safetensors
from registry.cli import app as cli
from registry.db import session_scope
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.gc import collect_garbage
from registry.training.models import TrainingJob
from tests.registry.helpers import Hub, auth, embedding_bytes, random_vectors
from tests.registry.test_registry_cli import _settings_env
from tests.training.conftest import job_params, png

# Small enough for a test, large enough that a publish's put -> commit (up to ~2 s here under
# load, waiting on SQLite's write lock) fits inside it; the shipped default is an hour. S3
# reports whole seconds, so "old" means GRACE + 1 s later.
GRACE = 10
OLD_AFTER = GRACE + 1.5


def _orphan(seed: int | None = None) -> tuple[str, bytes]:
    """A stored version file no version points at (what a failed publish leaves behind);
    ``embedding_bytes(seed=seed)`` publishes the same blob again."""
    vectors = random_vectors(seed=seed)
    return vectors.digest, serialize_safetensors(vectors.vectors)


def _download(hub: Hub, ns: str, name: str, number: int) -> bytes:
    """The version's canonical file over HTTP, following S3's presigned redirect for real."""
    r = hub.get(f"/api/v1/embeddings/{ns}/{name}/versions/{number}/file", follow_redirects=False)
    if r.status_code == 307:
        r = httpx.get(r.headers["location"], timeout=30)
    assert r.status_code == 200, (ns, name, number, r.status_code, r.text[:200])
    return r.content


def _run_gc(hub: Hub, *args: str, min_age: int | None = None) -> Any:
    env = _settings_env(hub.settings)
    if min_age is not None:
        env["LEXICON_GC_MIN_AGE_SECONDS"] = str(min_age)
    return CliRunner(env=env).invoke(cli, ["gc", *args])


def test_gc_looping_beside_concurrent_publishes_loses_no_published_file(make_hub, backend) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub(backend, gc_min_age_seconds=GRACE)
    token = hub.user("alice")
    # Old orphans: some are published again during the run (the re-upload case: the put finds
    # the blob there already), the rest must be collected by the looping gc.
    reused = [embedding_bytes(seed=1000 + i) for i in range(8)]
    for i in range(8):
        hub.store.put(*_orphan(seed=1000 + i))
    dead = [_orphan() for _ in range(4)]
    for digest, data in dead:
        hub.store.put(digest, data)
    time.sleep(OLD_AFTER)

    published: list[tuple[str, int, str]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def publisher(worker: int) -> None:
        for i in range(30):
            name = f"e{worker}"
            data = reused[worker * 2 + i // 15] if i % 15 == 7 else embedding_bytes()
            r = hub.publish("alice", name, token, data)
            with lock:
                if r.status_code == 201:
                    body = r.json()
                    published.append((name, body["number"], body["digest"]))
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    stop = threading.Event()
    passes: list[int] = []
    gc_errors: list[BaseException] = []

    def collector() -> None:
        while not stop.is_set():
            try:
                report = collect_garbage(hub.registry)
            except BaseException as exc:  # the test reports it below
                gc_errors.append(exc)
                return
            passes.append(len(report.orphans))

    gc_thread = threading.Thread(target=collector)
    threads = [threading.Thread(target=publisher, args=(w,)) for w in range(4)]
    gc_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    gc_thread.join()

    assert not gc_errors, gc_errors
    assert not failures, failures
    assert len(published) == 120 and len(passes) >= 2
    missing = [(n, v, d) for n, v, d in published if not hub.store.exists(d)]
    assert not missing, f"{len(missing)} of {len(published)} published versions lost their file"
    for name, number, digest in published:
        data = _download(hub, "alice", name, number)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    # The collector did collect: the old orphans nobody published again are gone.
    assert not any(hub.store.exists(d) for d, _ in dead)


def test_gc_keeps_unreferenced_blobs_younger_than_the_minimum_age(hub: Hub) -> None:
    digest, data = _orphan()
    hub.store.put(digest, data)
    young = _run_gc(hub)  # the shipped default: an hour
    assert young.exit_code == 0, young.output
    assert "0 orphan blob(s)" in young.output and "younger than 3600s" in young.output
    assert hub.store.exists(digest)
    time.sleep(2.5)
    old = _run_gc(hub, min_age=1)
    assert old.exit_code == 0, old.output
    assert f"deleted {digest}" in old.output and not hub.store.exists(digest)


def test_putting_an_existing_blob_again_refreshes_its_age(hub: Hub) -> None:
    """The re-upload case: a publish whose blob is an old orphan must not lose it to a gc that
    runs before its row commits, so ``put`` makes the blob young again."""
    digest, data = _orphan()
    hub.store.put(digest, data)
    time.sleep(2.5)
    hub.store.put(digest, data)  # what publish does with bytes the store already holds
    report = collect_garbage(hub.registry, min_age_seconds=2)
    assert digest not in report.orphans and report.young == 1
    assert hub.store.exists(digest)


def _bob_with_a_job(hub: Hub) -> str:
    bob = hub.user("bob")
    files = [("params", (None, json.dumps(job_params(target="bob/toy")), "application/json"))]
    files.append(("images", ("a.png", png(seed=3), "image/png")))
    r = hub.client.post("/api/v1/training-jobs", files=files, headers=auth(bob))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_gc_skips_and_reports_malformed_stored_json(hub: Hub) -> None:
    token = hub.user("alice")
    kept = {}
    for name, training in [
        ("a", {"previews": ["x", 1]}),
        ("b", ["not", "an", "object"]),
        ("c", {"previews": {"digest": 5}}),
        ("d", "text"),
    ]:
        body = hub.published("alice", name, token, embedding_bytes())
        kept[name] = body["digest"]
        with session_scope(hub.engine) as session:
            version = session.exec(
                select(EmbeddingVersion)
                .join(Embedding, EmbeddingVersion.embedding_id == Embedding.id)
                .where(Embedding.name == name)
            ).one()
            version.training = training
            session.add(version)
    job_id = _bob_with_a_job(hub)
    with session_scope(hub.engine) as session:
        job = session.get(TrainingJob, job_id)
        job.images = ["x", 1, {"digest": 5}]
        session.add(job)
    orphan, data = _orphan()
    hub.store.put(orphan, data)

    result = _run_gc(hub, min_age=0)
    assert result.exit_code == 0, result.output
    assert f"deleted {orphan}" in result.output
    assert "malformed" in result.output and "5 row(s)" in result.output
    for name, digest in kept.items():
        assert hub.store.exists(digest)
        assert _download(hub, "alice", name, 1)
    r = hub.get(f"/api/v1/embeddings/alice/a/versions/1/previews/{orphan}", token)
    assert r.status_code == 404


def test_gc_removes_temp_files_a_crashed_write_left_in_the_local_store(make_hub) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub("sqlite-local")
    fan = hub.settings.resolved_blob_dir / "blobs" / "sha256" / "ab"
    fan.mkdir(parents=True)
    stale, writing = fan / ".tmp-crashed", fan / ".tmp-being-written"
    stale.write_bytes(b"half a blob")
    writing.write_bytes(b"a put in flight")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    result = _run_gc(hub)
    assert result.exit_code == 0, result.output
    assert "removed 1 stale temp file(s)" in result.output
    assert not stale.exists() and writing.exists()
