"""Exact nearest-neighbour search over one compact float32 matrix per family.

Why exact search and no index library: at 100,000 SD1 embeddings the matrix is 300 MB and one
matrix-vector product takes milliseconds (``bench/similar_scale.py``, docs/PERFORMANCE.md), with
no recall loss and no index to rebuild; pgvector is not available on our machines.

The matrix lives in memory, one per database engine (so each app, and each test's app, has its
own), and grows incrementally: each search first loads the summary rows it has not seen. Rows
are keyed by version id; PostgreSQL may commit ids out of order, so the ids in a window below the
highest one seen that have not been seen (``pending``: a slow publish still in flight, or an id
never committed) are asked for again with every refresh, in the same one query as the rows above
the highest (before: a thousand ids re-listed per publish, then a second query). Visibility,
yanks and deletions are not cached here: the caller filters candidates through the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from client.core.families import FAMILIES

from .summaries import DTYPE

log = logging.getLogger(__name__)

# Version ids below the newest seen that a slow concurrent publish may still commit.
LATE_COMMIT_WINDOW = 1000
# Below this many rows the cosine product runs on one thread (see cosine_scores).
ONE_THREAD_ROWS = 50_000


@dataclass
class FamilyMatrix:
    """Unit rows (capacity doubles as it grows) and, per row, its version and embedding ids."""

    dims: int
    rows: np.ndarray = field(init=False)
    version_ids: np.ndarray = field(init=False)
    embedding_ids: np.ndarray = field(init=False)
    count: int = 0

    def __post_init__(self) -> None:
        self.rows = np.zeros((64, self.dims), np.float32)
        self.version_ids = np.zeros(64, np.int64)
        self.embedding_ids = np.zeros(64, np.int64)

    def append(self, vector: np.ndarray, version_id: int, embedding_id: int) -> None:
        self.extend(vector[None, :], np.array([version_id]), np.array([embedding_id]))

    def extend(self, block: np.ndarray, version_ids: np.ndarray, embedding_ids: np.ndarray) -> None:
        """Append rows; capacity doubles, so growing to N rows copies O(N) in all."""
        needed = self.count + len(block)
        if needed > len(self.rows):
            capacity = len(self.rows)
            while capacity < needed:
                capacity *= 2
            self.rows = _grown(self.rows, capacity)
            self.version_ids = _grown(self.version_ids, capacity)
            self.embedding_ids = _grown(self.embedding_ids, capacity)
        self.rows[self.count : needed] = block
        self.version_ids[self.count : needed] = version_ids
        self.embedding_ids[self.count : needed] = embedding_ids
        self.count = needed

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the rows so far and their ids: appends only write past ``count`` (or into a
        new array when growing), so the views stay valid without the index lock."""
        n = self.count
        return self.rows[:n], self.version_ids[:n], self.embedding_ids[:n]


def cosine_scores(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``rows @ query``. Below ``ONE_THREAD_ROWS`` on the calling thread (``einsum``), not
    BLAS: OpenBLAS splits even a 1,000-row product across threads, which on a busy machine
    waits for a core (p50 7.6 ms against 0.18 ms on one thread at 1,000 rows, 9.9 against 1.7
    at 10,000); from ~50,000 rows the product is memory-bound and BLAS's threads win again
    (32 against 37-43 ms at 100,000). Measured interleaved, docs/PERFORMANCE.md."""
    if len(rows) < ONE_THREAD_ROWS:
        return np.einsum("ij,j->i", rows, query)
    return rows @ query


@dataclass
class Candidate:
    version_id: int
    embedding_id: int
    score: float
    digest: str  # of the version the row was loaded for


class SimilarityIndex:
    def __init__(self) -> None:
        self.families: dict[str, FamilyMatrix] = {}
        self.seen: set[int] = set()
        self.position: dict[int, tuple[str, int]] = {}  # version id -> (family, row)
        # Version id -> digest of the row loaded: a SQLite database not yet at migration 0007
        # (AUTOINCREMENT) hands a deleted highest id out again, so a row is only trusted for
        # the version whose digest it was loaded with.
        self.digests: dict[int, str] = {}
        self.highest = 0
        self.pending: set[int] = set()  # ids in the window below ``highest`` not seen yet
        self.lock = threading.Lock()

    def refresh(self, session: Session) -> None:
        """Load the summary rows committed since the last call: one query for the rows above
        the highest id seen and the window's ids not seen yet (``pending``: commits still in
        flight, or ids that were never committed)."""
        with self.lock:
            if not self.seen:  # the first load (at 100,000 versions: in chunks)
                ids = list(
                    session.execute(
                        text("SELECT DISTINCT version_id FROM version_summary ORDER BY version_id")
                    ).scalars()
                )
                for start in range(0, len(ids), 5000):
                    chunk = ids[start : start + 5000]
                    self._add(session, "WHERE s.version_id IN :ids", {"ids": chunk})
                return
            where = "WHERE s.version_id > :highest"
            params: dict[str, object] = {"highest": self.highest}
            if self.pending:  # (an empty IN list would keep PostgreSQL off the index)
                where += " OR s.version_id IN :ids"
                params["ids"] = sorted(self.pending)
            self._add(session, where, params)

    def _add(self, session: Session, where: str, params: dict[str, object]) -> None:
        """Load the summary rows ``where`` selects (with their version's family)."""
        statement = text(_SUMMARIES + where)
        if "ids" in params:
            statement = statement.bindparams(_expanding("ids"))
        rows = session.execute(statement, params).all()
        grouped: dict[int, tuple[str, int, dict[str, bytes]]] = {}
        for version_id, encoder, vector, family, embedding_id, digest in rows:
            entry = grouped.setdefault(version_id, (family, embedding_id, {}))
            entry[2][encoder] = bytes(vector)
            self.digests[version_id] = digest
        by_family: dict[str, list[int]] = {}
        for version_id in sorted(grouped):
            by_family.setdefault(grouped[version_id][0], []).append(version_id)
        for family, ids in by_family.items():
            self._append_block(family, ids, grouped)
        if grouped:
            self._seen(grouped.keys())

    def _seen(self, version_ids: Iterable[int]) -> None:
        """Mark versions loaded (summaries are written in the publish's transaction, so one
        lacking an encoder now always will) and keep ``pending`` = the window's unseen ids."""
        loaded = set(version_ids)
        self.seen |= loaded
        top = max(loaded)
        if top > self.highest:
            skipped = range(max(self.highest, top - LATE_COMMIT_WINDOW) + 1, top)
            self.pending.update(i for i in skipped if i not in loaded)
            self.highest = top
        self.pending -= loaded
        floor = self.highest - LATE_COMMIT_WINDOW
        self.pending = {i for i in self.pending if i > floor}

    def _append_block(
        self, family: str, ids: list[int], grouped: dict[int, tuple[str, int, dict[str, bytes]]]
    ) -> None:
        """Append a family's versions in one bulk step (one join of bytes and one reshape per
        encoder, not one small array per row: 100,000 rows load in well under a second); the
        result equals ``combined`` row by row. Versions lacking an encoder are skipped."""
        encoders = FAMILIES[family].encoders if family in FAMILIES else {}
        complete = [
            v
            for v in ids
            if encoders
            and all(
                len(grouped[v][2].get(e, b"")) == w * DTYPE.itemsize for e, w in encoders.items()
            )
        ]
        if not complete:
            return
        scale = np.float32(1.0 / np.sqrt(len(encoders)))
        block = np.concatenate(
            [
                np.frombuffer(b"".join(grouped[v][2][e] for v in complete), DTYPE).reshape(-1, w)
                for e, w in encoders.items()
            ],
            axis=1,
        )
        block = (block * scale).astype(np.float32)
        matrix = self.families.get(family)
        if matrix is None:
            matrix = self.families[family] = FamilyMatrix(block.shape[1])
        embedding_ids = np.array([grouped[v][1] for v in complete], np.int64)
        first = matrix.count
        matrix.extend(block, np.array(complete, np.int64), embedding_ids)
        self.position.update((v, (family, first + i)) for i, v in enumerate(complete))

    def vector(self, version_id: int, digest: str) -> np.ndarray | None:
        """A loaded version's unit row (a copy), or None when it is not loaded (or the row is
        another, deleted version's that had the same id)."""
        with self.lock:
            found = self.position.get(version_id)
            if found is None or self.digests.get(version_id) != digest:
                return None
            family, row = found
            return self.families[family].rows[row].copy()

    def nearest(
        self, family: str, query: np.ndarray, count: int, skip_embedding: int | None = None
    ) -> list[Candidate]:
        """The ``count`` best rows by cosine, best first, at most one per embedding."""
        matrix = self.families.get(family)
        if matrix is None or matrix.count == 0:
            return []
        with self.lock:  # only to read a consistent count; the product runs unlocked
            rows, version_ids, embedding_ids = matrix.snapshot()
        scores = cosine_scores(rows, query)
        if skip_embedding is not None:
            scores = np.where(embedding_ids == skip_embedding, -np.inf, scores)
        # Versions of one embedding compete: take extra rows, keep each embedding's best.
        take = min(len(scores), count * 4 + 16)
        top = np.argpartition(-scores, take - 1)[:take]
        top = top[np.argsort(-scores[top], kind="stable")]
        out: list[Candidate] = []
        used: set[int] = set()
        for i in top:
            if not np.isfinite(scores[i]) or int(embedding_ids[i]) in used:
                continue
            used.add(int(embedding_ids[i]))
            version_id = int(version_ids[i])
            digest = self.digests.get(version_id, "")
            out.append(Candidate(version_id, int(embedding_ids[i]), float(scores[i]), digest))
            if len(out) == count:
                break
        return out


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    out = np.zeros((capacity, *array.shape[1:]), array.dtype)
    out[: len(array)] = array
    return out


def _expanding(name: str):
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


_SUMMARIES = (
    "SELECT s.version_id, s.encoder, s.vector, v.family, v.embedding_id, v.digest "
    "FROM version_summary s JOIN embedding_version v ON v.id = s.version_id "
)

_INDEXES: WeakKeyDictionary[Engine, SimilarityIndex] = WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def index_for(engine: Engine) -> SimilarityIndex:
    """The engine's index (one per app; dropped with the engine)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(engine)
        if index is None:
            index = _INDEXES[engine] = SimilarityIndex()
        return index


def warm_in_background(engine: Engine) -> threading.Thread:
    """Load the engine's index on a daemon thread at app start, so no request pays the first
    load (docs/PERFORMANCE.md); a request arriving meanwhile waits on the index lock instead of
    loading twice. A failure is logged only: the first request then loads as before."""

    def load() -> None:
        try:
            with Session(engine) as session:
                index_for(engine).refresh(session)
        except Exception:  # noqa: BLE001 - a warm-up must never stop the app
            log.exception("similarity index warm-up failed; the first request will load it")

    thread = threading.Thread(target=load, name="similarity-warm", daemon=True)
    thread.start()
    return thread
