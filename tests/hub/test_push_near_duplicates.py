"""``hub push`` tells the uploader when the vectors are (almost) those of an embedding they can
already see (issue 10), and says nothing for new vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.numpy import save_file

from tests.hub.conftest import LiveRegistry
from tests.registry.helpers import random_vectors


def test_push_prints_a_near_duplicate_of_a_visible_embedding(
    live: LiveRegistry, hub_cli: Any, tmp_path: Path
) -> None:
    vectors = random_vectors("sd1", 2).vectors["emb_params"]
    first, copy = tmp_path / "first.safetensors", tmp_path / "copy.safetensors"
    save_file({"emb_params": vectors}, str(first))
    save_file({"emb_params": vectors * 1.5}, str(copy))  # a re-save at another scale
    original = live.unique("orig")
    r = hub_cli("push", first, f"alice/{original}")
    assert r.exit_code == 0, r.output
    assert "near-duplicate" not in r.stderr
    r = hub_cli("push", copy, f"alice/{live.unique('copy')}")
    assert r.exit_code == 0, r.output
    assert f"near-duplicate of alice/{original}@1 (cosine 1.000)" in r.stderr, r.stderr
    other = tmp_path / "other.safetensors"
    save_file({"emb_params": random_vectors("sd1", 2).vectors["emb_params"]}, str(other))
    r = hub_cli("push", other, f"alice/{live.unique('new')}")
    assert r.exit_code == 0 and "near-duplicate" not in r.stderr, r.stderr
