"""Reads do not queue for worker threads (issue 12): on SQLite an anonymous read needs no
thread at all, so GETs keep answering while every worker thread is busy (a burst of publishes,
slow conversions), and a request does not pay a thread round trip for each rate-limit rule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tests.registry.helpers import Hub


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_anonymous_sqlite_reads_use_no_worker_thread(make_hub) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub("sqlite-local")
    token = hub.user("alice")
    digest = hub.published("alice", "dog", token)["digest"]
    portal = hub.client.blocking_portal
    loop = portal.call(asyncio.get_running_loop)  # type: ignore[union-attr, arg-type]
    executor = CountingExecutor()
    loop.set_default_executor(executor)
    paths = [
        "/api/v1/embeddings/alice/dog/",
        "/api/v1/embeddings/alice/dog/versions/1",
        "/api/v1/embeddings/alice/dog/versions/latest",
        f"/api/v1/embeddings/alice/dog/versions/{digest}",
        "/api/v1/embeddings?q=dog",
    ]
    for path in paths:
        assert hub.client.get(path).status_code == 200, path
    assert hub.client.head(f"/api/v1/blobs/{digest}").status_code == 200
    assert hub.client.get("/api/v1/embeddings/alice/nope/").status_code == 404
    assert executor.submitted == 0


def test_head_blob_says_its_body_is_empty(hub: Hub) -> None:
    """A client that reads a HEAD answer like a GET's (wrk, a naive proxy) must not wait for
    body bytes that never come: Content-Length is 0, not the 4 of a JSON ``null``."""
    token = hub.user("alice")
    digest = hub.published("alice", "dog", token)["digest"]
    answer = hub.client.head(f"/api/v1/blobs/{digest}")
    assert answer.status_code == 200
    assert answer.headers["content-length"] == "0"
