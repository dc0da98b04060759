"""The shared core: embedding formats, the safe unpickler, base-model families, digests and
error codes. The registry and the trainer import from here; nothing here imports torch.

The names below load on first use (PEP 562), so that importing one light module such as
``client.core.errors`` does not pull numpy in: ``hub --help`` stays fast (issue 12)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .canonical import canonical_bytes, parse_canonical
    from .embedding import Embedding
    from .errors import ErrorCode, LexiconError
    from .families import FAMILIES, Family

_HOMES = {
    "FAMILIES": "families",
    "Embedding": "embedding",
    "ErrorCode": "errors",
    "Family": "families",
    "LexiconError": "errors",
    "canonical_bytes": "canonical",
    "parse_canonical": "canonical",
}
__all__ = [
    "FAMILIES",
    "Embedding",
    "ErrorCode",
    "Family",
    "LexiconError",
    "canonical_bytes",
    "parse_canonical",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
