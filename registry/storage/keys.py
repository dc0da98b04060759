"""The one place that turns a digest into a storage key. Every backend (local directory, S3)
uses it, so the layout below is the layout everywhere."""

from __future__ import annotations

import re

from client.core.errors import BadRequest

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
KEY_PREFIX = "blobs/sha256/"


def parse_digest(digest: str) -> str:
    """The hex part of ``sha256:<64 lowercase hex>``; anything else is the caller's mistake."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise BadRequest(
            f"Malformed digest {digest!r}: expected 'sha256:' followed by 64 lowercase hex digits."
        )
    return digest.removeprefix("sha256:")


# Bucket / directory layout (content-addressed, immutable: the bytes cannot change without the
# key changing, so a key is written once and never overwritten):
#
#   <root or bucket>/
#     blobs/
#       sha256/
#         ab/                      <- first two hex digits: keeps directories small
#           abcdef0123...<64 hex>  <- the blob's bytes, exactly as uploaded
#
# Local temp files live beside their target as `.tmp-<random>` and are never listed as blobs.
def blob_key(digest: str) -> str:
    """``sha256:abcdef…`` -> ``blobs/sha256/ab/abcdef…``; raises BadRequest on a bad digest."""
    hexd = parse_digest(digest)
    return f"{KEY_PREFIX}{hexd[:2]}/{hexd}"


def digest_from_key(key: str) -> str | None:
    """Inverse of :func:`blob_key` for listings; None for anything that is not a blob key."""
    if not key.startswith(KEY_PREFIX):
        return None
    rest = key[len(KEY_PREFIX) :]
    fan, _, hexd = rest.partition("/")
    digest = f"sha256:{hexd}"
    if not DIGEST_RE.fullmatch(digest) or fan != hexd[:2]:
        return None
    return digest
