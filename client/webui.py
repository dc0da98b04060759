"""Put embeddings into an A1111 (stable-diffusion-webui) or ComfyUI ``embeddings/`` folder.

Both tools key an embedding by its *file name*: ``DIR/brand.safetensors`` is ``brand`` in an
A1111 prompt and ``embedding:brand`` in ComfyUI. So a pull names the file after the trigger
(without ``<>``) and writes the A1111 layout (``emb_params``, or ``clip_l`` + ``clip_g`` for
SDXL, which both tools load). Layout of the folder after ``hub sync --to-webui DIR``::

    DIR/
    ├── brand.safetensors        <- one file per pin, named by its trigger
    ├── other-style.safetensors
    ├── someone-elses.pt         <- files we did not write are never touched
    └── .lexicon-hub.json        <- {file name: {"sha256", "ref", "digest"}} of what we wrote

The manifest is what makes a sync safe to repeat: a file whose bytes still hash to what we wrote
is ours to replace when its pin moves; any other file of the same name (or the same name with
another extension, which both tools would load as a second embedding of that name) is someone
else's, and is refused, naming both embeddings, unless ``force`` (issue 9.4). Identical content
is never an error. Every check runs before the first write, so a refusal changes nothing.
A1111 and ComfyUI ignore the manifest (they load only embedding extensions).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.core.embedding import Embedding
from client.core.errors import Conflict, LexiconError
from client.core.files import atomic_write
from client.core.formats import read_embedding
from client.core.writers import SELF, embedding_to_bytes, prompt_word

MANIFEST_NAME = ".lexicon-hub.json"
# What A1111 and ComfyUI load from embeddings/ as an embedding named by the stem.
LOADED_SUFFIXES = (".safetensors", ".pt", ".bin")
WRITTEN, UNCHANGED, REPLACED = "written", "unchanged", "replaced"


@dataclass(frozen=True)
class Placement:
    """One embedding bound for the folder: ``label`` names it in messages (``ns/name@3``)."""

    embedding: Embedding
    label: str
    fallback_name: str

    @property
    def file_name(self) -> str:
        return f"{prompt_word(self.embedding.token, self.fallback_name)}.safetensors"

    @property
    def data(self) -> bytes:
        return embedding_to_bytes(self.embedding, "a1111")[SELF]


@dataclass(frozen=True)
class Placed:
    path: Path
    status: str  # WRITTEN, UNCHANGED or REPLACED
    label: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """What we wrote before; a missing or damaged manifest means we own nothing there."""
    try:
        raw = json.loads((directory / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, dict)}


def _describe_file(path: Path, data: bytes, manifest: dict[str, dict[str, Any]]) -> str:
    """Names what a file in the folder holds, for a refusal."""
    try:
        digest = read_embedding(data, filename=path.name).digest
    except LexiconError:
        return f"{path} (not an embedding this client can read)"
    recorded = manifest.get(path.name, {})
    origin = f", once {recorded['ref']}" if recorded.get("ref") else ""
    return f"{path} ({digest}{origin})"


def _same_vectors(data: bytes, name: str, embedding: Embedding) -> bool:
    try:
        return read_embedding(data, filename=name).digest == embedding.digest
    except LexiconError:
        return False


def _status(
    directory: Path, item: Placement, manifest: dict[str, dict[str, Any]], force: bool
) -> str:
    """What writing ``item`` would do; raises Conflict for someone else's file."""
    target = directory / item.file_name
    data = item.data
    for suffix in LOADED_SUFFIXES:
        other = target.with_suffix(suffix)
        try:
            existing = other.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if other == target and existing == data:
            return UNCHANGED
        recorded = manifest.get(other.name, {})
        ours = recorded.get("sha256") == _sha256(existing)
        if force or ours or _same_vectors(existing, other.name, item.embedding):
            continue
        clash = "holds" if other == target else "would load beside it as"
        raise Conflict(
            f"{_describe_file(other, existing, manifest)} {clash} a different embedding named "
            f"{target.stem!r}; not overwriting it with {item.label} ({item.embedding.digest}). "
            "Pass --force to replace it, or move that file away"
        )
    return REPLACED if target.exists() else WRITTEN


def place_all(
    directory: Path | str, items: Sequence[Placement], *, force: bool = False
) -> list[Placed]:
    """Write every item into ``directory`` (checked first, all of them, so a refusal writes
    nothing); returns what happened to each file, in order."""
    directory = Path(directory)
    manifest = _load_manifest(directory)
    recorded = json.dumps(manifest, sort_keys=True)
    names: dict[str, str] = {}
    for item in items:
        earlier = names.setdefault(item.file_name, item.label)
        if earlier != item.label:
            raise Conflict(
                f"{earlier} and {item.label} both have the trigger {Path(item.file_name).stem!r}, "
                "so both would be written to the same file; re-push one with another --trigger"
            )
    statuses = [_status(directory, item, manifest, force) for item in items]
    placed: list[Placed] = []
    for item, status in zip(items, statuses, strict=True):
        target = directory / item.file_name
        data = item.data
        if status != UNCHANGED:
            atomic_write(target, data)
        manifest[target.name] = {
            "sha256": _sha256(data),
            "ref": item.label,
            "digest": item.embedding.digest,
        }
        placed.append(Placed(target, status, item.label))
    if items and json.dumps(manifest, sort_keys=True) != recorded:
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        atomic_write(directory / MANIFEST_NAME, text.encode())
    return placed
