"""Similar embeddings at 100,000 (issue 10), end to end through ``similar_embeddings`` (matrix
query + the visibility query) on a seeded database, SQLite or PostgreSQL, plus the matrix alone
against one ANN index library (usearch, bench only: ``.venv/bin/pip install usearch``).

    .venv/bin/python bench/seed.py URL --count 100000          # once, a throwaway database
    .venv/bin/python bench/similar_scale.py URL [--queries 50]

The first run gives every embedding's latest visible version an SD1 summary (random unit
vectors; all embeddings moved to SD1, the worst case: one family of 100,000 rows). Prints the
cold load (what the startup warm-up takes off the first request), p50/p99 of the service call,
the matrix-only query, and usearch's build time, query time and recall@10 against exact.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sqlalchemy import func, insert, text
from sqlmodel import select

from client.core.families import FAMILIES
from registry.db import make_engine, session_scope
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.similarity.index import index_for, warm_in_background
from registry.similarity.models import VersionSummary
from registry.similarity.services import similar_embeddings
from registry.similarity.summaries import DTYPE

BATCH = 5_000


def prepare(url: str) -> None:
    """Summaries for each embedding's latest non-yanked version, once."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        if session.exec(select(VersionSummary.version_id).limit(1)).first() is not None:
            return
        session.execute(text("UPDATE embedding SET family = 'sd1'"))
        session.execute(text("UPDATE embedding_version SET family = 'sd1'"))
        latest = session.exec(
            select(func.max(EmbeddingVersion.id))
            .where(EmbeddingVersion.yanked.is_(False))
            .group_by(EmbeddingVersion.embedding_id)
        ).all()
    rng = np.random.default_rng(0)
    width = FAMILIES["sd1"].encoders["emb_params"]
    for start in range(0, len(latest), BATCH):
        ids = latest[start : start + BATCH]
        vectors = rng.standard_normal((len(ids), width)).astype(DTYPE)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            {"version_id": v, "encoder": "emb_params", "vector": vectors[i].tobytes()}
            for i, v in enumerate(ids)
        ]
        with session_scope(engine) as session:
            session.execute(insert(VersionSummary.__table__), rows)
    engine.dispose()


def percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms  p99 {np.percentile(ms, 99):6.1f} ms"


def compare_usearch(matrix: np.ndarray, queries: np.ndarray) -> None:
    try:
        from usearch.index import Index
    except ImportError:
        print("usearch: not installed (.venv/bin/pip install usearch, for this bench only)")
        return
    exact = [set(np.argsort(-(matrix @ q))[:10]) for q in queries]
    for dtype in ("f32",):  # HNSW build: ~8 min at 100k on 2 shared cores
        index = Index(ndim=matrix.shape[1], metric="cos", dtype=dtype)
        start = time.perf_counter()
        index.add(np.arange(len(matrix)), matrix)
        build_s = time.perf_counter() - start
        times, recall = [], 0
        for q, truth in zip(queries, exact, strict=True):
            start = time.perf_counter()
            found = index.search(q, 10).keys
            times.append(time.perf_counter() - start)
            recall += len(truth & set(int(k) for k in found))
        mib = index.memory_usage / 2**20
        print(
            f"usearch HNSW {dtype}: build {build_s:.1f} s, {mib:.0f} MiB, "
            f"{percentiles(times)}, recall@10 {recall / (10 * len(queries)):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--no-usearch", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    prepare(args.url)
    print(f"prepared summaries in {time.perf_counter() - start:.1f} s")

    engine = make_engine(args.url)
    start = time.perf_counter()
    warm_in_background(engine).join()
    load_s = time.perf_counter() - start
    matrix = index_for(engine).families["sd1"]
    mib = matrix.rows[: matrix.count].nbytes / 2**20
    print(
        f"{engine.dialect.name}: {matrix.count} SD1 rows, {mib:.0f} MiB, loaded in {load_s:.2f} s"
    )

    with session_scope(engine) as session:
        names = session.exec(
            select(Embedding.namespace, Embedding.name)
            .where(Embedding.visibility == "public")
            .order_by(func.random())
            .limit(args.queries)
        ).all()
    similar_embeddings(engine, None, *names[0])  # first call: connection pool, statement cache
    times = []
    for ns, name in names:
        start = time.perf_counter()
        hits = similar_embeddings(engine, None, ns, name, 10)
        times.append(time.perf_counter() - start)
        assert len(hits) == 10, (ns, name, len(hits))
    print(f"similar_embeddings end to end, top 10, anonymous: {percentiles(times)}")

    rows = matrix.rows[: matrix.count]
    queries = rows[np.random.default_rng(1).integers(matrix.count, size=args.queries)]
    times = []
    for q in queries:
        start = time.perf_counter()
        index_for(engine).nearest("sd1", q, 10)
        times.append(time.perf_counter() - start)
    print(f"exact matrix query alone (float32 BLAS): {percentiles(times)}")
    if not args.no_usearch:
        compare_usearch(rows, queries)
    engine.dispose()


if __name__ == "__main__":
    main()
