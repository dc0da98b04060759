"""Damaged files of every container get a named refusal, never a stray exception."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client.core.canonical import serialize_safetensors
from client.core.errors import LexiconError
from client.core.formats import read_embedding
from client.core.png import embedding_text_chunk, minimal_png
from tests.core.conftest import to_torch, torch_save, vectors
from tests.core.test_png_embedding import a1111_b64


def _samples(tmp_path: Path) -> dict[str, bytes]:
    pytest.importorskip("torch")
    array = vectors("sd1", n=2)["emb_params"]
    obj = {"string_to_param": {"*": to_torch(array)}, "name": "n", "step": 3}
    return {
        "safetensors": serialize_safetensors({"emb_params": array}),
        "png": minimal_png([embedding_text_chunk(a1111_b64(array))]),
        "zip": torch_save(obj, tmp_path / "z.pt").read_bytes(),
        "legacy": torch_save(obj, tmp_path / "l.pt", legacy=True).read_bytes(),
    }


def test_damaged_files_are_refused_by_name(tmp_path: Path) -> None:
    rng = random.Random(1234)
    refused = 0
    for kind, data in _samples(tmp_path).items():
        read_embedding(data)  # the undamaged file reads
        for trial in range(150):
            damaged = bytearray(data)
            if trial % 3 == 0:
                damaged = damaged[: rng.randrange(len(data))]
            else:
                # Damage the first 2 KB (headers, pickles), where parsing decisions are made.
                for _ in range(rng.randint(1, 4)):
                    damaged[rng.randrange(min(len(data), 2048))] = rng.randrange(256)
            try:
                read_embedding(bytes(damaged))
            except LexiconError:
                refused += 1
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{kind} trial {trial}: {type(exc).__name__}: {exc}")
    assert refused > 100
