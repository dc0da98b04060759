"""Two workers never hold the same job: many workers claiming at once, on PostgreSQL
(``FOR UPDATE SKIP LOCKED``) and SQLite (``BEGIN IMMEDIATE``), each job is claimed once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from registry.accounts.access import Principal
from registry.db import session_scope
from registry.training import queue
from tests.training.conftest import TrainingHub

JOBS, WORKERS = 12, 8


def _race(hub: TrainingHub) -> None:
    alice, wtoken = hub.user("alice"), hub.worker_token()
    ids = {hub.submitted(alice)["id"] for _ in range(JOBS)}
    worker_ids = [hub.register(wtoken, ["sd1"]) for _ in range(WORKERS)]
    with session_scope(hub.engine) as session:
        from registry.accounts.services import principal_for_token

        principal: Principal = principal_for_token(session, wtoken)  # type: ignore[assignment]
    claimed: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(WORKERS)

    def work(worker_id: str) -> None:
        try:
            barrier.wait()
            while True:
                claim = queue.claim_job(hub.engine, principal, worker_id, lease_seconds=60)
                if claim is None:
                    return
                claimed.append(claim.job.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in worker_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    counts = Counter(claimed)
    assert set(counts) == ids and max(counts.values()) == 1, counts
    rows = hub.get("/api/v1/training-jobs", alice).json()["items"]
    assert {r["status"] for r in rows} == {"running"} and {r["attempts"] for r in rows} == {1}


def test_concurrent_claims_on_sqlite_take_each_job_once(thub: TrainingHub) -> None:
    _race(thub)


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_take_each_job_once(make_training_hub, new_postgres_database):
    _race(make_training_hub(new_postgres_database()))
