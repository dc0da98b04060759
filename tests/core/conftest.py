"""Fixtures for the format tests: vectors, and files written the way community tools write them.

Tests may use torch to *produce* pickles (``torch.save``); the code under test never loads them
with torch."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

WIDTHS = {
    "sd1": {"emb_params": 768},
    "sd2": {"emb_params": 1024},
    "sdxl": {"clip_l": 768, "clip_g": 1280},
}


def vectors(family: str = "sd1", n: int = 2, seed: int = 0, dtype: str = "float32") -> dict:
    """Random vectors per canonical encoder name for ``family``."""
    import ml_dtypes

    rng = np.random.default_rng(seed)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    return {
        name: rng.standard_normal((n, width)).astype(np.float32).astype(np_dtype)
        for name, width in WIDTHS[family].items()
    }


def torch_save(obj: object, path: Path, *, legacy: bool = False) -> Path:
    torch = pytest.importorskip("torch")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def to_torch(array: np.ndarray):  # type: ignore[no-untyped-def]
    import torch

    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(array))


def rewrite_zip(data: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    """A copy of zip ``data`` with each member's bytes passed through ``edit(name, bytes)``
    (``None`` drops the member)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            new = edit(info.filename, source.read(info))
            if new is not None:
                target.writestr(info.filename, new)
    return out.getvalue()


@pytest.fixture
def make_vectors():  # type: ignore[no-untyped-def]
    return vectors
