"""The read path does no needless work a user would notice: ``HEAD /blobs`` answers from the
database without a storage round trip, and reads on SQLite never wait for the write lock (a
long publish or a held lock does not stall every GET) (issue 12)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

from registry.storage.base import BlobStore
from tests.registry.helpers import Hub, auth


class CountingStore:
    """The real store, with every call counted by method name."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if callable(attr):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


def test_head_blob_answers_without_asking_the_store(hub: Hub) -> None:
    token = hub.user("alice")
    digest = hub.published("alice", "dog", token)["digest"]
    counting = CountingStore(hub.registry.store)
    hub.registry.store = counting
    try:
        assert hub.client.head(f"/api/v1/blobs/{digest}").status_code == 200
        assert hub.client.head(f"/api/v1/blobs/{digest}", headers=auth(token)).status_code == 200
        missing = "sha256:" + "0" * 64
        assert hub.client.head(f"/api/v1/blobs/{missing}").status_code == 404
    finally:
        hub.registry.store = counting.store
    assert counting.calls == []


def test_reads_do_not_wait_for_the_sqlite_write_lock(make_hub) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub("sqlite-local")
    token = hub.user("alice")
    digest = hub.published("alice", "dog", token)["digest"]
    path = hub.settings.resolved_database_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    answers: dict[str, int] = {}

    def read_all() -> None:
        for name, url in {
            "info": "/api/v1/embeddings/alice/dog/",
            "version": "/api/v1/embeddings/alice/dog/versions/latest",
            "search": "/api/v1/embeddings?q=dog",
            "head blob": f"/api/v1/blobs/{digest}",
        }.items():
            method = hub.client.head if name == "head blob" else hub.client.get
            answers[name] = method(url, headers=auth(token)).status_code

    reader = threading.Thread(target=read_all)
    try:
        reader.start()
        # A read that queued for the lock would wait out the 30 s busy timeout, then fail.
        reader.join(timeout=20)
        assert not reader.is_alive(), f"reads waited for the write lock (done: {answers})"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()
    assert answers == {"info": 200, "version": 200, "search": 200, "head blob": 200}


@pytest.mark.parametrize("ref", ["1", "stable", "latest"])
def test_a_download_counts_once_and_moves_trending(hub: Hub, ref: str) -> None:
    from datetime import datetime

    from registry.embeddings.search import trending_score

    token = hub.user("alice")
    hub.published("alice", "dog", token)
    base = "/api/v1/embeddings/alice/dog"
    hub.client.put(f"{base}/tags/stable", json={"version": 1}, headers=auth(token))
    for _ in range(3):
        response = hub.client.get(f"{base}/versions/{ref}/file", follow_redirects=False)
        assert response.status_code in (200, 307)
    info = hub.client.get(f"{base}/").json()
    assert info["downloads"] == 3
    from registry.embeddings.models import Embedding

    (row,) = hub.rows(Embedding)
    created = datetime.fromisoformat(info["created_at"])
    assert row.trending == pytest.approx(trending_score(3, 0, created))


def test_reads_give_their_connection_back_whatever_they_answer(hub: Hub) -> None:
    """The read routes run on a Core connection of their own (``read_connection``): a 404, a
    400 or a 200 must all return it to the pool, or a few thousand reads would exhaust it."""
    token = hub.user("alice")
    digest = hub.published("alice", "dog", token)["digest"]
    base = "/api/v1/embeddings/alice/dog"
    pool = hub.registry.engine.pool
    for headers in ({}, auth(token)):
        for path, status in [
            (f"{base}/", 200),
            (f"{base}/versions", 200),
            (f"{base}/versions/latest", 200),
            (f"{base}/versions/9", 404),
            ("/api/v1/embeddings/alice/nope/", 404),
            ("/api/v1/embeddings?q=dog&sort=stars", 200),
            ("/api/v1/embeddings?cursor=not-ours", 400),
        ]:
            assert hub.client.get(path, headers=headers).status_code == status, path
        assert hub.client.head(f"/api/v1/blobs/{digest}", headers=headers).status_code == 200
    assert pool.checkedout() == 0
