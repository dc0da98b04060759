"""Format detection and reading: real community files and generated ones, and every refusal."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from client.core.canonical import serialize_safetensors
from client.core.errors import (
    BadDtype,
    BadShape,
    IncompatibleEmbedding,
    InvalidEmbedding,
    MalformedSafetensors,
    NonFiniteValues,
    TooLarge,
)
from client.core.formats import read_embedding, read_path
from tests.core.conftest import to_torch, torch_save, vectors


def _manifest(realworld_dir: Path) -> dict:
    return json.loads((realworld_dir / "MANIFEST.json").read_text())["files"]


def test_every_real_world_file_reads_as_its_manifest_says(realworld_dir: Path) -> None:
    files = _manifest(realworld_dir)
    checked = 0
    for name, expected in files.items():
        if "expect" in expected:
            continue
        emb = read_path(realworld_dir / name)
        assert emb.family.name == expected["family"], name
        assert emb.num_vectors == expected["vectors"], name
        assert emb.encoders == {"emb_params": [expected["vectors"], expected["dim"]]}, name
        if "token" in expected:
            assert emb.token == expected["token"], name
            assert emb.source_format == "diffusers-bin"
        if "name" in expected:  # the trigger is the file stem, as A1111 keys it (issue 9.3)
            assert (emb.token, emb.info["name"]) == (Path(name).stem, expected["name"]), name
            assert emb.source_format == "a1111-pt"
            assert emb.info["step"].isdigit() and emb.info["sd_checkpoint"], name
        checked += 1
    assert checked >= 12


def test_real_world_empty_pickle_is_refused_by_name(realworld_dir: Path) -> None:
    with pytest.raises(InvalidEmbedding, match="the pickle holds an empty dict, not an embedding"):
        read_path(realworld_dir / "a1111_empty.pt")


def test_real_world_formats_and_equal_digests(realworld_dir: Path) -> None:
    pt = read_path(realworld_dir / "a1111_EasyNegative.pt")
    st = read_path(realworld_dir / "a1111_EasyNegative.safetensors")
    assert (pt.source_format, st.source_format) == ("pickle-single-key", "a1111-safetensors")
    assert pt.digest == st.digest


def _write_st(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
    path.write_bytes(serialize_safetensors(tensors, metadata))
    return path


def test_sd2_safetensors(tmp_path: Path) -> None:
    emb = read_path(_write_st(tmp_path / "sd2.safetensors", vectors("sd2", n=4)))
    assert (emb.family.name, emb.num_vectors, emb.source_format) == ("sd2", 4, "a1111-safetensors")


@pytest.mark.parametrize("suffix", ["safetensors", "pt"])
def test_sdxl_single_file(tmp_path: Path, suffix: str) -> None:
    vecs = vectors("sdxl", n=2)
    if suffix == "pt":
        path = torch_save({k: to_torch(v) for k, v in vecs.items()}, tmp_path / "x.pt")
    else:
        path = _write_st(tmp_path / "x.safetensors", vecs)
    emb = read_path(path)
    assert emb.family.name == "sdxl" and emb.source_format == "sdxl-single-file"
    assert emb.encoders == {"clip_l": [2, 768], "clip_g": [2, 1280]}
    np.testing.assert_array_equal(emb.vectors["clip_g"], vecs["clip_g"])


def _pair(folder: Path, suffix: str = "safetensors") -> tuple[Path, Path, dict]:
    folder.mkdir()
    vecs = vectors("sdxl", n=3)
    # Names deliberately swapped: the reader decides by width, not by name.
    a, b = folder / f"learned_embeds.{suffix}", folder / f"learned_embeds_2.{suffix}"
    if suffix == "safetensors":
        _write_st(a, {"<tok>": vecs["clip_g"]})
        _write_st(b, {"<tok>": vecs["clip_l"]})
    else:
        torch_save({"<tok>": to_torch(vecs["clip_g"])}, a)
        torch_save({"<tok>": to_torch(vecs["clip_l"])}, b)
    return a, b, vecs


@pytest.mark.parametrize("suffix", ["safetensors", "bin"])
def test_diffusers_sdxl_pair_as_files_and_folder(tmp_path: Path, suffix: str) -> None:
    a, b, vecs = _pair(tmp_path / "pair", suffix)
    for source in ([a, b], [b, a], tmp_path / "pair"):
        emb = read_embedding(source)
        assert emb.source_format == "diffusers-sdxl-pair" and emb.token == "<tok>"
        np.testing.assert_array_equal(emb.vectors["clip_l"], vecs["clip_l"])
        np.testing.assert_array_equal(emb.vectors["clip_g"], vecs["clip_g"])


def test_pair_of_two_sd1_files_is_refused(tmp_path: Path) -> None:
    a = _write_st(tmp_path / "a.safetensors", {"<a>": vectors("sd1")["emb_params"]})
    b = _write_st(tmp_path / "b.safetensors", {"<b>": vectors("sd1")["emb_params"]})
    with pytest.raises(BadShape, match="768 and 768 wide"):
        read_embedding([a, b])


def test_half_of_a_pair_alone_says_so(tmp_path: Path) -> None:
    path = _write_st(tmp_path / "g.safetensors", {"<t>": vectors("sdxl")["clip_g"]})
    with pytest.raises(BadShape, match="text_encoder_2 half"):
        read_path(path)


def test_diffusers_1d_and_2d(tmp_path: Path) -> None:
    one = vectors("sd1", n=1)["emb_params"]
    emb = read_path(torch_save({"<cat>": to_torch(one[0])}, tmp_path / "learned_embeds.bin"))
    assert (emb.source_format, emb.token, emb.num_vectors) == ("diffusers-bin", "<cat>", 1)
    two = vectors("sd1", n=2)["emb_params"]
    emb = read_path(_write_st(tmp_path / "l.safetensors", {"<dog>": two}))
    assert (emb.source_format, emb.token, emb.num_vectors) == ("diffusers-safetensors", "<dog>", 2)


def test_bytes_source_and_base_model_check(tmp_path: Path) -> None:
    data = serialize_safetensors(vectors("sd1"))
    assert read_embedding(data, base_model="runwayml/stable-diffusion-v1-5").family.name == "sd1"
    assert read_embedding(data, base_model="someone/fine-tune").family.name == "sd1"
    with pytest.raises(IncompatibleEmbedding, match="stable-diffusion-xl"):
        read_embedding(data, base_model="stabilityai/stable-diffusion-xl-base-1.0")


# -- refusals -----------------------------------------------------------------------------------


def _sd1(n: int = 2) -> np.ndarray:
    return vectors("sd1", n=n)["emb_params"]


def test_nan_refused() -> None:
    array = _sd1()
    array[1, 5] = np.nan
    with pytest.raises(NonFiniteValues, match="NaN"):
        read_embedding(serialize_safetensors({"emb_params": array}))


def test_76_vectors_refused() -> None:
    with pytest.raises(BadShape, match="76 vectors"):
        read_embedding(serialize_safetensors({"emb_params": _sd1(76)}))
    assert read_embedding(serialize_safetensors({"emb_params": _sd1(75)})).num_vectors == 75


def test_unknown_width_refused() -> None:
    with pytest.raises(BadShape, match="512"):
        read_embedding(serialize_safetensors({"emb_params": np.zeros((2, 512), np.float32)}))


def test_float64_safetensors_refused() -> None:
    body = np.zeros((2, 768)).tobytes()
    header = json.dumps(
        {"emb_params": {"dtype": "F64", "shape": [2, 768], "data_offsets": [0, len(body)]}}
    ).encode()
    with pytest.raises(BadDtype, match="float32"):
        read_embedding(struct.pack("<Q", len(header)) + header + body)


def test_stray_tensor_refused_by_name() -> None:
    data = serialize_safetensors({"emb_params": _sd1(), "optimizer_step": np.zeros(1, np.float32)})
    with pytest.raises(InvalidEmbedding, match="stray tensor 'optimizer_step'"):
        read_embedding(data)


def test_lora_like_file_refused_with_count(tmp_path: Path) -> None:
    tensors = {f"lora_unet_down_{i}.alpha": np.zeros(1, np.float16) for i in range(1130)}
    with pytest.raises(InvalidEmbedding, match=r"found 1130 tensors \(e\.g\. 'lora_unet_"):
        read_embedding(serialize_safetensors(tensors))


def test_checkpoint_like_pickle_refused(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = torch_save({"state_dict": {"w": to_torch(_sd1())}}, tmp_path / "model.ckpt")
    with pytest.raises(InvalidEmbedding, match="'state_dict' with a dict"):
        read_path(path)


def test_too_large_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    path.write_bytes(serialize_safetensors({"emb_params": _sd1()}))
    with pytest.raises(TooLarge, match="at most 1000"):
        read_path(path, max_bytes=1000)
    big = tmp_path / "huge.bin"
    with big.open("wb") as handle:
        handle.truncate(3 * 1024 * 1024)
    with pytest.raises(TooLarge):
        read_path(big)


def test_header_length_past_end_refused() -> None:
    data = serialize_safetensors({"emb_params": _sd1()})
    bad = struct.pack("<Q", len(data) + 100) + data[8:]
    with pytest.raises(InvalidEmbedding) as info:
        read_embedding(bad)
    assert type(info.value) is MalformedSafetensors  # named as damage, not as a size limit


def test_truncated_safetensors_refused() -> None:
    data = serialize_safetensors({"emb_params": _sd1()})
    with pytest.raises(InvalidEmbedding, match="truncated"):
        read_embedding(data[:-10])


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"\x13\x37 random bytes here", "not a known embedding format")],
)
def test_garbage_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidEmbedding, match=message):
        read_embedding(data)


def test_folder_without_embedding_refused(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(InvalidEmbedding, match="no embedding file"):
        read_path(tmp_path)


def test_missing_file_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidEmbedding, match="no such file"):
        read_path(tmp_path / "nope.pt")


def test_bytes_refusal_names_the_upload() -> None:
    with pytest.raises(InvalidEmbedding, match=r"^upload\.pt: the file is empty"):
        read_embedding(b"", filename="upload.pt")


def test_stray_tensor_beside_a1111_dict_refused(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    obj = {"string_to_param": {"*": to_torch(_sd1())}, "extra": to_torch(_sd1())}
    with pytest.raises(InvalidEmbedding, match="stray tensor 'extra'"):
        read_path(torch_save(obj, tmp_path / "x.pt"))
