"""Write torch ``.pt`` files without torch and without pickling objects: the pickle opcodes are
emitted here, one by one, for the few value types an embedding file holds.

Why by hand: A1111, ComfyUI and kohya load ``.pt`` embeddings with ``torch.load``, so a file
named ``.pt`` must be a torch file (issue 9: safetensors bytes in a ``.pt`` break all three).
``torch.save`` cannot be used: the registry (server) must not need torch, and ``torch.save``
stamps every file with a random ``.data/serialization_id``, while the registry indexes the
sha256 of every rendering, so the same embedding must always give the same bytes.

The container is what ``torch.save`` writes (torch >= 2.1), minus the random id::

    archive/data.pkl              <- pickle protocol 2 (torch's default)
    archive/.format_version       <- "1"
    archive/.storage_alignment    <- "64"
    archive/byteorder             <- "little"
    archive/data/0, data/1 ...    <- raw little-endian storage bytes, one per tensor
    archive/version               <- "3\\n"

Members are stored uncompressed with the 1980-01-01 timestamp torch uses, and each member's
data starts on a 64-byte boundary (padding in an ``FB`` extra field, as torch's writer does) so
``torch.load(mmap=True)`` works too. Tensors pickle as ``torch._utils._rebuild_tensor_v2`` over a
``("storage", torch.FloatStorage, key, "cpu", numel)`` persistent id: exactly the globals
``torch.load(weights_only=True)`` and :mod:`client.core.unpickler` admit.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

import numpy as np

from .embedding import dtype_name
from .errors import BadRequest

ROOT = "archive"
ALIGNMENT = 64
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
STORAGE_CLASSES = {"F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage"}

# Pickle opcodes (protocol 2), named as in the standard library's pickletools.
PROTO, STOP, MARK = b"\x80", b".", b"("
EMPTY_DICT, SETITEMS, EMPTY_TUPLE, TUPLE = b"}", b"u", b")", b"t"
TUPLE_N = {1: b"\x85", 2: b"\x86", 3: b"\x87"}
NONE, NEWTRUE, NEWFALSE = b"N", b"\x88", b"\x89"
BININT, BININT1, BININT2, LONG1 = b"J", b"K", b"M", b"\x8a"
BINUNICODE, GLOBAL, REDUCE, BINPERSID = b"X", b"c", b"R", b"Q"


class _Pickle:
    """Emits protocol-2 opcodes for dicts (str keys), tuples, str, int, bool, None and numpy
    arrays (as torch tensors whose storages are collected in ``storages``)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: list[bytes] = []

    def dump(self, obj: Any) -> bytes:
        self.out.write(PROTO + b"\x02")
        self._value(obj)
        self.out.write(STOP)
        return self.out.getvalue()

    def _value(self, obj: Any) -> None:
        write = self.out.write
        if obj is None:
            write(NONE)
        elif isinstance(obj, bool):
            write(NEWTRUE if obj else NEWFALSE)
        elif isinstance(obj, int):
            self._int(obj)
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, tuple):
            self._tuple(obj)
        elif isinstance(obj, dict):
            write(EMPTY_DICT)
            if obj:
                write(MARK)
                for key, value in obj.items():
                    if not isinstance(key, str):
                        raise TypeError(f"torch_writer writes str keys only, got {key!r}")
                    self._str(key)
                    self._value(value)
                write(SETITEMS)
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        else:
            raise TypeError(f"torch_writer cannot write a {type(obj).__name__}")

    def _int(self, value: int) -> None:
        if 0 <= value < 0x100:
            self.out.write(BININT1 + struct.pack("<B", value))
        elif 0 <= value < 0x10000:
            self.out.write(BININT2 + struct.pack("<H", value))
        elif -(2**31) <= value < 2**31:
            self.out.write(BININT + struct.pack("<i", value))
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out.write(LONG1 + struct.pack("<B", len(raw)) + raw)

    def _str(self, value: str) -> None:
        raw = value.encode("utf-8", "surrogatepass")
        self.out.write(BINUNICODE + struct.pack("<I", len(raw)) + raw)

    def _tuple(self, items: tuple[Any, ...]) -> None:
        if not items:
            self.out.write(EMPTY_TUPLE)
            return
        if len(items) > 3:
            self.out.write(MARK)
        for item in items:
            self._value(item)
        self.out.write(TUPLE_N.get(len(items), TUPLE))

    def _global(self, module: str, name: str) -> None:
        self.out.write(GLOBAL + f"{module}\n{name}\n".encode("ascii"))

    def _tensor(self, array: np.ndarray) -> None:
        """``_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())``, the
        storage being a persistent id into ``archive/data/<key>``."""
        array = np.ascontiguousarray(array)
        storage_class = STORAGE_CLASSES[dtype_name(array)]
        key = str(len(self.storages))
        self.storages.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
        strides = tuple(int(s) // array.itemsize for s in array.strides)
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out.write(MARK)
        self.out.write(MARK)
        self._str("storage")
        self._global("torch", storage_class)
        self._str(key)
        self._str("cpu")
        self._int(int(array.size))
        self.out.write(TUPLE + BINPERSID)
        self._int(0)
        self._tuple(tuple(int(s) for s in array.shape))
        self._tuple(strides)
        self.out.write(NEWFALSE)
        self._global("collections", "OrderedDict")
        self.out.write(EMPTY_TUPLE + REDUCE)
        self.out.write(TUPLE + REDUCE)


def _aligned_member(archive: zipfile.ZipFile, offset: int, name: str, data: bytes) -> None:
    """Add ``name`` so that its data starts at a multiple of :data:`ALIGNMENT`."""
    member = f"{ROOT}/{name}"
    info = zipfile.ZipInfo(member, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 0
    info.external_attr = 0
    header = 30 + len(member.encode()) + 4  # local header, name, FB extra-field header
    padding = -(offset + header) % ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
    archive.writestr(info, data)


def torch_file_bytes(obj: dict[str, Any]) -> bytes:
    """The bytes ``torch.save(obj)`` would write (less its random serialization id), for a dict
    of str keys whose values are str, int, bool, None, tuples, dicts or numpy arrays."""
    pickler = _Pickle()
    pickled = pickler.dump(obj)
    members = [
        ("data.pkl", pickled),
        (".format_version", b"1"),
        (".storage_alignment", str(ALIGNMENT).encode()),
        ("byteorder", b"little"),
        *((f"data/{i}", raw) for i, raw in enumerate(pickler.storages)),
        ("version", b"3\n"),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            _aligned_member(archive, buffer.tell(), name, data)
    return buffer.getvalue()


def a1111_pt_bytes(
    vectors: np.ndarray,
    *,
    name: str,
    step: int | None = None,
    sd_checkpoint: str | None = None,
    sd_checkpoint_name: str | None = None,
) -> bytes:
    """An A1111 ``.pt`` embedding: the dict A1111's ``Embedding.save`` writes (its
    ``string_to_token`` is always ``{'*': 265}``). A1111 and ComfyUI take the prompt word from
    the *file name*; ``name`` is only what A1111 shows as the embedding's internal name."""
    if vectors.ndim != 2:
        raise BadRequest(f"an A1111 embedding is [vectors, width], not {list(vectors.shape)}")
    return torch_file_bytes(
        {
            "string_to_token": {"*": 265},
            "string_to_param": {"*": vectors},
            "name": name,
            "step": step,
            "sd_checkpoint": sd_checkpoint,
            "sd_checkpoint_name": sd_checkpoint_name,
        }
    )
