"""What a read transaction's scope costs around one statement (issue 12, target 1): the ORM
``read_scope`` (a ``Session``) against the Core ``read_connection`` the hot read routes use, and
a plain ``engine.connect()`` (on SQLite that takes the write path's ``BEGIN IMMEDIATE`` through
SQLAlchemy, so it is no floor there). CPU microseconds per read, alternated in one run.

    .venv/bin/python bench/read_scope_cost.py
    .venv/bin/python bench/read_scope_cost.py --db postgres
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from servers import database, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from sqlalchemy import literal, select

    from registry.db import make_engine, read_connection, read_scope
    from registry.migrations import upgrade

    statement = select(literal(1))
    with (
        tempfile.TemporaryDirectory(prefix="lexicon-scope-") as tmp,
        database(args.db, Path(tmp)) as url,
    ):
        upgrade(url)
        engine = make_engine(url)

        def orm_session() -> None:
            with read_scope(engine) as session:
                session.connection().execute(statement).first()

        def core_connection() -> None:
            with read_connection(engine) as conn:
                conn.execute(statement).first()

        def plain_connect() -> None:
            with engine.connect() as conn:
                conn.execute(statement).first()

        scopes = (orm_session, core_connection, plain_connect)
        timings: dict[str, list[float]] = {scope.__name__: [] for scope in scopes}
        for scope in scopes:  # warm up: pool filled, statements compiled
            for _ in range(300):
                scope()
        for _ in range(args.rounds):
            for scope in scopes:
                started = time.process_time()
                for _ in range(args.reads):
                    scope()
                timings[scope.__name__].append((time.process_time() - started) / args.reads)
        engine.dispose()
    print(f"# {args.db}, one SELECT per read; {machine()}")
    for name, runs in timings.items():
        runs.sort()
        print(
            f"{name}: median {runs[len(runs) // 2] * 1e6:.1f} us CPU/read, best {runs[0] * 1e6:.1f}"
        )


if __name__ == "__main__":
    main()
