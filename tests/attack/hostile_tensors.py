"""Hostile safetensors files: malformed headers (duplicate keys, overlapping or holed offsets,
trailing bytes, non-object ``__metadata__``, overflowing shapes, deep or huge JSON), values no
prompt survives (NaN/Inf), and shapes no text encoder takes (wrong widths, 0 or 90 vectors);
plus files that are no embedding at all."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import numpy as np

from client.core.canonical import serialize_safetensors
from client.core.errors import ErrorCode as E

from .cases import MALFORMED, NOT_SAFETENSORS, FileCase, codes

SHAPE = codes(E.BAD_SHAPE)
FINITE = codes(E.NON_FINITE)
MALFORMED_OR_SHAPE = MALFORMED | SHAPE
ROW = 768 * 4  # bytes of one SD1 F32 vector


def _st(header: dict | str | bytes, body: bytes, *, pad: bytes = b" ") -> bytes:
    """Safetensors bytes with this exact header (dict: dumped; str/bytes: taken as is)."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    raw = header.encode() if isinstance(header, str) else header
    raw += pad * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _entry(shape: list, start: int, end: int, dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


def _vec(n: int = 1, width: int = 768, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)


def _canon(tensors: dict[str, np.ndarray]) -> bytes:
    return serialize_safetensors(tensors, {"lexicon.format": "1"})


def malformed_cases() -> Iterator[FileCase]:
    body = _vec(2).tobytes()
    one = _entry([1, 768], 0, ROW)
    kind = "malformed safetensors"
    table: list[tuple[str, bytes, frozenset[str], str]] = [
        (
            "duplicate-key",
            _st(
                '{"emb_params":'
                + json.dumps(_entry([1, 768], 0, ROW))
                + ',"emb_params":'
                + json.dumps(_entry([1, 768], ROW, 2 * ROW))
                + "}",
                body,
            ),
            MALFORMED,
            "'emb_params' twice: loaders disagree on which one counts",
        ),
        (
            "duplicate-metadata-key",
            _st(
                '{"__metadata__":{"lexicon.token":"<a>","lexicon.token":"<b>"},'
                '"emb_params":' + json.dumps(one) + "}",
                body[:ROW],
            ),
            MALFORMED,
            "a metadata key twice",
        ),
        (
            "overlapping-offsets",
            _st(
                {"clip_g": _entry([1, 1280], 0, 5120), "clip_l": _entry([1, 768], 2048, 5120)},
                _vec(1, 1280).tobytes(),
            ),
            MALFORMED,
            "clip_l's bytes lie inside clip_g's",
        ),
        (
            "same-offsets-twice",
            _st(
                {"clip_g": _entry([1, 768], 0, ROW), "clip_l": _entry([1, 768], 0, ROW)}, body[:ROW]
            ),
            MALFORMED,
            "two tensors read the same bytes",
        ),
        (
            "hole-between-tensors",
            _st(
                {"clip_g": _entry([1, 1280], 0, 5120), "clip_l": _entry([1, 768], 5128, 8200)},
                _vec(1, 1280).tobytes() + b"\0" * 8 + body[:ROW],
            ),
            MALFORMED,
            "8 unread bytes between the tensors",
        ),
        (
            "trailing-bytes",
            _st({"emb_params": one}, body[:ROW] + b"EVIL" * 4),
            MALFORMED,
            "16 bytes after the last tensor",
        ),
        (
            "trailing-second-file",
            _st({"emb_params": one}, body[:ROW]) + _canon({"emb_params": _vec()}),
            MALFORMED,
            "a second safetensors file appended",
        ),
        (
            "metadata-is-list",
            _st({"__metadata__": ["a", "b"], "emb_params": one}, body[:ROW]),
            MALFORMED,
            "__metadata__ is a list",
        ),
        (
            "metadata-is-string",
            _st({"__metadata__": "x", "emb_params": one}, body[:ROW]),
            MALFORMED,
            "__metadata__ is a string",
        ),
        (
            "metadata-nested",
            _st({"__metadata__": {"k": {"v": 1}}, "emb_params": one}, body[:ROW]),
            MALFORMED,
            "__metadata__ values that are objects",
        ),
        (
            "metadata-int-value",
            _st({"__metadata__": {"k": 5}, "emb_params": one}, body[:ROW]),
            MALFORMED,
            "__metadata__ value that is a number",
        ),
        (
            "shape-overflow-int64",
            _st({"emb_params": _entry([2**62, 2**62, 4], 0, 0)}, b""),
            MALFORMED_OR_SHAPE,
            "element count 2^126 overflows 64 bits",
        ),
        (
            "shape-overflow-wraps-to-size",
            _st({"emb_params": _entry([2**32, 2**32, 1, 768], 0, ROW)}, body[:ROW]),
            MALFORMED_OR_SHAPE,
            "element count wraps to the size on disk in int64",
        ),
        (
            "shape-negative",
            _st({"emb_params": _entry([-1, 768], 0, ROW)}, body[:ROW]),
            MALFORMED_OR_SHAPE,
            "negative dimension",
        ),
        (
            "shape-float",
            _st({"emb_params": _entry([1.0, 768], 0, ROW)}, body[:ROW]),
            MALFORMED_OR_SHAPE,
            "float dimension",
        ),
        (
            "shape-bool",
            _st({"emb_params": _entry([True, 768], 0, ROW)}, body[:ROW]),
            MALFORMED_OR_SHAPE,
            "boolean dimension",
        ),
        (
            "offsets-reversed",
            _st({"emb_params": _entry([1, 768], ROW, 0)}, body[:ROW]),
            MALFORMED,
            "end before start",
        ),
        (
            "offsets-past-end",
            _st({"emb_params": _entry([1, 768], 0, 10 * ROW)}, body[:ROW]),
            MALFORMED,
            "offsets beyond the file",
        ),
        (
            "offsets-huge-int",
            _st(
                '{"emb_params":{"dtype":"F32","shape":[1,768],"data_offsets":[0,'
                + "9" * 5000
                + "]}}",
                body[:ROW],
            ),
            MALFORMED,
            "a 5,000-digit offset",
        ),
        (
            "entry-extra-field",
            _st({"emb_params": {**one, "evil": 1}}, body[:ROW]),
            MALFORMED,
            "a tensor entry with an unknown field",
        ),
        (
            "entry-not-object",
            _st({"emb_params": "F32"}, body[:ROW]),
            MALFORMED,
            "a tensor entry that is a string",
        ),
        ("header-not-object", _st("[1, 2, 3]", b""), MALFORMED, "header is a JSON list"),
        (
            "header-not-utf8",
            _st(b'{"emb_params\xff\xfe":1}', b""),
            MALFORMED,
            "header bytes are not UTF-8",
        ),
        (
            "header-nul-padding",
            _st({"emb_params": _entry([1, 768], 0, ROW)}, body[:ROW], pad=b"\0")
            if len(json.dumps({"emb_params": one}, separators=(",", ":"))) % 8
            else _st(json.dumps({"emb_params": one}, separators=(",", ":")) + "\0" * 8, body[:ROW]),
            MALFORMED,
            "header padded with NUL bytes",
        ),
        (
            "header-nul-in-key",
            _st({"emb_params\0x": one}, body[:ROW]),
            MALFORMED,
            "a NUL byte inside a tensor name",
        ),
        (
            "header-deep-json",
            _st('{"__metadata__":{"k":"v"},"x":' + "[" * 100_000 + "]" * 100_000 + "}", b""),
            MALFORMED,
            "header JSON nested 100,000 deep",
        ),
        (
            "header-length-lies",
            struct.pack("<Q", 2**40) + b'{"emb_params":{}}',
            MALFORMED | NOT_SAFETENSORS,
            "header length of 1 TiB",
        ),
        (
            "header-truncated",
            _st({"emb_params": one}, body[:ROW])[:40],
            MALFORMED,
            "cut inside the header",
        ),
        (
            "body-truncated",
            _st({"emb_params": one}, body[: ROW // 2]),
            MALFORMED,
            "half the tensor bytes",
        ),
        (
            "dtype-f64",
            _st({"emb_params": _entry([1, 768], 0, 2 * ROW, "F64")}, body),
            codes(E.BAD_DTYPE),
            "float64",
        ),
        (
            "dtype-unknown",
            _st({"emb_params": _entry([1, 768], 0, ROW, "Q99")}, body[:ROW]),
            codes(E.BAD_DTYPE) | MALFORMED,
            "unknown dtype",
        ),
    ]
    for name, data, api, why in table:
        client = api | codes(E.INVALID_EMBEDDING) if api & MALFORMED else api
        yield FileCase(f"st-{name}", kind, f"{name}.safetensors", data, client, api, why)


def value_cases() -> Iterator[FileCase]:
    """Well-formed files whose values or shapes no text encoder takes."""

    def nan_at(dtype: str, value: float) -> np.ndarray:
        v = _vec(2)
        v[1, 5] = value
        return v.astype(dtype)

    for name, array in (
        ("nan-f32", nan_at("float32", np.nan)),
        ("inf-f32", nan_at("float32", np.inf)),
        ("neg-inf-f32", nan_at("float32", -np.inf)),
        ("nan-f16", nan_at("float16", np.nan)),
        ("inf-f16-overflow", np.full((1, 768), np.inf, np.float16)),
    ):
        yield FileCase(
            f"values-{name}",
            "NaN/Inf",
            f"{name}.safetensors",
            _canon({"emb_params": array}),
            FINITE,
            FINITE,
            "non-finite vector values",
        )
    import ml_dtypes

    bf = nan_at("float32", np.nan).astype(ml_dtypes.bfloat16)
    yield FileCase(
        "values-nan-bf16",
        "NaN/Inf",
        "nan-bf16.safetensors",
        _canon({"emb_params": bf}),
        FINITE,
        FINITE,
        "a bfloat16 NaN",
    )
    sdxl_nan = _vec(1, 1280)
    sdxl_nan[0, 0] = np.nan
    yield FileCase(
        "values-nan-sdxl-clip-g",
        "NaN/Inf",
        "sdxl-nan.safetensors",
        _canon({"clip_l": _vec(1), "clip_g": sdxl_nan}),
        FINITE,
        FINITE,
        "NaN in SDXL's clip_g only",
    )
    shapes = {
        "width-640": {"emb_params": _vec(1, 640)},
        "width-769": {"emb_params": _vec(1, 769)},
        "width-4096": {"emb_params": _vec(1, 4096)},
        "width-1": {"emb_params": _vec(1, 1)},
        "width-0": {"emb_params": np.zeros((1, 0), np.float32)},
        "sdxl-clip-g-1024": {"clip_l": _vec(1), "clip_g": _vec(1, 1024)},
        "sdxl-swapped-widths": {"clip_l": _vec(1, 1280), "clip_g": _vec(1, 768)},
        "sdxl-counts-differ": {"clip_l": _vec(2), "clip_g": _vec(3, 1280)},
        "zero-vectors": {"emb_params": np.zeros((0, 768), np.float32)},
        "zero-vectors-sdxl": {
            "clip_l": np.zeros((0, 768), np.float32),
            "clip_g": np.zeros((0, 1280), np.float32),
        },
        "76-vectors": {"emb_params": _vec(76)},
        "90-vectors": {"emb_params": _vec(90)},
        "3d-tensor": {"emb_params": _vec(2).reshape(1, 2, 768)},
        "scalar": {"emb_params": np.float32(1.0).reshape(())},
    }
    for name, tensors in shapes.items():
        yield FileCase(
            f"shape-{name}",
            "wrong width or count",
            f"{name}.safetensors",
            _canon(tensors),
            SHAPE,
            SHAPE,
            f"shape no text encoder takes ({name})",
        )


def junk_cases() -> Iterator[FileCase]:
    invalid = codes(E.INVALID_EMBEDDING)
    yield FileCase(
        "junk-empty",
        "not an embedding",
        "empty.safetensors",
        b"",
        invalid,
        NOT_SAFETENSORS | codes(E.BAD_REQUEST),
        "an empty file",
    )
    yield FileCase(
        "junk-html",
        "not an embedding",
        "page.pt",
        b"<!doctype html><html><body>Login</body></html>",
        invalid,
        NOT_SAFETENSORS,
        "an HTML page saved as .pt",
    )
    yield FileCase(
        "junk-random",
        "not an embedding",
        "noise.bin",
        np.random.default_rng(1).bytes(4096),
        invalid,
        NOT_SAFETENSORS,
        "random bytes",
    )
    big = _canon({"emb_params": _vec(75)}) + b" " * (3 << 20)
    yield FileCase(
        "junk-too-large",
        "over the size limit",
        "big.safetensors",
        big,
        codes(E.TOO_LARGE),
        codes(E.TOO_LARGE),
        "3 MiB, past the 2 MiB upload limit",
    )
