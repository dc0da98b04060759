"""Damaged files of every container get a named refusal, never a stray exception: random bytes,
then damage built to pass each container's own checks (zip CRCs, pickle structure, JSON)."""

from __future__ import annotations

import base64
import collections
import io
import json
import pickle
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from client.core.canonical import parse_safetensors, serialize_safetensors
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


# -- structure-aware fuzzing: damage that passes the container's own checksums ---------------


def _read_or_refuse(data: bytes, what: str) -> object | None:
    """The embedding, or None when refused with a typed error; any other exception fails."""
    try:
        return read_embedding(data)
    except LexiconError:
        return None
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}")


def test_damaged_pickles_inside_valid_zips_are_refused_by_name(tmp_path: Path) -> None:
    """Byte damage to ``data.pkl`` with the zip's CRC recomputed, so it reaches the unpickler
    (random damage to the zip itself mostly stops at the CRC)."""
    from tests.core.conftest import rewrite_zip

    zipped = _samples(tmp_path)["zip"]
    rng = random.Random(99)
    for trial in range(300):

        def damage(name: str, raw: bytes) -> bytes:
            if not name.endswith("data.pkl"):
                return raw
            raw = bytearray(raw)
            for _ in range(rng.randint(1, 3)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            return bytes(raw)

        _read_or_refuse(rewrite_zip(zipped, damage), f"data.pkl trial {trial}")


def _torch_zip(sizes: tuple, strides: tuple, offset: int, numel: int, stored: int) -> bytes:
    """A torch zip file whose one tensor has exactly the given size, stride, storage offset and
    storage numel, with ``stored`` float32 elements of data; pickled with torch's own rebuild
    function, the way ``torch.save`` writes it."""
    torch = pytest.importorskip("torch")

    class StorageRef:
        pass

    storage = StorageRef()

    class Rebuild:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            args = (storage, offset, sizes, strides, False, collections.OrderedDict())
            return (torch._utils._rebuild_tensor_v2, args)

    class TorchPickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if obj is storage:
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    pkl = io.BytesIO()
    TorchPickler(pkl, protocol=2).dump({"emb_params": Rebuild()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pkl.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.zeros(stored, np.float32).tobytes())
    return out.getvalue()


def test_tensors_with_hostile_sizes_strides_and_offsets_are_refused_by_name() -> None:
    """Negative, zero, huge and mismatched geometry in a well-formed torch file."""
    rng = random.Random(7)
    numbers = [-(2**63), -(2**31), -768, -1, 0, 1, 2, 767, 768, 1536, 2**31, 2**62, 2**70]
    for trial in range(400):
        rank = rng.choice([0, 1, 2, 2, 2, 3])
        sizes = tuple(rng.choice(numbers) for _ in range(rank))
        strides = tuple(rng.choice(numbers) for _ in range(rank))
        if trial % 4 == 0:  # mostly plausible, one number off
            sizes, strides = (rng.choice([1, 2]), rng.choice(numbers)), (768, 1)
        data = _torch_zip(sizes, strides, rng.choice(numbers[:9]), rng.choice(numbers[4:]), 1536)
        what = f"trial {trial}: size {sizes} stride {strides}"
        _read_or_refuse(data, what)
    # Each of these once escaped as ValueError/OverflowError from numpy.
    for sizes, strides in [((1, -768), (768, 1)), ((0, 2**70), (1, 1)), ((1,), (2**62,))]:
        _read_or_refuse(_torch_zip(sizes, strides, 0, 1536, 1536), f"{sizes} {strides}")
    assert _read_or_refuse(_torch_zip((2, 768), (768, 1), 0, 1536, 1536), "valid") is not None


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choices = [
        lambda: rng.choice([0, 1, -1, 768, 6144, 2**63, 2**64, -(2**64), 10**30]),
        lambda: rng.choice([0.5, -0.0, 1e308, 768.0]),
        lambda: rng.choice(["F32", "F16", "BF16", "I64", "F33", "", "\x00", "emb_params"]),
        lambda: rng.choice([None, True, False]),
    ]
    if depth < 3:
        choices += [
            lambda: [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            lambda: {
                rng.choice(["dtype", "shape", "data_offsets", "x"]): _random_json(rng, depth + 1)
                for _ in range(rng.randint(0, 3))
            },
        ]
    return rng.choice(choices)()


def test_safetensors_headers_we_accept_read_the_same_in_the_safetensors_library() -> None:
    """Mutated headers: every file is refused by name or, when accepted, the reference loader
    reads the very same tensors (so no file means two things to two loaders)."""
    from safetensors.numpy import load as reference_load

    rng = random.Random(2024)
    body = np.arange(2 * 768, dtype=np.float32).tobytes()
    accepted = 0
    for trial in range(600):
        header: dict[str, object] = {
            "emb_params": {"dtype": "F32", "shape": [2, 768], "data_offsets": [0, len(body)]}
        }
        entry = header["emb_params"]
        assert isinstance(entry, dict)
        if trial % 3 == 0:  # small numeric edits keep many files plausible
            entry["data_offsets"] = [rng.choice([0, 0, 8]), len(body) + rng.choice([-4, 0, 0, 4])]
        else:
            for _ in range(rng.randint(1, 2)):
                where = rng.choice(["dtype", "shape", "data_offsets", "entry", "metadata", "extra"])
                if where in entry:
                    entry[where] = _random_json(rng)
                elif where == "entry":
                    header["emb_params"] = _random_json(rng)
                elif where == "metadata":
                    header["__metadata__"] = _random_json(rng)
                else:
                    header[rng.choice(["b", "__x__"])] = _random_json(rng)
        head = json.dumps(header).encode() + b" " * rng.choice([0, 0, 3])
        tail = rng.choice([b"", b"", b"", b"\0", body[:4]])
        data = struct.pack("<Q", len(head)) + head + body + tail
        try:
            ours, _ = parse_safetensors(data)
        except LexiconError:
            continue
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"trial {trial} {head[:200]!r}: {type(exc).__name__}: {exc}")
        accepted += 1
        theirs = reference_load(data)
        assert set(theirs) == set(ours), head
        for name, array in ours.items():
            np.testing.assert_array_equal(theirs[name], array)
    assert accepted > 20  # the generator still produces valid files


def test_png_payloads_of_any_shape_are_refused_by_name() -> None:
    """The PNG's JSON can hold anything where A1111 puts tensors and names."""
    rng = random.Random(5)
    for trial in range(400):
        payload = {
            "string_to_param": rng.choice(
                [{"*": {"TORCHTENSOR": _random_json(rng)}}, _random_json(rng)]
            ),
            "name": _random_json(rng),
            "step": _random_json(rng),
        }
        text = base64.b64encode(json.dumps(payload).encode())
        png = minimal_png([embedding_text_chunk(text)])
        _read_or_refuse(png, f"trial {trial}: {payload!r:.200}")


def test_pickle_memo_index_cannot_make_the_reader_allocate_gigabytes(tmp_path: Path) -> None:
    """Found by the fuzzing above: one damaged byte turned a BINPUT into LONG_BINPUT 1175087203,
    and CPython's unpickler sized its memo array to that index (9 GB, two minutes). The reader
    refuses it by name; run under a 2 GB address-space limit so the old behaviour fails fast."""
    import subprocess
    import sys
    import textwrap

    memo = b"\x80\x02}q\x00(X\x01\x00\x00\x00ar" + struct.pack("<I", 1_175_087_203) + b"K\x01u."
    torch_like = rewrite_zip_member(_samples(tmp_path)["zip"], "data.pkl", memo)
    for i, data in enumerate([memo, torch_like]):
        path = tmp_path / f"memo{i}.pt"
        path.write_bytes(data)
        script = textwrap.dedent(
            f"""
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
            from client.core.errors import LexiconError
            from client.core.formats import read_path
            try:
                read_path({str(path)!r})
            except LexiconError as exc:
                print(exc)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert "memo" in result.stdout and "MemoryError" not in result.stdout, result.stdout


def rewrite_zip_member(data: bytes, suffix: str, new: bytes) -> bytes:
    from tests.core.conftest import rewrite_zip

    return rewrite_zip(data, lambda name, raw: new if name.endswith(suffix) else raw)
