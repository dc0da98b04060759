"""The shared core: embedding formats, the safe unpickler, base-model families, digests and
error codes. The registry and the trainer import from here; nothing here imports torch."""

from .canonical import canonical_bytes, parse_canonical
from .embedding import Embedding
from .errors import ErrorCode, LexiconError
from .families import FAMILIES, Family

__all__ = [
    "FAMILIES",
    "Embedding",
    "ErrorCode",
    "Family",
    "LexiconError",
    "canonical_bytes",
    "parse_canonical",
]
