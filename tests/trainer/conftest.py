"""Tiny pipelines (real diffusers classes, random weights) and small random images, shared by
the trainer tests. Pipelines are session-scoped: training restores everything it changes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture(scope="session")
def tiny_pipes() -> dict[str, Any]:
    from client.testing import tiny_pipeline

    cache: dict[str, Any] = {}

    class Pipes(dict):
        def __missing__(self, family: str) -> Any:
            cache[family] = tiny_pipeline(family)
            self[family] = cache[family]
            return cache[family]

    return Pipes()


@pytest.fixture(scope="session")
def images() -> list[bytes]:
    """Three PNGs of different sizes (non-square: the loader crops)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for h, w in ((40, 48), (32, 32), (56, 36)):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out
