"""Writers: every format reads back to the same digest, and other tools read what we write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from client.core.canonical import parse_canonical, parse_safetensors
from client.core.embedding import Embedding
from client.core.errors import BadRequest
from client.core.formats import read_embedding
from client.core.writers import FORMATS, embedding_to_bytes, write_embedding
from tests.core.conftest import vectors

CASES = [("sd1", "float32"), ("sd2", "float16"), ("sdxl", "float32"), ("sdxl", "bfloat16")]


def _emb(family: str, dtype: str, token: str | None = "<tok>") -> Embedding:
    return Embedding.from_tensors(
        vectors(family, n=3, dtype=dtype), token=token, source_format="a1111-safetensors"
    )


def _out(tmp_path: Path, fmt: str) -> Path:
    return tmp_path / (f"{fmt}-out" if fmt == "diffusers" else f"{fmt}.safetensors")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("family", "dtype"), CASES)
def test_round_trip_keeps_digest(tmp_path: Path, fmt: str, family: str, dtype: str) -> None:
    emb = _emb(family, dtype)
    written = write_embedding(emb, _out(tmp_path, fmt), fmt)
    back = read_embedding(written if len(written) > 1 else written[0])
    assert back.digest == emb.digest
    assert back.dtype == emb.dtype and back.family.name == family
    expected = {
        "canonical": "canonical",
        "kohya": "kohya",
        "a1111": "sdxl-single-file" if family == "sdxl" else "a1111-safetensors",
        "diffusers": "diffusers-sdxl-pair" if family == "sdxl" else "diffusers-safetensors",
    }[fmt]
    assert back.source_format == expected
    if fmt in ("canonical", "diffusers"):
        assert back.token == "<tok>"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("family", "dtype"), CASES)
def test_safetensors_package_reads_what_we_write(
    tmp_path: Path, fmt: str, family: str, dtype: str
) -> None:
    emb = _emb(family, dtype)
    for path in write_embedding(emb, _out(tmp_path, fmt), fmt):
        if dtype == "bfloat16":
            torch_st = pytest.importorskip("safetensors.torch")
            loaded = {k: v.float().numpy() for k, v in torch_st.load_file(str(path)).items()}
        else:
            from safetensors.numpy import load_file

            loaded = load_file(str(path))
        assert len(loaded) in (1, 2)
        for array in loaded.values():
            width = array.shape[1]
            name = {1024: "emb_params", 1280: "clip_g"}.get(width)
            name = name or ("clip_l" if family == "sdxl" else "emb_params")
            np.testing.assert_array_equal(array, emb.vectors[name].astype(array.dtype))


def test_canonical_output_passes_the_strict_upload_parser(tmp_path: Path) -> None:
    emb = _emb("sdxl", "float16")
    (path,) = write_embedding(emb, tmp_path / "c.safetensors", "canonical")
    parsed = parse_canonical(path.read_bytes())
    assert parsed.digest == emb.digest and parsed.token == "<tok>"


def test_kohya_and_a1111_share_tensors_and_differ_in_metadata() -> None:
    emb = _emb("sd1", "float32")
    a1111_tensors, a1111_meta = parse_safetensors(embedding_to_bytes(emb, "a1111")[""])
    kohya_tensors, kohya_meta = parse_safetensors(embedding_to_bytes(emb, "kohya")[""])
    assert list(a1111_tensors) == list(kohya_tensors) == ["emb_params"]
    assert a1111_meta == {}
    assert kohya_meta["modelspec.architecture"] == "stable-diffusion-v1/textual-inversion"


def test_diffusers_sdxl_writes_the_two_file_folder(tmp_path: Path) -> None:
    written = write_embedding(_emb("sdxl", "float32"), tmp_path / "out", "diffusers")
    assert [p.name for p in written] == [
        "learned_embeds.safetensors",
        "learned_embeds_2.safetensors",
    ]
    widths = [next(iter(parse_safetensors(p.read_bytes())[0].values())).shape[1] for p in written]
    assert widths == [768, 1280]


def test_diffusers_token_defaults(tmp_path: Path) -> None:
    emb = _emb("sd1", "float32", token=None)
    (path,) = write_embedding(emb, tmp_path / "my-style.safetensors", "diffusers")
    assert read_embedding(path).token == "<my-style>"
    (path,) = write_embedding(emb, tmp_path / "x.safetensors", "diffusers", token="<given>")
    assert read_embedding(path).token == "<given>"


def test_writers_are_deterministic() -> None:
    emb = _emb("sdxl", "float32")
    for fmt in FORMATS:
        assert embedding_to_bytes(emb, fmt) == embedding_to_bytes(emb, fmt)


def test_unknown_format_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="canonical, a1111, diffusers, kohya"):
        write_embedding(_emb("sd1", "float32"), tmp_path / "x", "ckpt")
