"""The A1111 embedding PNG: an image whose ``sd-ti-embedding`` text chunk holds base64 of the JSON
that A1111's ``embedding_to_b64`` writes (tensors as ``{"TORCHTENSOR": [[...], ...]}``).

We parse the PNG chunks ourselves (struct + zlib, no pillow) and decode the JSON with a hook that
turns tensors into float32 numpy arrays: A1111 writes float32 values as decimal text, so float32
gives back exactly the vectors it saved. A1111 can also hide the data in the image's pixels; we
do not read that form and say so.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidEmbedding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_KEY = "sd-ti-embedding"
MAX_TEXT_BYTES = 16 * 1024 * 1024  # decompressed text chunk (75 x 2048 floats as text is ~3 MB)
MAX_CHUNKS = 10_000


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE


def _inflate(data: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error as exc:
        raise InvalidEmbedding(f"the PNG's {what} chunk does not decompress ({exc})") from None
    if len(out) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise InvalidEmbedding(f"the PNG's {what} chunk unpacks to too many bytes (a zip bomb?)")
    return out


def png_text_chunks(data: bytes) -> dict[str, bytes]:
    """Keyword -> raw text of every tEXt/zTXt/iTXt chunk (iTXt text is UTF-8 bytes)."""
    if not is_png(data):
        raise InvalidEmbedding("not a PNG file (bad signature)")
    texts: dict[str, bytes] = {}
    pos = len(PNG_SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            raise InvalidEmbedding("the PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise InvalidEmbedding(f"the PNG is truncated inside its {ctype!r} chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(ctype + body) != crc:
            raise InvalidEmbedding(f"the PNG's {ctype.decode('latin-1')} chunk is corrupt (CRC)")
        pos += 12 + length
        if ctype == b"IEND":
            return texts
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key, sep, rest = body.partition(b"\0")
            if not sep:
                continue
            keyword = key.decode("latin-1")
            if ctype == b"tEXt":
                texts[keyword] = rest
            elif ctype == b"zTXt":
                texts[keyword] = _inflate(rest[1:], "zTXt")
            else:
                if len(rest) < 2:
                    continue
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                texts[keyword] = _inflate(text, "iTXt") if compressed else text
    raise InvalidEmbedding(f"the PNG holds more than {MAX_CHUNKS} chunks")


def _tensor_hook(obj: dict[str, Any]) -> Any:
    if "TORCHTENSOR" in obj:
        try:
            array = np.array(obj["TORCHTENSOR"], dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidEmbedding("a TORCHTENSOR in the PNG is not a numeric array") from None
        return array
    return obj


def read_png_embedding_data(data: bytes) -> dict[str, Any]:
    """The dict A1111 stored in the PNG (``string_to_param``, ``name``, ``step``...)."""
    texts = png_text_chunks(data)
    raw = texts.get(TEXT_KEY)
    if raw is None:
        raise InvalidEmbedding(
            "the PNG has no 'sd-ti-embedding' text chunk; A1111 may have hidden the vectors in "
            "the image pixels, which we do not read: load it in A1111 and save it as "
            ".safetensors, or find the .pt/.safetensors release"
        )
    try:
        decoded = base64.b64decode(raw.strip(), validate=False)
        payload = json.loads(decoded, object_hook=_tensor_hook)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidEmbedding(
            f"the PNG's sd-ti-embedding chunk is not base64 JSON ({str(exc)[:80]})"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidEmbedding("the PNG's sd-ti-embedding chunk holds no dict")
    return payload


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    """One PNG chunk (length, type, body, CRC); used to build embedding PNGs."""
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def minimal_png(text_chunks: Sequence[bytes] = ()) -> bytes:
    """A 1x1 grey PNG carrying ``text_chunks`` (built with :func:`png_chunk`)."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\0\x80"))
    return PNG_SIGNATURE + ihdr + b"".join(text_chunks) + idat + png_chunk(b"IEND", b"")


def embedding_text_chunk(payload_b64: bytes, kind: bytes = b"tEXt") -> bytes:
    """A text chunk keyed ``sd-ti-embedding`` (tEXt, zTXt or iTXt) holding ``payload_b64``."""
    key = TEXT_KEY.encode() + b"\0"
    if kind == b"tEXt":
        return png_chunk(kind, key + payload_b64)
    if kind == b"zTXt":
        return png_chunk(kind, key + b"\0" + zlib.compress(payload_b64))
    return png_chunk(kind, key + b"\1\0" + b"\0" + b"\0" + zlib.compress(payload_b64))
