"""Strict safetensors reader: a file is accepted only when every safetensors loader reads it
the same way (issue 8, defect 7).

The format (https://github.com/huggingface/safetensors#format): 8 bytes little-endian ``N``,
then ``N`` bytes of UTF-8 JSON starting with ``{`` and padded with spaces, then the byte buffer.
The JSON maps each tensor name to exactly ``{"dtype", "shape", "data_offsets"}``; the special
key ``__metadata__`` is a string-to-string map. Offsets are relative to the buffer, and the
tensors must cover it entirely, without overlaps or holes.

Loaders differ on everything the spec leaves loose: duplicate keys (the last wins in Python, the
first elsewhere), overlapping offsets (two tensors sharing bytes), trailing bytes (a second file
hidden behind the first: a polyglot), a ``__metadata__`` that is not an object, shapes whose
element count overflows 64 bits, NUL padding, numbers outside 64 bits, NaN/Infinity tokens.
Each of those is refused here with :class:`MalformedSafetensors` naming the problem, so the
registry never stores a file two tools would read as different vectors. Hostile headers (deep
nesting, 5,000-digit numbers) are refused the same way, never with RecursionError/ValueError.
"""

from __future__ import annotations

import json
import struct
from typing import Any, NamedTuple

import numpy as np

from .embedding import DTYPES
from .errors import BadDtype, MalformedSafetensors

MAX_HEADER_BYTES = 100_000_000  # the spec's limit (safetensors' MAX_HEADER_SIZE)
METADATA_KEY = "__metadata__"
ENTRY_FIELDS = ("dtype", "shape", "data_offsets")
MAX_RANK = 32  # numpy < 2 and most C loaders cap a tensor's dimensions at 32
_U64_MAX = 2**64 - 1  # offsets and dimensions are u64 in the reference (Rust) reader
_INDEX_MAX = 2**63 - 1  # numpy and torch count bytes with signed 64-bit integers
_MAX_DIGITS = len(str(_U64_MAX))

# Every dtype the safetensors spec names, with its width in bits (sizes are checked for all of
# them, so a malformed file is called malformed whatever its dtype; only DTYPES are read).
SAFETENSORS_DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


class TensorEntry(NamedTuple):
    """One tensor of a validated header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


class SafetensorsHeader(NamedTuple):
    """A validated header: tensors in file order, metadata, and where the byte buffer starts."""

    tensors: list[TensorEntry]
    metadata: dict[str, str]
    buffer_start: int


def looks_like_safetensors(data: bytes) -> bool:
    """Cheap sniff for format detection (a header length, then ``{``); validity is
    :func:`read_header`'s job."""
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 2 <= n <= MAX_HEADER_BYTES and data[8:9] == b"{"


def parse_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of a strictly valid safetensors file; :class:`MalformedSafetensors`
    names the first rule the file breaks, :class:`BadDtype` a valid file of non-float tensors."""
    header = read_header(data)
    body = memoryview(data)[header.buffer_start :]
    tensors: dict[str, np.ndarray] = {}
    for entry in header.tensors:
        if entry.dtype not in DTYPES:
            raise BadDtype(
                f"tensor {entry.name!r} is {entry.dtype}; use float32 (F32), float16 (F16) or "
                "bfloat16 (BF16)"
            )
        dtype = DTYPES[entry.dtype].newbyteorder("<")
        array = np.frombuffer(body[entry.begin : entry.end], dtype=dtype).reshape(entry.shape)
        tensors[entry.name] = array.astype(DTYPES[entry.dtype], copy=True)
    return tensors, header.metadata


def read_header(data: bytes) -> SafetensorsHeader:
    """The validated header of ``data``: structure, dtypes, sizes and the byte layout."""
    if len(data) < 8:
        raise MalformedSafetensors(f"safetensors file is truncated ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise MalformedSafetensors(
            f"safetensors header claims {n} bytes; the format allows at most {MAX_HEADER_BYTES}"
        )
    if n > len(data) - 8:
        raise MalformedSafetensors(
            f"safetensors header claims {n} bytes but only {len(data) - 8} follow; "
            "the file is truncated or not safetensors"
        )
    raw = _decode_json(data[8 : 8 + n])
    metadata: dict[str, str] = {}
    tensors: list[TensorEntry] = []
    for name, value in raw.items():
        if name == METADATA_KEY:
            metadata = _metadata(value)
        else:
            tensors.append(_entry(name, value))
    _check_layout(tensors, len(data) - 8 - n)
    return SafetensorsHeader(tensors, metadata, 8 + n)


# -- the JSON --------------------------------------------------------------------------------


def _decode_json(raw: bytes) -> dict[str, Any]:
    """The header object, parsed as strictly as the spec's reference (serde_json) and then some:
    UTF-8 only, unique keys, only space padding, no NUL, no NaN, no numbers beyond 64 bits."""
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        raise MalformedSafetensors(
            f"safetensors header holds a NUL byte at offset {at}; headers are JSON padded with "
            "spaces only"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedSafetensors(
            f"safetensors header is not UTF-8 (bad byte at offset {exc.start})"
        ) from None
    if not text.startswith("{"):
        raise MalformedSafetensors("safetensors header does not start with '{'")
    body = text.rstrip(" ")
    decoder = json.JSONDecoder(
        object_pairs_hook=_unique_object, parse_int=_bounded_int, parse_constant=_no_constant
    )
    try:
        header, end = decoder.raw_decode(body)
    except json.JSONDecodeError as exc:
        raise MalformedSafetensors(f"safetensors header is not valid JSON ({exc})") from None
    except RecursionError:
        raise MalformedSafetensors(
            "safetensors header nests too deep; a header is at most 3 levels deep"
        ) from None
    if end != len(body):
        raise MalformedSafetensors(
            f"safetensors header has {len(body) - end} characters after its JSON object; "
            "only spaces may pad it"
        )
    return header  # starts with '{', so an object


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: loaders disagree on which duplicate wins, so none may exist."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedSafetensors(
                f"safetensors header has the key {key!r} twice; loaders disagree on which wins"
            )
        _check_text(key)
        if isinstance(value, str):
            _check_text(value)
        result[key] = value
    return result


def _check_text(text: str) -> None:
    problem = text_problem(text)
    if problem:
        raise MalformedSafetensors(f"safetensors header holds {problem} in {text!r}")


def text_problem(text: str) -> str | None:
    """What keeps ``text`` out of a header, or None. Names and metadata must survive every
    loader: no NUL (C strings end there) and no lone surrogates (valid JSON escapes, but not
    encodable text; serde_json refuses them). Writers check the same rule."""
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate"
    return None


def _bounded_int(digits: str) -> int:
    """``parse_int``: refuse numbers longer than any 64-bit size before converting them (Python
    refuses 4,300+ digits with a bare ValueError, and big ones cost quadratic time)."""
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise MalformedSafetensors(
            f"safetensors header holds a {len(digits)}-digit number; sizes and offsets fit in "
            f"{_MAX_DIGITS} digits"
        )
    return int(digits)


def _no_constant(name: str) -> Any:
    """``parse_constant``: NaN and Infinity are Python's extension, not JSON."""
    raise MalformedSafetensors(f"safetensors header holds {name}, which is not JSON")


# -- the entries ------------------------------------------------------------------------------


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise MalformedSafetensors(
            f"safetensors '{METADATA_KEY}' is {_json_kind(value)}; it must be an object of strings"
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise MalformedSafetensors(
                f"safetensors metadata {key!r} is {_json_kind(item)}; metadata values are strings"
            )
    return dict(value)


def _entry(name: str, value: object) -> TensorEntry:
    if not isinstance(value, dict):
        raise MalformedSafetensors(
            f"safetensors entry {name!r} is {_json_kind(value)}, not a tensor's "
            "{dtype, shape, data_offsets}"
        )
    missing = [f for f in ENTRY_FIELDS if f not in value]
    extra = sorted(set(value) - set(ENTRY_FIELDS))
    if missing or extra:
        problem = f"has no {missing[0]!r}" if missing else f"has an unknown field {extra[0]!r}"
        raise MalformedSafetensors(
            f"tensor {name!r} {problem}; a tensor holds exactly dtype, shape and data_offsets"
        )
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPE_BITS:
        raise MalformedSafetensors(f"tensor {name!r} has dtype {dtype!r}, not a safetensors dtype")
    if not isinstance(shape, list) or not all(_is_size(d) for d in shape):
        raise MalformedSafetensors(
            f"tensor {name!r} has shape {_short(shape)}; a shape is a list of whole numbers >= 0"
        )
    if len(shape) > MAX_RANK:
        raise MalformedSafetensors(
            f"tensor {name!r} has {len(shape)} dimensions; loaders take at most {MAX_RANK}"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_size, offsets))):
        raise MalformedSafetensors(
            f"tensor {name!r} has data_offsets {_short(offsets)}; they are [begin, end], whole "
            "numbers >= 0"
        )
    begin, end = offsets
    if begin > end:
        raise MalformedSafetensors(f"tensor {name!r} ends (byte {end}) before it begins ({begin})")
    _check_size(name, dtype, shape, end - begin)
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def _check_size(name: str, dtype: str, shape: list[int], span: int) -> None:
    """``prod(shape) * itemsize == end - begin``, where the product must fit 64-bit counters
    (Python's exact integers would accept what C loaders overflow on)."""
    bits = SAFETENSORS_DTYPE_BITS[dtype]
    nonzero = 1  # zero dimensions still have to be indexable, so they count as 1 here
    for dim in shape:
        nonzero *= max(dim, 1)
        if dim > _INDEX_MAX or nonzero * bits > _INDEX_MAX * 8:
            raise MalformedSafetensors(
                f"tensor {name!r} has shape {_short(shape)}, more elements than a 64-bit size "
                "can count"
            )
    total_bits = 0 if 0 in shape else nonzero * bits
    if total_bits % 8:
        raise MalformedSafetensors(
            f"tensor {name!r} ({dtype} {shape}) does not fill a whole number of bytes"
        )
    if total_bits // 8 != span:
        raise MalformedSafetensors(
            f"tensor {name!r} is {dtype} {shape} = {total_bits // 8} bytes but its data_offsets "
            f"span {span}"
        )


def _check_layout(tensors: list[TensorEntry], buffer_len: int) -> None:
    """Tensors tile the byte buffer exactly: no overlap, no hole, nothing after the last."""
    cursor, previous = 0, None
    for entry in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if entry.begin < cursor:
            raise MalformedSafetensors(
                f"tensors {previous!r} and {entry.name!r} overlap (bytes {entry.begin}..{cursor}"
                "); each byte belongs to one tensor"
            )
        if entry.begin > cursor:
            raise MalformedSafetensors(
                f"bytes {cursor}..{entry.begin} of the data belong to no tensor; the data must "
                "have no holes"
            )
        cursor, previous = entry.end, entry.name
    if cursor > buffer_len:
        raise MalformedSafetensors(
            f"tensor {previous!r} ends at byte {cursor} of a {buffer_len}-byte data section; "
            "the file is truncated"
        )
    if cursor < buffer_len:
        raise MalformedSafetensors(
            f"{buffer_len - cursor} trailing bytes after the last tensor; a safetensors file "
            "ends with its last tensor"
        )


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def _json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
