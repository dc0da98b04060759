"""A1111 embedding PNGs: the ``sd-ti-embedding`` text chunk, built here the way A1111 writes it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from client.core.canonical import serialize_safetensors
from client.core.errors import InvalidEmbedding, NonFiniteValues, TooLarge
from client.core.formats import read_embedding, read_path
from client.core.png import embedding_text_chunk, minimal_png, png_chunk
from tests.core.conftest import to_torch, torch_save, vectors


class _A1111Encoder(json.JSONEncoder):
    """What A1111's ``EmbeddingEncoder`` does: tensors as ``{"TORCHTENSOR": nested lists}``."""

    def default(self, obj):  # type: ignore[no-untyped-def]
        if isinstance(obj, np.ndarray):
            return {"TORCHTENSOR": obj.tolist()}
        return super().default(obj)


def a1111_b64(array: np.ndarray, name: str = "pngtok") -> bytes:
    data = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": array},
        "name": name,
        "step": 500,
        "sd_checkpoint": "abcd1234",
        "sd_checkpoint_name": "v1-5",
    }
    return base64.b64encode(json.dumps(data, cls=_A1111Encoder).encode())


@pytest.mark.parametrize("kind", [b"tEXt", b"zTXt", b"iTXt"])
def test_png_text_chunk_reads(tmp_path: Path, kind: bytes) -> None:
    array = vectors("sd1", n=3)["emb_params"]
    path = tmp_path / "emb.png"
    path.write_bytes(minimal_png([embedding_text_chunk(a1111_b64(array), kind)]))
    emb = read_path(path)
    assert (emb.source_format, emb.token, emb.num_vectors) == ("a1111-png", "pngtok", 3)
    assert emb.info["step"] == "500"
    np.testing.assert_array_equal(emb.vectors["emb_params"], array)


def test_digest_equal_across_formats_and_sensitive_to_one_value(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    array = vectors("sd1", n=1, seed=7)["emb_params"]
    sources = {
        "diffusers-bin": torch_save({"<t>": to_torch(array[0])}, tmp_path / "learned_embeds.bin"),
        "a1111-pt": torch_save(
            {"string_to_param": {"*": to_torch(array)}, "name": "t"}, tmp_path / "t.pt"
        ),
        "a1111-safetensors": serialize_safetensors({"emb_params": array}),
        "a1111-png": minimal_png([embedding_text_chunk(a1111_b64(array))]),
    }
    digests = {}
    for expected_format, source in sources.items():
        emb = read_embedding(source)
        assert emb.source_format == expected_format
        digests[expected_format] = emb.digest
    assert len(set(digests.values())) == 1, digests
    changed = array.copy()
    changed[0, 100] = np.nextafter(changed[0, 100], np.float32(np.inf))
    assert (
        read_embedding(serialize_safetensors({"emb_params": changed})).digest
        not in digests.values()
    )


def test_png_without_chunk_refused_naming_the_pixel_form() -> None:
    with pytest.raises(InvalidEmbedding, match="pixels"):
        read_embedding(minimal_png())


def test_png_corrupt_or_truncated_refused() -> None:
    good = minimal_png([embedding_text_chunk(a1111_b64(vectors("sd1")["emb_params"]))])
    with pytest.raises(InvalidEmbedding, match="truncated"):
        read_embedding(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[40] ^= 0xFF  # inside the text chunk
    with pytest.raises(InvalidEmbedding, match="CRC"):
        read_embedding(bytes(flipped))
    junk = minimal_png([png_chunk(b"tEXt", b"sd-ti-embedding\0!!!not base64 json!!!")])
    with pytest.raises(InvalidEmbedding, match="not base64 JSON"):
        read_embedding(junk)


def test_png_nan_refused() -> None:
    array = vectors("sd1")["emb_params"]
    array[0, 0] = np.nan
    with pytest.raises(NonFiniteValues):
        read_embedding(minimal_png([embedding_text_chunk(a1111_b64(array))]))


def test_png_size_limit_is_larger_but_exists() -> None:
    array = vectors("sd1")["emb_params"]
    filler = png_chunk(b"tEXt", b"comment\0" + b"x" * (3 * 1024 * 1024))
    png = minimal_png([filler, embedding_text_chunk(a1111_b64(array))])
    assert read_embedding(png).num_vectors == 2  # over 2 MiB, under the PNG limit
    with pytest.raises(TooLarge):
        read_embedding(png, max_png_bytes=1024 * 1024)
