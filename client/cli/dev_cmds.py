"""``hub dev …``: developer helpers. ``hub dev tiny-pipeline OUT --family sd1`` writes a tiny
diffusers pipeline (real classes, random weights, real text-encoder widths) to try embeddings
against without downloading a model. torch/diffusers are imported inside the command."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

import typer

from .app import app

dev_app = typer.Typer(
    name="dev",
    help="Developer helpers (need the diffusers extra: torch, diffusers, transformers).",
    no_args_is_help=True,
)
app.add_typer(dev_app, name="dev")


class FamilyName(StrEnum):
    sd1 = "sd1"
    sd2 = "sd2"
    sdxl = "sdxl"


def _prepare_output(out: Path) -> None:
    """Both commands write a pipeline folder: refuse a non-empty one (exit 2) and a missing
    diffusers extra (exit 1) before any work, and never reach for the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:  # a name the file system refuses (too long, ...) fails already at exists()
        if out.exists() and not out.is_dir():
            typer.echo(f"error: {out} is a file; pick a new folder", err=True)
            raise typer.Exit(2)
        if out.exists() and any(out.iterdir()):
            typer.echo(f"error: {out} exists and is not empty; pick a new folder", err=True)
            raise typer.Exit(2)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        typer.echo(f"error: cannot create {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        typer.echo(
            f"error: {exc}; install the diffusers extra: pip install 'lexicon-hub[diffusers]'",
            err=True,
        )
        raise typer.Exit(1) from None


@dev_app.command("tiny-pipeline")
def tiny_pipeline_cmd(
    out: Path = typer.Argument(..., help="Folder to write the pipeline into (save_pretrained)."),
    family: FamilyName = typer.Option(FamilyName.sd1, "--family", help="Base-model family."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights."),
) -> None:
    """Write a tiny random-weight pipeline that ``from_pretrained(OUT)`` loads offline."""
    _prepare_output(out)
    from client.testing import pipeline_class, save_tiny_pipeline

    save_tiny_pipeline(family.value, out, seed=seed)
    cls = pipeline_class(family.value).__name__
    typer.echo(f"wrote a tiny {family.value} pipeline to {out} (load: {cls}.from_pretrained)")


@dev_app.command("toy-world")
def toy_world_cmd(
    out: Path = typer.Argument(..., help="Folder to write the toy pipeline into."),
    rebuild: bool = typer.Option(
        False,
        "--rebuild",
        help="Train it from scratch (about 15 min on CPU) instead of copying "
        "the committed weights.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of a --rebuild."),
) -> None:
    """Write the toy world's trained pipeline (coloured shapes; "a red circle" draws one) that
    ``StableDiffusionPipeline.from_pretrained(OUT)`` loads offline; its embeddings are sd1."""
    _prepare_output(out)
    from client.toy_world.build import BuildConfig, build_toy_pipeline
    from client.toy_world.pipeline import load_toy_pipeline, save_toy_pipeline

    if rebuild:
        pipe = build_toy_pipeline(BuildConfig(seed=seed), log=lambda m: typer.echo(m, err=True))
    else:
        try:
            pipe = load_toy_pipeline()
        except FileNotFoundError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    save_toy_pipeline(pipe, out, half=False)
    typer.echo(
        f"wrote the toy-world pipeline to {out} (load: StableDiffusionPipeline.from_pretrained; "
        'try the prompt "a red circle" at 32 px)'
    )
