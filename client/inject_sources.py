"""Where an embedding to inject comes from: an ``Embedding``, a local file in any supported
format, a folder or the two files of a diffusers SDXL embedding (``hub pull --format diffusers``
writes that folder), or a registry reference (``ns/name@3``) pulled through a hub client."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from client.core.embedding import Embedding
from client.core.errors import BadName, LexiconError, NotFound
from client.core.formats import NotAPair, read_embedding
from client.refs import Ref

FILE_SUFFIXES = (".pt", ".bin", ".safetensors", ".ckpt", ".png")


class Puller(Protocol):
    """What injection needs of a registry client: fetch a reference to a local file."""

    def pull(self, ref: str) -> Path: ...


PathItem = str | os.PathLike[str]
# A pair is a tuple/list of the two files of a diffusers SDXL embedding, in either order.
Item = Embedding | PathItem | Sequence[PathItem]


def is_sdxl_pair(items: Sequence[object]) -> bool:
    """Whether ``items`` are the two files of one diffusers SDXL embedding (768 + 1280 wide,
    either order), so that a list of them means one embedding, not two."""
    if len(items) != 2 or not all(isinstance(i, str | os.PathLike) for i in items):
        return False
    paths = [Path(i).expanduser() for i in items]  # type: ignore[arg-type]
    if not all(p.is_file() for p in paths):
        return False
    try:
        read_embedding(paths)
    except NotAPair:
        return False
    except LexiconError:
        return True  # a pair with a defect: reading it as one names the defect
    return True


def _local(path: Path) -> tuple[Embedding, str, str | None]:
    """A file, or a folder holding one embedding file or a diffusers SDXL pair."""
    if path.is_dir():
        return read_embedding(path), f"{path.name}/", path.name
    return read_embedding(path), path.name, path.stem


def resolve_item(item: Item, hub: Puller | None) -> tuple[Embedding, str, str | None]:
    """The embedding, a label for messages, and a name to derive a token from."""
    if isinstance(item, Embedding):
        return item, f"embedding {item.token}" if item.token else "the embedding", None
    if isinstance(item, list | tuple):
        paths = [Path(p).expanduser() for p in item]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise NotFound(f"no embedding file at {missing[0]}")
        label = " + ".join(p.name for p in paths)
        return read_embedding(paths), label, paths[0].parent.name or None
    if isinstance(item, os.PathLike):
        path = Path(item)
        if not path.exists():
            raise NotFound(f"no embedding file or folder at {path}")
        return _local(path)
    if not isinstance(item, str):
        raise TypeError(f"expected an Embedding, a path or a reference, got {type(item).__name__}")
    path = Path(item).expanduser()
    if path.exists():
        return _local(path)
    if item.lower().endswith(FILE_SUFFIXES) or item.startswith((".", "/", "~")):
        raise NotFound(f"no embedding file at {item}")
    try:
        name = Ref.parse(item).name
    except BadName as exc:
        raise NotFound(f"{item!r} is not a file here, nor a registry reference: {exc}") from None
    local = Path(_hub(hub).pull(item))
    return read_embedding(local), item, name


def _hub(hub: Puller | None) -> Puller:
    if hub is not None:
        return hub
    from client.hub import Hub  # the registry client; imported only when a reference is used

    return Hub()
