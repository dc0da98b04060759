"""Similar embeddings at scale (issue 10): the app loads the similarity matrix when it starts,
so the first request after a restart does not pay the load (7 s at 100,000 embeddings)."""

from __future__ import annotations

import time

import numpy as np
from litestar.testing import TestClient

from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding as Vectors
from registry.app import create_app
from registry.similarity.index import index_for
from tests.registry.helpers import Hub


def _sd1(seed: int) -> bytes:
    vectors = np.random.default_rng(seed).standard_normal((2, 768)).astype(np.float32)
    return canonical_bytes(
        Vectors.from_tensors({"emb_params": vectors}, token="<x>", source_format="test")
    )


def test_a_restarted_registry_has_the_matrix_loaded_before_any_similar_request(hub: Hub) -> None:
    alice = hub.user("alice")
    for i in range(3):
        hub.published("alice", f"e{i}", alice, _sd1(i))
    restarted = create_app(hub.settings)
    with TestClient(restarted):
        index = index_for(restarted.state.registry.engine)
        deadline = time.monotonic() + 20
        while len(index.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(index.seen) == 3
        matrix = index.families["sd1"]
        assert matrix.count == 3
        # The bulk-loaded rows are the unit summaries: each row's cosine with itself is 1.
        rows = matrix.rows[: matrix.count]
        assert np.allclose(np.einsum("ij,ij->i", rows, rows), 1.0, atol=1e-5)
