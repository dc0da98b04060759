"""Faults the registry must survive without losing a version (issue 8): an S3 outage, a
PostgreSQL restart during publishes, and kill -9 of one of two registry processes. Each runs
real processes (``lexicon-registry serve``, moto's S3 server, a throwaway PostgreSQL cluster)
and ends with the same audit: version numbers 1..N with no gap or duplicate, every row's blob
present, every version downloads with its digest. Figures are in docs/RELIABILITY.md."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from client.hub import Hub
from registry.app import build_registry
from tests.attack.faults import (
    RegistryProcess,
    SwitchableRelay,
    audit,
    is_clean_503,
    make_token,
    publish,
    settings_from_env,
    write_file,
)
from tests.services.moto import MotoServer
from tests.services.postgres import Cluster

pytestmark = [pytest.mark.postgres]

REF = "alice/faulty"
GC_MIN_AGE_S = 5


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    """A moto server of this test's own (the relay in front of it is what the test cuts)."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.mark.s3
def test_s3_outage_refuses_publishes_cleanly_and_loses_nothing(
    moto: MotoServer, new_postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    relay = SwitchableRelay(moto.port)
    bucket = moto.endpoint.new_bucket()
    env = {
        **moto.endpoint.env(bucket),
        "LEXICON_S3_ENDPOINT_URL": relay.url,
        "LEXICON_DATABASE_URL": new_postgres_database(),
        "LEXICON_DATA_DIR": str(tmp_path),
    }
    server = RegistryProcess(env)
    try:
        token = make_token(settings_from_env(env), "alice")
        before = [publish(server.url, token, REF, seed) for seed in (1, 2, 3)]
        assert [r.status_code for r in before] == [201, 201, 201], before[-1].text

        relay.cut()
        during = [publish(server.url, token, REF, seed) for seed in (4, 5, 6)]
        assert all(is_clean_503(r) for r in during), [(r.status_code, r.text) for r in during]
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["storage"].startswith("error"), ready.text
        assert ready.json()["database"] == "ok"
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200

        relay.restore()
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
        after = [publish(server.url, token, REF, seed) for seed in (4, 5, 6, 7)]
        assert [r.status_code for r in after] == [201] * 4, after[-1].text

        registry = build_registry(settings_from_env(env))
        found = audit(registry, server.url, token, REF)
        assert found.numbers == list(range(1, 8))
        published = [r.json()["digest"] for r in before + after]
        assert sorted(found.digests) == sorted(published)
        assert found.missing_blobs == [] and found.bad_downloads == []
        assert found.orphans == set()  # a refused publish stored nothing
        print(
            f"\ns3 outage: 1 fault, {len(before + during + after) + 2} requests, 503s {len(during)}"
        )
        registry.engine.dispose()
    finally:
        server.stop()
        relay.cut()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on its own port (this test restarts it)."""
    throwaway = Cluster()
    yield throwaway
    throwaway.stop()


def test_postgres_restart_during_publishes_loses_no_version(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = {"LEXICON_DATABASE_URL": cluster.start(), "LEXICON_DATA_DIR": str(tmp_path)}
    server = RegistryProcess(env)
    try:
        token = make_token(settings_from_env(env), "alice")
        statuses: list[int] = []
        accepted: dict[str, int] = {}  # digest -> number, as answered (directly or on retry)
        retried: list[tuple[int, int]] = []  # (seed, number the client's retry returned)
        stop = threading.Event()
        errors: list[BaseException] = []

        def publisher() -> None:
            hub = Hub(server.url, token, cache_dir=tmp_path / "cache", offline=False, retries=6)
            seed = 100
            try:
                while not stop.is_set() and seed < 160:
                    seed += 1
                    response = publish(server.url, token, REF, seed)
                    statuses.append(response.status_code)
                    if response.status_code in (200, 201):
                        accepted[response.json()["digest"]] = response.json()["number"]
                        continue
                    assert is_clean_503(response), (response.status_code, response.text)
                    version = hub.push(write_file(tmp_path, seed), REF)
                    accepted[version.digest] = version.number
                    retried.append((seed, version.number))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test thread
                errors.append(exc)
            finally:
                hub.close()

        thread = threading.Thread(target=publisher)
        thread.start()
        wait_for(lambda: len(statuses) >= 5, "5 publishes before the restart")
        data, log = str(cluster.dir / "data"), str(cluster.dir / "log")
        # -l: the restarted server must not hold this process's output pipe open.
        cluster._run("pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "restart")
        count = len(statuses)
        wait_for(lambda: len(statuses) >= count + 8 or errors, "8 publishes after the restart")
        stop.set()
        thread.join(timeout=60)
        assert not errors, errors
        assert set(statuses) <= {200, 201, 503}, statuses

        registry = build_registry(settings_from_env(env))
        found = audit(registry, server.url, token, REF)
        assert found.numbers == list(range(1, len(found.numbers) + 1))
        assert len(set(found.digests)) == len(found.digests)
        assert dict(zip(found.digests, found.numbers, strict=True)) == accepted
        assert found.missing_blobs == [] and found.bad_downloads == []
        print(
            f"\npg restart: {len(statuses)} publishes, 503s {statuses.count(503)}, "
            f"retried {retried}"
        )
        registry.engine.dispose()
    finally:
        server.stop()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_9_of_one_replica_loses_nothing_and_gc_collects_its_orphans(
    new_postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    env = {"LEXICON_DATABASE_URL": new_postgres_database(), "LEXICON_DATA_DIR": str(tmp_path)}
    doomed = RegistryProcess(env)  # migrates first; the second starts on a migrated database
    survivor = RegistryProcess(env)
    try:
        token = make_token(settings_from_env(env), "alice")
        accepted: dict[str, int] = {}
        statuses: list[int] = []
        refused: list[str] = []  # connection errors from the killed replica
        lock = threading.Lock()

        def publisher(first_seed: int) -> None:
            for seed in range(first_seed, first_seed + 8):
                for server in (doomed, survivor) if seed % 2 else (survivor,):
                    try:
                        response = publish(server.url, token, REF, seed, timeout=20)
                    except httpx.TransportError as exc:
                        with lock:
                            refused.append(type(exc).__name__)
                        continue  # what the client does: the same bytes to the other replica
                    with lock:
                        statuses.append(response.status_code)
                        if response.status_code in (200, 201):
                            accepted[response.json()["digest"]] = response.json()["number"]
                    break

        threads = [threading.Thread(target=publisher, args=(1000 + 100 * i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(statuses) >= 6, "6 publishes before kill -9")
        doomed.kill9()
        for thread in threads:
            thread.join(timeout=120)
        assert set(statuses) <= {200, 201}, statuses
        assert httpx.get(f"{survivor.url}/readyz", timeout=10).status_code == 200

        registry = build_registry(settings_from_env(env))
        found = audit(registry, survivor.url, token, REF)
        assert len(found.numbers) == 32  # 4 publishers x 8 files, each answered 2xx once
        assert found.numbers == list(range(1, 33))
        assert dict(zip(found.digests, found.numbers, strict=True)) == accepted
        assert found.missing_blobs == [] and found.bad_downloads == []

        # A publish killed between storing its blob and committing its row leaves an orphan;
        # plant one so the check never depends on where the kill landed.
        orphan = b"blob of a publish that never committed"
        planted = time.monotonic()
        registry.store.put("sha256:" + hashlib.sha256(orphan).hexdigest(), orphan)
        orphans = set(registry.store.iter_digests()) - set(found.digests)
        gc_env = {**env, "LEXICON_GC_MIN_AGE_SECONDS": str(GC_MIN_AGE_S)}
        young = run_gc(gc_env)
        if time.monotonic() - planted < GC_MIN_AGE_S:  # gc ran inside the grace: kept all
            assert f"kept {len(orphans)} unreferenced" in young, young
        time.sleep(max(0.0, planted + GC_MIN_AGE_S + 0.5 - time.monotonic()))
        collected = run_gc(gc_env)
        deleted = {
            line.split()[1] for line in (young + collected).splitlines() if "deleted" in line
        }
        assert deleted == orphans, (young, collected)
        final = audit(registry, survivor.url, token, REF)
        assert final.orphans == set()
        assert final.missing_blobs == [] and final.bad_downloads == []
        assert final.numbers == list(range(1, 33))
        print(f"\nkill -9: {len(statuses)} answered, {len(refused)} cut {refused}, gc {deleted}")
        registry.engine.dispose()
    finally:
        survivor.stop()
        doomed.stop()


def run_gc(env: dict[str, str]) -> str:
    code = "from registry.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "gc"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
