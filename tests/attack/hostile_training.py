"""Hostile training requests: malformed job parameters, bombs sent as training images, and
worker-protocol calls with bad leases, steps and metadata. Each is refused with a 4xx naming the
cause; nothing is stored."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator

from client.core.errors import ErrorCode as E
from client.core.png import PNG_SIGNATURE, png_chunk

from .cases import BAD_FIELD, BAD_FIELD_OR_NAME, Part, RequestCase, codes
from .hostile_requests import BIG, HUGE_DIGITS, _json, _raw


def _pixel_bomb() -> bytes:
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * (8 << 20), 9))
    return PNG_SIGNATURE + ihdr + idat + png_chunk(b"IEND", b"")


def training_cases() -> Iterator[RequestCase]:
    path = "/api/v1/training-jobs"
    base = {"target": "alice/$NAME", "family": "sd1", "trigger": "<t>", "steps": 10}
    bomb = _pixel_bomb()

    def submit(
        name: str, kind: str, params: str, expected: frozenset[str], images: tuple[bytes, ...] = ()
    ) -> RequestCase:
        parts = (Part("params", params.encode()),)
        parts += tuple(Part("images", img, f"{i}.png") for i, img in enumerate(images))
        return RequestCase(
            f"train-{name}",
            kind,
            "POST",
            path,
            expected,
            f"submit a job: {params[:60]}",
            parts=parts,
        )

    yield submit(
        "params-deep",
        "deep JSON",
        '{"target": "alice/x", "k": ' + "[" * 100_000 + "]" * 100_000 + "}",
        BAD_FIELD,
    )
    yield submit(
        "params-nan", "NaN in JSON", json.dumps({**base, "learning_rate": float("nan")}), BAD_FIELD
    )
    yield submit(  # 1 would divide by zero in the bias-corrected average
        "params-ema-decay-one", "out of range", json.dumps({**base, "ema_decay": 1}), BAD_FIELD
    )
    yield submit(
        "params-ema-decay-text", "wrong type", json.dumps({**base, "ema_decay": "0.9"}), BAD_FIELD
    )
    yield submit(
        "params-5000-digits",
        "huge JSON number",
        json.dumps(base).replace('"steps": 10', '"steps": ' + HUGE_DIGITS),
        BAD_FIELD,
    )
    yield submit(
        "params-steps-big-int", ">64-bit int", json.dumps({**base, "steps": BIG}), BAD_FIELD
    )
    yield submit(
        "params-target-newline",
        "name with trailing newline",
        json.dumps({**base, "target": "alice/x\n"}),
        BAD_FIELD_OR_NAME,
    )
    yield submit(
        "params-trigger-long",
        "over-long field",
        json.dumps({**base, "trigger": "t" * 100_000}),
        BAD_FIELD,
    )
    yield submit(
        "image-pixel-bomb",
        "PNG bomb",
        json.dumps(base),
        codes(E.TOO_LARGE, E.BAD_REQUEST, E.UNSUPPORTED_FORMAT),
        images=(bomb,) * 2,
    )
    yield RequestCase(
        "train-image-foreign-digest",
        "previews naming foreign digests",
        "GET",
        f"{path}/$JOB/images/$VICTIM_DIGEST",
        codes(E.NOT_FOUND),
        "alice's own job asked for the digest of bob's private embedding",
    )
    yield _json(
        "worker-memory-big-int",
        ">64-bit int",
        "POST",
        "/api/v1/workers/register",
        {"families": ["sd1"], "memory_bytes": BIG},
        BAD_FIELD,
        as_user="worker",
    )
    yield _json(
        "worker-families-long",
        "over-long field",
        "POST",
        "/api/v1/workers/register",
        {"families": ["sd1"], "base_models": ["b" * 100_000]},
        BAD_FIELD,
        as_user="worker",
    )
    yield _raw(
        "worker-nan",
        "NaN in JSON",
        "POST",
        "/api/v1/workers/register",
        '{"families": ["sd1"], "memory_bytes": NaN}',
        BAD_FIELD,
        as_user="worker",
    )
    yield _json(
        "heartbeat-big-step",
        ">64-bit int",
        "POST",
        f"{path}/$JOB/heartbeat",
        {"lease": "not-a-lease", "step": BIG},
        BAD_FIELD | codes(E.CONFLICT),
        as_user="worker",
    )
