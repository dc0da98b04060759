"""Where an embedding to inject comes from: an ``Embedding``, a local file in any supported
format, or a registry reference (``ns/name@3``) pulled through a hub client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from client.core.embedding import Embedding
from client.core.errors import BadName, NotFound
from client.core.formats import read_embedding
from client.refs import Ref

FILE_SUFFIXES = (".pt", ".bin", ".safetensors", ".ckpt", ".png")


class Puller(Protocol):
    """What injection needs of a registry client: fetch a reference to a local file."""

    def pull(self, ref: str) -> Path: ...


Item = Embedding | str | os.PathLike[str]


def resolve_item(item: Item, hub: Puller | None) -> tuple[Embedding, str, str | None]:
    """The embedding, a label for messages, and a name to derive a token from."""
    if isinstance(item, Embedding):
        return item, f"embedding {item.token}" if item.token else "the embedding", None
    if isinstance(item, os.PathLike):
        path = Path(item)
        if not path.is_file():
            raise NotFound(f"no embedding file at {path}")
        return read_embedding(path), path.name, path.stem
    if not isinstance(item, str):
        raise TypeError(f"expected an Embedding, a path or a reference, got {type(item).__name__}")
    path = Path(item).expanduser()
    if path.is_file():
        return read_embedding(path), path.name, path.stem
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
