"""A publish does no needless work a publisher would notice: on SQLite it queues for the write
lock once (every extra ``BEGIN IMMEDIATE`` is another turn behind every other publisher) and
sends a bounded number of statements (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.registry.helpers import Hub


@contextmanager
def statements(hub: Hub) -> Iterator[list[str]]:
    """Every SQL statement the registry's engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(hub.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(hub.engine, "before_cursor_execute", record)


def test_a_publish_takes_the_sqlite_write_lock_once(make_hub) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub("sqlite-local")
    token = hub.user("alice")
    hub.published("alice", "dog", token)
    with statements(hub) as seen:
        again = hub.published("alice", "dog", token, meta={"tags": ["dogs"]})
        other = hub.published("alice", "cat", token)
    assert again["number"] == 2 and other["number"] == 1
    assert sum(s == "BEGIN IMMEDIATE" for s in seen) == 2, seen


def test_a_publish_costs_a_bounded_number_of_statements(hub: Hub) -> None:
    token = hub.user("alice")
    hub.published("alice", "dog", token)
    with statements(hub) as seen:
        body = hub.published("alice", "dog", token, meta={"tags": ["dogs", "brown"]})
    assert body["number"] == 2 and "latest" in body["tags"]
    work = [s for s in seen if s not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")]
    assert len(work) <= 17, "\n".join(work)
