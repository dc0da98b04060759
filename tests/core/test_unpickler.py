"""The restricted unpickler: torch files read as numpy, pickled code never run."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from client.core.errors import BadDtype, InvalidEmbedding, UnsafePickle
from client.core.formats import read_embedding
from client.core.torchfile import load_torch
from tests.core.conftest import rewrite_zip, to_torch, torch_save, vectors

torch = pytest.importorskip("torch")


class Pwn:
    """Pickles as ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _sd1(seed: int = 0, n: int = 3) -> np.ndarray:
    return vectors("sd1", n=n, seed=seed)["emb_params"]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a1111_pt_with_parameter(tmp_path: Path, legacy: bool) -> None:
    array = _sd1()
    obj = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": torch.nn.Parameter(to_torch(array))},
        "name": "my-style",
        "step": 1500,
        "sd_checkpoint": "7ab762a7",
        "sd_checkpoint_name": "model",
    }
    emb = read_embedding(torch_save(obj, tmp_path / "e.pt", legacy=legacy))
    assert emb.source_format == "a1111-pt"
    assert emb.token == "e"  # the file stem, as A1111 keys it; the pickle's name is info
    assert emb.info == {
        "name": "my-style",
        "step": "1500",
        "sd_checkpoint": "7ab762a7",
        "sd_checkpoint_name": "model",
    }
    np.testing.assert_array_equal(emb.vectors["emb_params"], array)


def test_parameter_dict_becomes_plain_dict(tmp_path: Path) -> None:
    array = _sd1()
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(to_torch(array))})
    emb = read_embedding(torch_save({"string_to_param": params, "name": "x"}, tmp_path / "p.pt"))
    np.testing.assert_array_equal(emb.vectors["emb_params"], array)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_storages(tmp_path: Path, dtype: str) -> None:
    array = vectors("sd1", n=4, dtype=dtype)["emb_params"]
    emb = read_embedding(torch_save({"emb_params": to_torch(array)}, tmp_path / "h.pt"))
    assert emb.dtype == {"float16": "F16", "bfloat16": "BF16"}[dtype]
    np.testing.assert_array_equal(emb.vectors["emb_params"].view(np.uint16), array.view(np.uint16))


def test_views_with_offset_and_stride(tmp_path: Path) -> None:
    big = vectors("sd1", n=10)["emb_params"]
    sliced = to_torch(big)[2:5]  # storage offset 2 * 768
    transposed = to_torch(np.ascontiguousarray(big[:3].T)).T  # stride (1, 3)
    assert sliced.storage_offset() and not transposed.is_contiguous()
    emb = read_embedding(torch_save({"emb_params": sliced}, tmp_path / "s.pt"))
    np.testing.assert_array_equal(emb.vectors["emb_params"], big[2:5])
    emb = read_embedding(torch_save({"emb_params": transposed}, tmp_path / "t.pt"))
    np.testing.assert_array_equal(emb.vectors["emb_params"], big[:3])


def test_storage_saved_on_cuda_loads(tmp_path: Path) -> None:
    array = _sd1()
    data = torch_save({"<tok>": to_torch(array)}, tmp_path / "c.bin").read_bytes()
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    patched = rewrite_zip(data, lambda n, b: b.replace(cpu, cuda) if n.endswith(".pkl") else b)
    assert cuda in zipfile.ZipFile(io.BytesIO(patched)).read("c/data.pkl")
    emb = read_embedding(patched)
    assert emb.token == "<tok>"
    np.testing.assert_array_equal(emb.vectors["emb_params"], array)


def test_big_endian_byteorder_is_honoured(tmp_path: Path) -> None:
    array = _sd1()
    data = torch_save({"emb_params": to_torch(array)}, tmp_path / "b.pt").read_bytes()

    def to_big(name: str, raw: bytes) -> bytes:
        if name.endswith("/byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(raw, "<f4").astype(">f4").tobytes()
        return raw

    emb = read_embedding(rewrite_zip(data, to_big))
    np.testing.assert_array_equal(emb.vectors["emb_params"], array)


def test_float64_refused_with_fix(tmp_path: Path) -> None:
    path = torch_save({"emb_params": torch.zeros(2, 768, dtype=torch.float64)}, tmp_path / "d.pt")
    with pytest.raises(BadDtype, match="float64; save it as float32"):
        read_embedding(path)


@pytest.mark.parametrize("container", ["pickle", "zip", "legacy"])
def test_hostile_pickle_refused_and_not_run(tmp_path: Path, container: str) -> None:
    marker = tmp_path / "pwned"
    payload = {"emb_params": Pwn(marker)}
    if container == "pickle":
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickle.dumps(payload))
    else:
        path = torch_save(payload, tmp_path / "evil.pt", legacy=container == "legacy")
    with pytest.raises(UnsafePickle, match=r"refused pickle global (posix|nt|os)\.system"):
        read_embedding(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.",
        b'cbuiltins\nexec\n(S\'open("x","w")\'\ntR.',
    ],
    ids=["stack-global-eval", "protocol0-exec"],
)
def test_other_globals_refused_by_name(payload: bytes) -> None:
    with pytest.raises(UnsafePickle, match=r"builtins\.(eval|exec)"):
        load_torch(payload)


def test_truncated_torch_files_refused(tmp_path: Path) -> None:
    for legacy in (False, True):
        data = torch_save({"emb_params": to_torch(_sd1())}, tmp_path / "t.pt", legacy=legacy)
        raw = data.read_bytes()
        with pytest.raises(InvalidEmbedding, match="truncated|corrupt"):
            read_embedding(raw[: len(raw) // 2])


def test_short_storage_refused(tmp_path: Path) -> None:
    data = torch_save({"emb_params": to_torch(_sd1())}, tmp_path / "s.pt").read_bytes()
    cut = rewrite_zip(data, lambda n, b: b[:100] if "/data/" in n else b)
    with pytest.raises(InvalidEmbedding, match="truncated"):
        read_embedding(cut)


def test_zip_bomb_refused() -> None:
    buf = io.BytesIO()
    torch.save({"emb_params": torch.zeros(2, 768)}, buf)
    source = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            bomb = "/data/" in info.filename
            target.writestr(info.filename, b"\0" * (40 << 20) if bomb else source.read(info))
    assert len(out.getvalue()) < 2 * 1024 * 1024  # passes the file-size limit
    with pytest.raises(InvalidEmbedding, match="zip bomb"):
        read_embedding(out.getvalue())


def test_legacy_storage_count_is_checked(tmp_path: Path) -> None:
    raw = torch_save({"emb_params": to_torch(_sd1())}, tmp_path / "l.pt", legacy=True).read_bytes()
    # The last storage's element count claims more than the file holds.
    nbytes = 3 * 768 * 4
    head = raw[: -nbytes - 8]
    bad = head + struct.pack("<q", 10**9) + raw[-nbytes:]
    with pytest.raises(InvalidEmbedding, match="truncated"):
        read_embedding(bad)


def test_plain_pickle_of_a_list_is_named() -> None:
    with pytest.raises(InvalidEmbedding, match="holds a list, not an embedding"):
        read_embedding(pickle.dumps([1, 2, 3]))


def test_build_cannot_poison_allowed_globals() -> None:
    from client.core.unpickler import ALLOWED_GLOBALS

    # GLOBAL torch.FloatStorage, then BUILD with {"dtype": "x"} on it.
    payload = b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00xsb."
    with pytest.raises(InvalidEmbedding, match="tries to change torch.FloatStorage"):
        load_torch(payload)
    assert ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == np.dtype(np.float32)
