"""Torch file containers around the pickle, read without torch and without running code.

* the zip format (torch >= 1.6): ``<root>/data.pkl``, ``<root>/data/<key>``, optional
  ``<root>/byteorder``; the root folder name varies (``archive``, ``learned_embeds``...);
* the legacy format (``_use_new_zipfile_serialization=False``): pickled magic number, protocol
  version and sys_info, then the object pickle, the sorted storage keys and each storage as
  ``<int64 little-endian numel><raw little-endian elements>``;
* a plain pickle (no storages), read with the same restricted unpickler.

The pickle itself goes through :class:`client.core.unpickler.RestrictedUnpickler`. Zip members
are capped in count and unpacked size (zip bombs), storages are checked against their sizes.

A zip holds exactly what torch writes (issue 8, found by the attack suite): every member under
one root folder with plain names (no ``..``, absolute path, backslash or drive letter, which an
unzip tool would write outside its folder), only the storages the pickle uses plus torch's own
small records, and at most :data:`MAX_UNPACKED_BYTES` declared for all members together. A member
the pickle does not read would otherwise pass unchecked (spread bombs, smuggled payloads) and
the declared total lets a bomb be refused before anything is inflated.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from .errors import InvalidEmbedding
from .unpickler import Storage, materialize, unpickle

TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL_VERSION = 1001
MAX_UNPACKED_BYTES = 32 * 1024 * 1024  # all zip members together
MAX_ZIP_MEMBERS = 1000
# What torch writes beside data.pkl and data/<key> (torch 1.6 to 2.x); nothing else is accepted.
TORCH_RECORDS = frozenset(
    {
        "byteorder",
        "version",
        ".format_version",
        ".storage_alignment",
        ".data/version",
        ".data/serialization_id",
    }
)
_PLAIN_PART = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]+", re.ASCII)


def _unsafe_member(name: str) -> bool:
    """A name an extracting tool could write outside its folder: absolute, a drive, a backslash,
    a ``.``/``..`` or empty component, or anything but plain characters."""
    parts = name.split("/")
    return any(p in ("", ".", "..") or not _PLAIN_PART.fullmatch(p) for p in parts)


def _raw_to_array(raw: bytes, dtype: np.dtype, byteorder: str) -> np.ndarray:
    """Elements of ``raw`` stored with ``byteorder`` as a native numpy array."""
    if dtype.itemsize == 1:
        return np.frombuffer(raw, dtype=dtype).copy()
    uint = np.dtype(f"u{dtype.itemsize}").newbyteorder("<" if byteorder == "little" else ">")
    native = np.frombuffer(raw, dtype=uint).astype(uint.newbyteorder("="))
    return native.view(dtype)


def is_torch_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def load_torch_zip(data: bytes) -> Any:
    """The object of a torch zip file, tensors as numpy arrays."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidEmbedding(f"the zip archive is truncated or corrupt ({exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise InvalidEmbedding(f"the zip archive holds {len(members)} files; too many")
    names = {m.filename: m for m in members}
    for name in names:
        if _unsafe_member(name):
            raise InvalidEmbedding(
                f"the zip archive holds a member named {name!r}, a path outside its folder or "
                "with characters a torch file never uses; refused"
            )
    declared = sum(m.file_size for m in members)
    if declared > MAX_UNPACKED_BYTES:
        raise InvalidEmbedding(
            f"the zip archive's members unpack to {declared:,} bytes together, more than "
            f"{MAX_UNPACKED_BYTES:,} (a zip bomb or a model checkpoint?)"
        )
    pickles = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
    if len(pickles) != 1:
        raise InvalidEmbedding(
            "the zip archive is not a torch file (no <folder>/data.pkl)"
            if not pickles
            else f"the zip archive holds {len(pickles)} data.pkl files; expected one"
        )
    root = pickles[0].rsplit("/", 1)[0]
    budget = [MAX_UNPACKED_BYTES]

    def read(name: str) -> bytes:
        info = names.get(name)
        if info is None:
            raise InvalidEmbedding(f"the torch file lacks {name!r}; it is truncated")
        if info.file_size > budget[0]:
            raise InvalidEmbedding(
                f"{name!r} unpacks to {info.file_size} bytes; more than an embedding "
                "(a zip bomb or a model checkpoint?)"
            )
        try:
            with archive.open(info) as handle:
                raw = handle.read(budget[0] + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
            raise InvalidEmbedding(f"{name!r} in the zip archive is corrupt ({exc})") from None
        if len(raw) > budget[0]:
            raise InvalidEmbedding("the zip archive unpacks to too many bytes (a zip bomb?)")
        budget[0] -= len(raw)
        return raw

    byteorder = "little"
    if f"{root}/byteorder" in names:
        byteorder = read(f"{root}/byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise InvalidEmbedding(f"the torch file names an unknown byte order {byteorder!r}")

    used: set[str] = set()

    def load_storage(storage: Storage) -> None:
        if not isinstance(storage.key, str) or not _STORAGE_KEY.fullmatch(storage.key):
            raise InvalidEmbedding(
                f"the pickle names storage {storage.key!r}; torch keys are plain names"
            )
        used.add(f"{root}/data/{storage.key}")
        raw = read(f"{root}/data/{storage.key}")
        expected = storage.numel * storage.dtype.itemsize
        if len(raw) < expected:
            raise InvalidEmbedding(
                f"storage {storage.key!r} holds {len(raw)} bytes, expected {expected}; "
                "the file is truncated"
            )
        storage.array = _raw_to_array(raw[:expected], storage.dtype, byteorder)

    obj, _, _ = unpickle(read(f"{root}/data.pkl"), load_storage)
    expected = {f"{root}/data.pkl", *used, *(f"{root}/{r}" for r in TORCH_RECORDS)}
    extra = sorted(set(names) - expected)
    if extra:
        raise InvalidEmbedding(
            f"the zip archive holds {len(extra)} member(s) the torch pickle does not use, "
            f"such as {extra[0]!r}; refused (hidden payload or a zip bomb)"
        )
    return materialize(obj)


def load_legacy(data: bytes) -> Any:
    """The object of a legacy (pre-zip) torch file, or of a plain pickle (no tensors)."""
    stream = io.BytesIO(data)
    first, _, end = unpickle(data)
    if first != TORCH_MAGIC_NUMBER:
        if end != len(data):
            raise InvalidEmbedding(f"{len(data) - end} stray bytes follow the pickle")
        return materialize(first)
    stream.seek(end)
    protocol, _, used = unpickle(stream.read())
    if protocol != TORCH_PROTOCOL_VERSION:
        raise InvalidEmbedding(f"legacy torch file has unknown protocol version {protocol!r}")
    end += used
    _sys_info, _, used = unpickle(data[end:])
    end += used
    pending: list[Storage] = []
    obj, unpickler, used = unpickle(data[end:], pending.append)
    end += used
    keys, _, used = unpickle(data[end:])
    end += used
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidEmbedding("legacy torch file has a malformed storage key list")
    for key in keys:
        storage = unpickler.storages.get(key)
        if storage is None:
            raise InvalidEmbedding(f"legacy torch file lists unknown storage {key!r}")
        if end + 8 > len(data):
            raise InvalidEmbedding("legacy torch file is truncated (storage header missing)")
        (numel,) = struct.unpack("<q", data[end : end + 8])
        end += 8
        nbytes = numel * storage.dtype.itemsize
        if numel < 0 or end + nbytes > len(data):
            raise InvalidEmbedding(
                f"legacy torch file is truncated (storage {key!r} needs {nbytes} bytes)"
            )
        storage.array = _raw_to_array(data[end : end + nbytes], storage.dtype, "little")
        end += nbytes
    return materialize(obj)


def looks_like_pickle(data: bytes) -> bool:
    return data[:1] == b"\x80" or (len(data) > 1 and data.rstrip()[-1:] == b".")


def load_torch(data: bytes) -> Any:
    """Any torch file (zip or legacy) or plain pickle, read without running pickled code."""
    if is_torch_zip(data):
        return load_torch_zip(data)
    if len(data) > 262 and data[257:262] == b"ustar":
        raise InvalidEmbedding(
            "this is the tar-based torch format from before 2018, which we do not read"
        )
    return load_legacy(data)
