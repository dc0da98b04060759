"""Hostile publishes: metadata with over-long fields, wrong JSON types, NUL bytes, NaN, deep or
huge JSON; file parts sent as text or twice; names with a trailing newline or NUL; a claimed
``source_sha256`` of someone else's file; previews naming foreign digests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from client.core.canonical import serialize_safetensors
from client.core.errors import ErrorCode as E

from .cases import BAD_FIELD, BAD_FIELD_OR_NAME, Part, RequestCase, codes

BIG = 2**70
HUGE_DIGITS = "9" * 5000
BAD_NAME = codes(E.BAD_NAME)


def good_file(seed: int) -> bytes:
    """Valid canonical safetensors, different for every seed (so no case dedupes another)."""
    vectors = np.random.default_rng(10_000 + seed).standard_normal((1, 768)).astype(np.float32)
    return serialize_safetensors({"emb_params": vectors}, {"lexicon.format": "1"})


def deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def _publish_parts(seed: int, metadata: str | None) -> tuple[Part, ...]:
    parts = [Part("file", good_file(seed), "e.safetensors")]
    if metadata is not None:
        parts.append(Part("metadata", metadata.encode()))
    return tuple(parts)


def publish_cases() -> Iterator[RequestCase]:
    """Hostile publish metadata; ``client`` pushes the same through ``Hub.push(**kwargs)``."""
    path = "/api/v1/embeddings/alice/$NAME/versions"
    table: list[tuple[str, str, dict[str, Any] | str, frozenset[str]]] = [
        ("long-description", "over-long field", {"description": "d" * 100_000}, BAD_FIELD),
        ("long-trigger", "over-long field", {"trigger": "t" * 10_000}, BAD_FIELD),
        ("long-license", "over-long field", {"license": "l" * 10_000}, BAD_FIELD),
        (
            "long-base-model",
            "over-long field",
            {"base_model": "b" * 10_000},
            BAD_FIELD | codes(E.INCOMPATIBLE),
        ),
        ("long-notes", "over-long field", {"notes": "n" * 1_000_000}, BAD_FIELD),
        ("long-tag", "over-long field", {"tags": ["t" * 1000]}, BAD_FIELD_OR_NAME),
        ("many-tags", "over-long field", {"tags": [f"t{i}" for i in range(10_000)]}, BAD_FIELD),
        ("trigger-int", "wrong JSON type", {"trigger": 5}, BAD_FIELD),
        ("description-list", "wrong JSON type", {"description": ["a", "b"]}, BAD_FIELD),
        ("tags-int", "wrong JSON type", {"tags": 5}, BAD_FIELD),
        ("tags-string", "wrong JSON type", {"tags": "abc"}, BAD_FIELD),
        ("tags-of-ints", "wrong JSON type", {"tags": [1, 2]}, BAD_FIELD_OR_NAME),
        ("visibility-list", "wrong JSON type", {"visibility": ["private"]}, BAD_FIELD),
        ("type-object", "wrong JSON type", {"type": {"a": 1}}, BAD_FIELD),
        ("notes-number", "wrong JSON type", {"notes": 3.5}, BAD_FIELD),
        ("license-bool", "wrong JSON type", {"license": True}, BAD_FIELD),
        ("training-list", "wrong JSON type", {"training": [1, 2]}, BAD_FIELD),
        ("source-sha256-int", "wrong JSON type", {"source_sha256": 5}, BAD_FIELD),
        ("base-model-int", "wrong JSON type", {"base_model": 7}, BAD_FIELD),
        ("nul-description", "NUL byte", {"description": "a\x00b"}, BAD_FIELD),
        ("nul-trigger", "NUL byte", {"trigger": "<a\x00>"}, BAD_FIELD),
        ("nul-license", "NUL byte", {"license": "MIT\x00"}, BAD_FIELD),
        ("nul-notes", "NUL byte", {"notes": "\x00"}, BAD_FIELD),
        ("nul-training-key", "NUL byte", {"training": {"a\x00": 1}}, BAD_FIELD),
        ("nan-training", "NaN in JSON", {"training": {"loss": float("nan")}}, BAD_FIELD),
        ("inf-training", "NaN in JSON", {"training": {"loss": float("inf")}}, BAD_FIELD),
        ("deep-training", "deep JSON", {"training": deep(100)}, BAD_FIELD),
        ("big-int-training", ">64-bit int", {"training": {"steps": BIG}}, BAD_FIELD),
        (
            "gc-breaking-previews",
            "previews naming foreign digests",
            {"training": {"previews": ["x", 1]}},
            BAD_FIELD,
        ),
    ]
    for i, (name, kind, meta, expected) in enumerate(table):
        yield RequestCase(
            f"publish-{name}",
            kind,
            "POST",
            path,
            expected,
            f"publish metadata {json.dumps(meta)[:80]}",
            parts=_publish_parts(i, json.dumps(meta)),
            # A wrong Python type is the caller's TypeError, not something the library sends.
            client=None
            if kind == "wrong JSON type" and name.startswith("tags")
            else ("push", meta),
        )
    raw_only = [
        ("raw-nan", "NaN in JSON", '{"description": "x", "training": {"loss": NaN}}'),
        ("raw-neg-infinity", "NaN in JSON", '{"training": {"loss": -Infinity}}'),
        ("raw-deep-100k", "deep JSON", '{"training": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("raw-5000-digits", "huge JSON number", '{"training": {"steps": ' + HUGE_DIGITS + "}}"),
        ("raw-huge-metadata", "huge JSON", json.dumps({"notes": "n" * (3 << 20)})),
        ("raw-metadata-not-object", "wrong JSON type", "[1, 2, 3]"),
        ("raw-metadata-not-utf8", "wrong JSON type", '{"description": "\udcff"}'),
    ]
    for i, (name, kind, meta) in enumerate(raw_only, start=len(table)):
        data = meta.encode("utf-8", "surrogateescape")
        yield RequestCase(
            f"publish-{name}",
            kind,
            "POST",
            path,
            BAD_FIELD | codes(E.TOO_LARGE),
            f"publish with metadata {meta[:60]!r}",
            parts=(_publish_parts(i, None)[0], Part("metadata", data)),
        )
    yield RequestCase(
        "publish-file-as-text",
        "wrong JSON type",
        "POST",
        path,
        BAD_FIELD,
        "the 'file' part sent as a text field",
        parts=(Part("file", good_file(90)),),
    )
    yield RequestCase(
        "publish-file-twice",
        "wrong JSON type",
        "POST",
        path,
        BAD_FIELD,
        "two 'file' parts",
        parts=(
            Part("file", good_file(91), "a.safetensors"),
            Part("file", good_file(92), "b.safetensors"),
        ),
    )
    yield RequestCase(
        "publish-digest-of-private-blob",
        "previews naming foreign digests",
        "POST",
        path,
        codes(E.NOT_FOUND),
        "publish by the digest of someone's private embedding",
        parts=(Part("digest", b"$VICTIM_DIGEST"),),
    )
    # Hostile parts that may be stripped instead of refused: then they must grant nothing.
    for name, meta, check in (
        ("squat-source-sha256", {"source_sha256": "$VICTIM_SHA256"}, "lookup_not_listed"),
        (
            "preview-foreign-digest",
            {"training": {"previews": [{"digest": "$VICTIM_DIGEST"}]}},
            "preview_not_served",
        ),
        (
            "preview-foreign-digest-string",
            {"training": {"previews": ["$VICTIM_DIGEST"]}},
            "preview_not_served",
        ),
    ):
        yield RequestCase(
            f"publish-{name}",
            "claimed hash / foreign digest",
            "POST",
            path,
            BAD_FIELD,
            f"publish metadata {json.dumps(meta)}",
            parts=_publish_parts(95 + len(name), json.dumps(meta)),
            client=("push", meta),
            leak_check=check,
        )
    for name, ns, ename in (
        ("name-trailing-newline", "alice", "nl%0A"),
        ("namespace-trailing-newline", "alice%0A", "x"),
        ("name-nul", "alice", "a%00b"),
        ("name-unicode-digit", "alice", "x%C2%B2"),
    ):
        yield RequestCase(
            f"publish-{name}",
            "name with trailing newline / NUL",
            "POST",
            f"/api/v1/embeddings/{ns}/{ename}/versions",
            BAD_NAME | codes(E.NOT_FOUND, E.BAD_REQUEST),
            f"publish to {ns}/{ename}",
            parts=_publish_parts(120 + len(name), None),
        )
