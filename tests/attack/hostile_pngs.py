"""Hostile PNG embeddings: decompression bombs in text and image chunks, chunk floods, and
A1111 embedding payloads that are deep, huge, non-finite or of the wrong width."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator

from client.core.errors import ErrorCode as E
from client.core.png import PNG_SIGNATURE, embedding_text_chunk, minimal_png, png_chunk

from .cases import NOT_SAFETENSORS, FileCase, codes
from .hostile_files import BOMB, INVALID, _vectors


def _a1111_payload(values: object) -> bytes:
    payload = {"string_to_param": {"*": {"TORCHTENSOR": values}}, "name": "pngtok", "step": 1}
    return base64.b64encode(json.dumps(payload).encode())


def png_cases() -> Iterator[FileCase]:
    key = b"sd-ti-embedding\0"
    text_bomb = png_chunk(b"zTXt", key + b"\0" + zlib.compress(b"A" * (40 << 20), 9))
    yield FileCase(
        "png-ztxt-bomb",
        "PNG bomb",
        "ztxt.png",
        minimal_png([text_bomb]),
        BOMB,
        NOT_SAFETENSORS,
        "a zTXt embedding chunk inflating to 40 MiB",
    )
    itxt = png_chunk(b"iTXt", key + b"\1\0\0\0" + zlib.compress(b"A" * (40 << 20), 9))
    yield FileCase(
        "png-itxt-bomb",
        "PNG bomb",
        "itxt.png",
        minimal_png([itxt]),
        BOMB,
        NOT_SAFETENSORS,
        "a compressed iTXt embedding chunk inflating to 40 MiB",
    )
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * (24 << 20), 9))
    pixels = PNG_SIGNATURE + ihdr + idat + png_chunk(b"IEND", b"")
    yield FileCase(
        "png-pixel-bomb",
        "PNG bomb",
        "pixels.png",
        pixels,
        BOMB,
        NOT_SAFETENSORS,
        "100,000 x 100,000 RGB declared, pixel data inflating to 24 MiB, no embedding",
    )
    chunks = [png_chunk(b"tEXt", b"k\0v")] * 20_000
    yield FileCase(
        "png-chunk-flood",
        "PNG bomb",
        "chunks.png",
        minimal_png(chunks),
        BOMB,
        NOT_SAFETENSORS,
        "20,000 text chunks",
    )
    deep = base64.b64encode(b"[" * 100_000 + b"]" * 100_000)
    yield FileCase(
        "png-deep-json",
        "deep JSON",
        "deep.png",
        minimal_png([embedding_text_chunk(deep)]),
        INVALID,
        NOT_SAFETENSORS,
        "the embedding chunk is JSON nested 100,000 deep",
    )
    digits = "9" * 5000
    huge = base64.b64encode(
        ('{"string_to_param": {"*": {"TORCHTENSOR": [[' + digits + "]]}}}").encode()
    )
    yield FileCase(
        "png-5000-digit-number",
        "huge JSON number",
        "digits.png",
        minimal_png([embedding_text_chunk(huge)]),
        codes(E.INVALID_EMBEDDING, E.NON_FINITE),
        NOT_SAFETENSORS,
        "a TORCHTENSOR value with 5,000 digits",
    )
    nan = base64.b64encode(
        b'{"string_to_param": {"*": {"TORCHTENSOR": [[NaN' + b", 0.5" * 767 + b"]]}}}"
    )
    yield FileCase(
        "png-nan",
        "NaN/Inf",
        "nan.png",
        minimal_png([embedding_text_chunk(nan)]),
        codes(E.NON_FINITE),
        NOT_SAFETENSORS,
        "a NaN in the A1111 PNG's vectors",
    )
    narrow = _a1111_payload(_vectors(1, 640).tolist())
    yield FileCase(
        "png-wrong-width",
        "wrong width or count",
        "narrow.png",
        minimal_png([embedding_text_chunk(narrow)]),
        codes(E.BAD_SHAPE),
        NOT_SAFETENSORS,
        "640-wide vectors in a PNG",
    )
