"""A generator of not-strictly-valid safetensors files (issue 8, defects 4 and 7), shared by the
reader, CLI and registry tests. Each :class:`Malformed` is one file with the error class and a
phrase the refusal must contain; every file starts like safetensors (a length, then ``{``) and
holds plausible SD 1.x vectors, so a lax reader would accept it."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from client.core.errors import BadDtype, InvalidEmbedding, MalformedSafetensors

WIDTH = 768
VECTORS = np.linspace(-1, 1, 2 * WIDTH, dtype=np.float32).reshape(2, WIDTH)
BODY = VECTORS.tobytes()  # 6144 bytes, little-endian on every machine we test on
HALF = len(BODY) // 2


@dataclass(frozen=True)
class Malformed:
    id: str
    data: bytes
    error: type[InvalidEmbedding]
    says: str  # a phrase the refusal's message holds


def raw_file(header: str | bytes, body: bytes = BODY, *, length: int | None = None) -> bytes:
    """Header text exactly as given (no re-serialisation, so duplicates and odd numbers stay),
    then ``body``; ``length`` overrides the 8-byte header length."""
    head = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(head) if length is None else length) + head + body


def entry(begin: int = 0, end: int = len(BODY), shape: object = None, dtype: str = "F32") -> dict:
    return {
        "dtype": dtype,
        "shape": [2, WIDTH] if shape is None else shape,
        "data_offsets": [begin, end],
    }


def header(tensors: dict[str, object], metadata: object = "absent") -> str:
    obj: dict[str, object] = {}
    if metadata != "absent":
        obj["__metadata__"] = metadata
    obj.update(tensors)
    return json.dumps(obj, separators=(",", ":"))


def _e(**kwargs: object) -> str:
    return json.dumps(entry(**kwargs), separators=(",", ":"))  # type: ignore[arg-type]


M = MalformedSafetensors


def _cases() -> list[Malformed]:
    one = header({"emb_params": entry()})
    cases = [
        # -- duplicate JSON keys: Python keeps the last, other loaders the first ---------------
        Malformed(
            "duplicate-tensor",
            raw_file(f'{{"emb_params":{_e()},"emb_params":{_e(shape=[1, 1536])}}}'),
            M,
            "twice",
        ),
        Malformed(
            "duplicate-metadata",
            raw_file(
                '{"__metadata__":{"a":"1"},"__metadata__":{"lexicon.family":"sd2"},'
                f'"emb_params":{_e()}}}'
            ),
            M,
            "twice",
        ),
        Malformed(
            "duplicate-field-in-entry",
            raw_file(
                '{"emb_params":{"dtype":"F16","dtype":"F32","shape":[2,768],'
                '"data_offsets":[0,6144]}}'
            ),
            M,
            "twice",
        ),
        Malformed(
            "duplicate-metadata-key",
            raw_file(f'{{"__metadata__":{{"k":"a","k":"b"}},"emb_params":{_e()}}}'),
            M,
            "twice",
        ),
        # -- overlapping offsets and holes ------------------------------------------------------
        Malformed(
            "same-bytes-twice",
            raw_file(header({"emb_params": entry(), "shadow": entry()})),
            M,
            "overlap",
        ),
        Malformed(
            "partial-overlap",
            raw_file(
                header(
                    {
                        "a": entry(0, HALF, [1, WIDTH]),
                        "b": entry(HALF - 8, len(BODY) - 8, [1, WIDTH]),
                    }
                )
            ),
            M,
            "overlap",
        ),
        Malformed(
            "sdxl-clip-g-inside-clip-l",
            raw_file(
                header(
                    {
                        "clip_l": entry(0, 3072, [1, 768]),
                        "clip_g": entry(1024, 1024 + 5120, [1, 1280]),
                    }
                ),
                BODY + b"\0" * 1024,
            ),
            M,
            "overlap",
        ),
        Malformed(
            "hole-between-tensors",
            raw_file(
                header({"a": entry(0, 3072, [1, WIDTH]), "b": entry(3072 + 8, 6144 + 8, [1, 768])}),
                BODY + b"\0" * 8,
            ),
            M,
            "no tensor",
        ),
        Malformed(
            "hole-at-start",
            raw_file(header({"emb_params": entry(8, 8 + 6144)}), b"\0" * 8 + BODY),
            M,
            "no tensor",
        ),
        # -- trailing bytes (a second file hidden behind the first) ---------------------------
        Malformed("one-trailing-byte", raw_file(one, BODY + b"x"), M, "trailing"),
        Malformed(
            "appended-zip", raw_file(one, BODY + b"PK\x03\x04" + b"\0" * 4092), M, "trailing"
        ),
        Malformed("no-tensors-but-data", raw_file("{}", BODY), M, "trailing"),
        # -- __metadata__ that is not a string-to-string object --------------------------------
        *(
            Malformed(
                f"metadata-{kind}",
                raw_file(header({"emb_params": entry()}, metadata=value)),
                M,
                "__metadata__",
            )
            for kind, value in [
                ("list", ["lexicon.family", "sd1"]),
                ("string", "sd1"),
                ("null", None),
                ("number", 3),
            ]
        ),
        *(
            Malformed(
                f"metadata-value-{kind}",
                raw_file(header({"emb_params": entry()}, metadata={"k": value})),
                M,
                "metadata values are strings",
            )
            for kind, value in [("int", 1), ("object", {"a": "b"}), ("null", None), ("bool", True)]
        ),
        # -- shapes whose element count overflows ------------------------------------------
        Malformed(
            "shape-wraps-to-zero",
            raw_file(header({"emb_params": entry(0, 0, [2**32, 2**32])}), b""),
            M,
            "64-bit",
        ),
        Malformed(
            "shape-beyond-u64",
            raw_file(header({"emb_params": entry(shape=[2**64 + 2, WIDTH])})),
            M,
            "shape",
        ),
        Malformed(
            "zero-dim-next-to-huge",
            raw_file(header({"emb_params": entry(0, 0, [0, 2**62])}), b""),
            M,
            "64-bit",
        ),
        Malformed(
            "product-overflows-int64",
            raw_file(header({"emb_params": entry(shape=[2**31, 2**31, 2**31])})),
            M,
            "64-bit",
        ),
        Malformed(
            "negative-dim", raw_file(header({"emb_params": entry(shape=[-2, -768])})), M, "shape"
        ),
        Malformed(
            "float-dim", raw_file(header({"emb_params": entry(shape=[2.0, 768])})), M, "shape"
        ),
        Malformed(
            "bool-dim", raw_file(header({"emb_params": entry(shape=[True, 768])})), M, "shape"
        ),
        Malformed(
            "size-mismatch",
            raw_file(header({"emb_params": entry(shape=[3, WIDTH])})),
            M,
            "data_offsets span",
        ),
        Malformed(
            "too-many-dims",
            raw_file(header({"emb_params": entry(shape=[1] * 40 + [2, WIDTH])})),
            M,
            "dimensions",
        ),
        # -- hostile JSON (defect 4): deep nesting, 5,000-digit numbers, NaN ---------------------
        Malformed(
            "deeply-nested",
            raw_file('{"__metadata__":' + "[" * 100_000 + "]" * 100_000 + "}"),
            M,
            "deep",
        ),
        Malformed(
            "deeply-nested-objects",
            raw_file('{"a":' + '{"a":' * 50_000 + "1" + "}" * 50_001),
            M,
            "deep",
        ),
        Malformed(
            "5000-digit-dim",
            raw_file(
                f'{{"emb_params":{{"dtype":"F32","shape":[{"9" * 5000}],"data_offsets":[0,1]}}}}'
            ),
            M,
            "digit",
        ),
        Malformed(
            "5000-digit-offset",
            raw_file(
                '{"emb_params":{"dtype":"F32","shape":[2,768],"data_offsets":[0,'
                + "1" * 5000
                + "]}}"
            ),
            M,
            "digit",
        ),
        Malformed(
            "5000-digit-float",
            raw_file(
                '{"emb_params":{"dtype":"F32","shape":[2,768.'
                + "5" * 5000
                + '],"data_offsets":[0,6144]}}'
            ),
            M,
            "shape",
        ),
        Malformed(
            "nan-token",
            raw_file('{"emb_params":{"dtype":"F32","shape":[NaN,768],"data_offsets":[0,6144]}}'),
            M,
            "NaN",
        ),
        # -- header bytes: padding, NUL, encoding, length ------------------------------------
        Malformed("nul-padding", raw_file(one.encode() + b"\0\0\0"), M, "NUL"),
        Malformed("tab-newline-padding", raw_file(one + "\t\n"), M, "after its JSON"),
        Malformed("escaped-nul-in-name", raw_file(header({"emb\u0000params": entry()})), M, "NUL"),
        Malformed(
            "lone-surrogate-in-name",
            raw_file(one.replace("emb_params", "\\ud800x")),
            M,
            "surrogate",
        ),
        Malformed(
            "latin-1-header", raw_file(one.replace("emb_params", "é").encode("latin-1")), M, "UTF-8"
        ),
        Malformed("two-objects", raw_file(one + one), M, "after its JSON"),
        Malformed("bad-json", raw_file('{"emb_params":' + _e()[:-1]), M, "JSON"),
        Malformed(
            "header-beyond-file", raw_file(one, length=len(one) + len(BODY) + 1), M, "truncated"
        ),
        Malformed("header-too-large", raw_file(one, length=100_000_001), M, "at most"),
        # -- tensor entries ---------------------------------------------------------------
        Malformed(
            "extra-field",
            raw_file(header({"emb_params": {**entry(), "offset": 0}})),
            M,
            "unknown field",
        ),
        Malformed(
            "missing-shape",
            raw_file(header({"emb_params": {"dtype": "F32", "data_offsets": [0, 6144]}})),
            M,
            "no 'shape'",
        ),
        Malformed("entry-is-list", raw_file(header({"emb_params": [0, 6144]})), M, "not a tensor"),
        Malformed(
            "unknown-dtype",
            raw_file(header({"emb_params": entry(dtype="F33")})),
            M,
            "not a safetensors dtype",
        ),
        Malformed(
            "three-offsets",
            raw_file(header({"emb_params": {**entry(), "data_offsets": [0, 3072, 6144]}})),
            M,
            "data_offsets",
        ),
        Malformed(
            "end-before-begin",
            raw_file(header({"emb_params": entry(6144, 0)})),
            M,
            "before it begins",
        ),
        Malformed("points-past-end", raw_file(one, BODY[:-4]), M, "truncated"),
        # A valid file of integers: named as the wrong dtype, not as malformed.
        Malformed(
            "int64-tensor",
            raw_file(header({"emb_params": entry(0, 6144, [1, WIDTH], "I64")}), BODY),
            BadDtype,
            "I64",
        ),
    ]
    return cases


MALFORMED: list[Malformed] = _cases()
