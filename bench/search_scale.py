"""Search at scale (issue 12, target 3): p50/p99 of ``search_embeddings`` on a seeded database.

    .venv/bin/python bench/seed.py URL --count 100000      # once
    .venv/bin/python bench/search_scale.py URL [--runs 50]

Each case (common word, rare word, family/type/tag filters, every sort, a deep cursor page,
limit=100) runs through the service function in a read transaction, as the route does, and
prints p50/p99 in ms; on PostgreSQL it then prints EXPLAIN ANALYZE of the slowest case's
SELECT (the statement and parameters captured from the driver, so it is the exact query).
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import event

from registry.db import make_engine, read_scope
from registry.embeddings.search import SearchQuery, search_embeddings

CASES = {
    "front page (downloads)": SearchQuery(),
    "sort=stars": SearchQuery(sort="stars"),
    "sort=trending": SearchQuery(sort="trending"),
    "sort=recent": SearchQuery(sort="recent"),
    "common word 'portrait'": SearchQuery(q="portrait"),
    "common word, sort=recent": SearchQuery(q="portrait", sort="recent"),
    "rare word 'w300'": SearchQuery(q="w300"),
    "family=sdxl": SearchQuery(family="sdxl"),
    "type=negative": SearchQuery(type="negative"),
    "tag=retro, sort=trending": SearchQuery(tag="retro", sort="trending"),
    "limit=100": SearchQuery(limit=100),
}
DEEP_PAGES = 50  # the deep cursor page is page 51 of 20 (1,000 items in)


def _deep_cursor(engine) -> str | None:  # type: ignore[no-untyped-def]
    cursor = None
    for _ in range(DEEP_PAGES):
        with read_scope(engine) as session:
            _, cursor = search_embeddings(session, None, SearchQuery(cursor=cursor))
    return cursor


def _time(engine, query: SearchQuery, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with read_scope(engine) as session:
            search_embeddings(session, None, query)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _explain(engine, statement: str, parameters: object) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_custom_plan")
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return [line for (line,) in plan]


def _execution_ms(engine, statement: str, parameters: object) -> float:  # type: ignore[no-untyped-def]
    last = _explain(engine, statement, parameters)[-1]  # "Execution Time: 0.728 ms"
    return float(last.split(":")[1].split()[0])


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    engine = make_engine(args.url)
    cases = dict(CASES)
    cases[f"deep cursor (page {DEEP_PAGES + 1})"] = SearchQuery(cursor=_deep_cursor(engine))

    captured: dict[str, tuple[str, object]] = {}
    current = {"name": ""}

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            captured[current["name"]] = (statement, parameters)

    postgres = engine.dialect.name == "postgresql"
    print(f"{'case':32} {'p50 ms':>8} {'p99 ms':>8} {'rows':>5}" + ("  db ms" if postgres else ""))
    results = {}
    for name, query in cases.items():
        current["name"] = name
        times = _time(engine, query, args.runs)
        with read_scope(engine) as session:
            rows, _ = search_embeddings(session, None, query)
        results[name] = statistics.median(times)
        line = f"{name:32} {_p(times, 0.5):8.1f} {_p(times, 0.99):8.1f} {len(rows):5}"
        if postgres:  # the server's own execution time: what the query costs without Python
            line += f" {_execution_ms(engine, *captured[name]):6.2f}"
        print(line)

    if postgres:
        slowest = max(results, key=results.__getitem__)
        print(f"\nEXPLAIN ANALYZE of the slowest case: {slowest}")
        print("\n".join(_explain(engine, *captured[slowest])))
    engine.dispose()


if __name__ == "__main__":
    main()
