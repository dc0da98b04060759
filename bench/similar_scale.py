"""Similar-embeddings search at 100,000 embeddings (issue 10): exact cosine over the compact
float32 matrix of ``registry/similarity/index.py`` against a baseline measured in the same run
(cosine row by row, as a loop over the stored summaries would do).

    .venv/bin/python bench/similar_scale.py [--count 100000] [--family sd1]

Prints the load time (summary bytes -> matrix), the per-query time and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from client.core.families import FAMILIES
from registry.similarity.index import SimilarityIndex
from registry.similarity.summaries import DTYPE, combined


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--family", default="sd1")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    encoders = FAMILIES[args.family].encoders
    stored = []  # what version_summary holds: per encoder, float32 bytes
    for _ in range(args.count):
        parts = {}
        for encoder, width in encoders.items():
            v = rng.standard_normal(width).astype(np.float32)
            parts[encoder] = (v / np.linalg.norm(v)).astype(DTYPE).tobytes()
        stored.append(parts)

    index = SimilarityIndex()
    start = time.perf_counter()
    for i, parts in enumerate(stored):
        vector = combined(args.family, {k: np.frombuffer(b, DTYPE) for k, b in parts.items()})
        family = index.families.get(args.family)
        if family is None:
            from registry.similarity.index import FamilyMatrix

            family = index.families[args.family] = FamilyMatrix(len(vector))
        family.append(vector, i + 1, i + 1)
    load_s = time.perf_counter() - start
    matrix = index.families[args.family]

    queries = [matrix.rows[rng.integers(matrix.count)] for _ in range(args.queries)]
    start = time.perf_counter()
    for q in queries:
        index.nearest(args.family, q, 10)
    ours_ms = (time.perf_counter() - start) / len(queries) * 1000

    # Baseline: one cosine per stored row in a Python loop (2 queries; it is slow).
    rows = [matrix.rows[i] for i in range(matrix.count)]
    start = time.perf_counter()
    for q in queries[:2]:
        scores = [float(np.dot(r, q)) for r in rows]
        sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:10]
    base_ms = (time.perf_counter() - start) / 2 * 1000

    mb = matrix.rows[: matrix.count].nbytes / 2**20
    print(f"{args.count} {args.family} embeddings, matrix {mb:.0f} MiB, loaded in {load_s:.2f} s")
    print(f"exact matrix search: {ours_ms:.1f} ms/query (top 10)")
    print(f"row-by-row baseline: {base_ms:.0f} ms/query; ratio {base_ms / ours_ms:.0f}x")


if __name__ == "__main__":
    main()
