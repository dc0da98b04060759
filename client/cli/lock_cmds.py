"""``hub lock`` and ``hub sync``: pin the exact versions a project uses in ``lexicon.lock`` and
pull exactly those bytes (verified, from the cache when offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .errors import handles_errors
from .hub_cmds import ComfyOpt, ForceOpt, WebuiOpt, embeddings_folder, open_hub

LockOpt = Annotated[Path, typer.Option("--file", "-f", help="The lockfile.", show_default=True)]


@app.command()
@handles_errors
def lock(
    refs: Annotated[list[str] | None, typer.Argument(help="References to pin.")] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Re-resolve tags (all pins, or the REFs given).")
    ] = False,
    file: LockOpt = Path("lexicon.lock"),
) -> None:
    """Pin REF... in the lockfile (ref -> version, digest, family). Existing pins are kept
    unless --update; the pinned bytes are fetched into the cache so `hub sync` works offline."""
    from ..core.errors import BadRequest
    from ..lockfile import Lockfile
    from ..refs import parse_ref

    lockfile = Lockfile.load(file)
    wanted = [str(parse_ref(r)) for r in refs or []]
    if not wanted:
        if not update:
            raise BadRequest("name the references to pin (hub lock ns/name:tag …), or --update")
        wanted = list(lockfile.entries())
    with open_hub() as hub:
        for ref in wanted:
            old = lockfile.get(ref)
            if old is not None and not update:
                print(f"{ref} kept @{old.version} {old.digest}")
                continue
            version = hub.version(ref)
            hub.fetch(f"{version.repo}@{version.digest}")
            entry = lockfile.pin(ref, version.raw)
            change = "" if old is None or old.digest == entry.digest else f" (was @{old.version})"
            print(f"{ref} -> @{entry.version} {entry.digest}{change}")
    lockfile.save()


@app.command()
@handles_errors
def sync(
    file: LockOpt = Path("lexicon.lock"),
    to_webui: WebuiOpt = None,
    to_comfy: ComfyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Pull exactly what the lockfile pins, verified against its digests; works offline
    (LEXICON_OFFLINE=1) once the bytes are cached. Prints REF DIGEST PATH per pin.

    With --to-webui DIR (A1111) or --to-comfy DIR (ComfyUI) every pin becomes
    DIR/<trigger>.safetensors, so a team's embeddings are identical on every machine. Repeating
    it rewrites nothing (each line ends in written, replaced or unchanged); files it did not
    write are never overwritten unless --force, and a refusal writes nothing at all."""
    from ..core.errors import BadRequest
    from ..lockfile import Lockfile

    if not Path(file).exists():
        raise BadRequest(f"no lockfile at {file}; create it with `hub lock REF…`")
    entries = Lockfile.load(file).entries()
    folder = embeddings_folder(to_webui, to_comfy)
    with open_hub() as hub:
        if folder is None:
            for ref, entry in entries.items():
                print(f"{ref} {entry.digest} {hub.pull(entry.ref)}")
            return
        placed = hub.to_folder([entry.ref for entry in entries.values()], folder, force=force)
    for (ref, entry), done in zip(entries.items(), placed, strict=True):
        print(f"{ref} {entry.digest} {done.path} {done.status}")
