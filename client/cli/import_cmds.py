"""``hub import hf REPO_ID NS/NAME``: publish an sd-concepts-library-style repository from the
Hugging Face Hub (or the local HF cache with HF_HUB_OFFLINE=1) to the registry."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .errors import handles_errors
from .hub_cmds import open_hub

import_app = typer.Typer(help="Import embeddings from elsewhere.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("hf")
@handles_errors
def import_hf(
    repo_id: Annotated[str, typer.Argument(help="e.g. sd-concepts-library/cat-toy.")],
    ref: Annotated[str, typer.Argument(help="NS/NAME to publish as.")],
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit.")] = None,
    private: Annotated[bool, typer.Option("--private")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Content tag (repeat).")] = None,
) -> None:
    """Read learned_embeds.bin, token_identifier.txt and type_of_concept.txt and push them."""
    from ..hf_import import fetch_concept

    concept = fetch_concept(repo_id, revision=revision)
    with open_hub() as hub:
        info = hub.push(
            concept.embedding,
            ref,
            trigger=concept.trigger,
            type=concept.type,
            tags=tag or None,
            description=f"Imported from Hugging Face: {repo_id}",
            private=True if private else None,
            notes=f"huggingface.co/{repo_id}" + (f"@{revision}" if revision else ""),
        )
    note = "" if info.uploaded else " (already on the registry, nothing uploaded)"
    print(f"{info.ref} {info.digest}{note}")
