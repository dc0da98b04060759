"""Database adapter: engine and sessions for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions, so that concurrent
publishers queue for the write lock instead of failing mid-transaction with "database is locked".
Reads (:func:`read_scope`, :func:`read_connection`) open a plain deferred ``BEGIN``: they never
take the write lock, so GETs do not queue behind each other or behind a publish (WAL gives them a
snapshot). With WAL, ``synchronous=NORMAL`` syncs at checkpoints rather than on every commit:
still consistent after a crash, a power loss may forget the last commits (an orphan blob that
``gc`` collects).
Writers of one process also queue on a Python lock before ``BEGIN IMMEDIATE``: they get the
write lock the moment it is free, where SQLite's busy handler would sleep up to 100 ms a try
(other processes still meet the busy timeout).
Driver errors are translated here; services see ``Conflict``/``Unavailable``, not SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from client.core.errors import Conflict, Unavailable

# Execution option marking a read-only transaction (see read_scope, read_connection).
READ_ONLY = "lexicon_read_only"
# Connection-record key: this connection holds the process's SQLite writer lock.
_HOLDS_WRITE_LOCK = "lexicon_holds_write_lock"
SQLITE_BUSY_SECONDS = 30
# Pool sizes on PostgreSQL, per process: enough for Litestar's worker threads (sync routes) at
# the load one process can serve; PostgreSQL's max_connections must cover every process's
# pool_size + max_overflow (README, "Production launch").
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}
        )
        writer = threading.Lock()  # released by whichever thread ends the transaction

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # pragma: no cover - driver hook
            if conn.get_execution_options().get(READ_ONLY, False):
                # Straight to the driver: SQLAlchemy's statement machinery cost ~4% of a read's
                # CPU for a statement that takes no lock and returns nothing (issue 12).
                try:
                    conn.connection.driver_connection.execute("BEGIN")
                except sqlite3.Error as exc:
                    raise Unavailable(f"database unavailable ({exc})") from exc
                return
            # On timeout (a nested write in one thread) go on: SQLite's busy timeout decides.
            conn.info[_HOLDS_WRITE_LOCK] = writer.acquire(timeout=SQLITE_BUSY_SECONDS)
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        def _release(info: dict) -> None:
            if info.pop(_HOLDS_WRITE_LOCK, False):
                writer.release()

        # Fired before COMMIT/ROLLBACK reaches SQLite: a waiter's BEGIN IMMEDIATE may meet the
        # lock for the last fraction of a millisecond (the busy handler's first retry is 1 ms).
        event.listen(engine, "commit", lambda conn: _release(conn.info))
        event.listen(engine, "rollback", lambda conn: _release(conn.info))
        # A connection returned without either (invalidated mid-transaction) frees it too.
        event.listen(engine.pool, "checkin", lambda _dbapi, record: _release(record.info))
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW
    )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error; driver errors become
    typed errors at this boundary."""
    with _scope(Session(engine, expire_on_commit=False)) as session:
        yield session


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A transaction that only reads: on SQLite a deferred ``BEGIN`` (no write lock). A write
    inside it still works, but waits for the lock like any deferred transaction would."""
    with _scope(Session(engine, expire_on_commit=False)) as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction on a Core connection, for the hot read routes that work on Core
    rows: like :func:`read_scope` without the ORM ``Session`` around it, whose state machine,
    commit and close were ~27% of a version read's CPU (issue 12). The transaction begins on the
    first statement (deferred ``BEGIN`` on SQLite) and is rolled back at the end: it wrote
    nothing, and a rollback returns the connection to the pool with no second reset."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            yield conn
    except OperationalError as exc:
        raise Unavailable(f"database unavailable ({exc.orig})") from exc


@contextmanager
def _scope(session: Session) -> Iterator[Session]:
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"the change conflicts with existing data ({exc.orig})") from exc
    except OperationalError as exc:
        session.rollback()
        raise Unavailable(f"database unavailable ({exc.orig})") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
