"""``hub inspect`` and ``hub convert``: read any community embedding format locally (no network,
no torch, no pickled code run) and show or rewrite it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.errors import LexiconError
from .app import app
from .errors import USER_ERROR, failure_exit_code, handles_errors

if TYPE_CHECKING:  # numpy and the readers load when a command runs, not for `hub --help`
    from ..core.embedding import Embedding


def describe(embedding: Embedding) -> dict[str, Any]:
    """What ``hub inspect`` shows, as a JSON-ready dict."""
    return {
        "format": embedding.source_format,
        "family": embedding.family.name,
        "vectors": embedding.num_vectors,
        "encoders": embedding.encoders,
        "dtype": embedding.dtype,
        "token": embedding.token,
        "digest": embedding.digest,
        "info": dict(embedding.info),
    }


def _groups(files: list[Path]) -> list[list[Path]]:
    """Two plain files may be the halves of a diffusers SDXL pair; anything else is one each."""
    from ..core.formats import NotAPair, read_embedding

    if len(files) == 2 and all(f.is_file() for f in files):
        try:
            read_embedding(files)
            return [files]
        except NotAPair:
            pass
        except LexiconError:
            pass
    return [[f] for f in files]


def _print_plain(label: str, info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=label, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in info.items():
        if key == "encoders":
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key == "info":
            if not value:
                continue
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif value is None:
            continue
        table.add_row(key, str(value))
    Console(width=200).print(table)


@app.command()
@handles_errors
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Embedding file(s), or a folder.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per input.")
    ] = False,
) -> None:
    """Show an embedding's format, family, vectors, encoders, dtype, token and digest."""
    from ..core.formats import read_embedding

    failed = False
    for group in _groups(files):
        label = " + ".join(str(p) for p in group)
        try:
            embedding = read_embedding(group if len(group) > 1 else group[0])
        except Exception as exc:  # noqa: BLE001 - every failure is one line naming the file
            failure_exit_code(exc, label)
            failed = True
            continue
        info = {"file": label, **describe(embedding)}
        if as_json:
            print(json.dumps(info, sort_keys=True))
        else:
            _print_plain(label, {k: v for k, v in info.items() if k != "file"})
    if failed:
        raise typer.Exit(USER_ERROR)


@app.command()
@handles_errors
def convert(
    source: Annotated[Path, typer.Argument(help="Embedding file or folder (SDXL pair).")],
    out: Annotated[Path, typer.Argument(help="Output file (a folder for diffusers SDXL).")],
    to: Annotated[str, typer.Option("--to", help="canonical, a1111, diffusers or kohya.")],
    token: Annotated[str | None, typer.Option("--token", help="Token for diffusers files.")] = None,
) -> None:
    """Convert an embedding to another format; prints the path(s) written."""
    from ..core.formats import read_embedding
    from ..core.writers import check_format, write_embedding

    try:
        check_format(to)
        embedding = read_embedding(source)
    except Exception as exc:  # noqa: BLE001 - every failure is one line naming the file
        raise typer.Exit(failure_exit_code(exc, str(source))) from None
    try:
        written = write_embedding(embedding, out, to, token=token)
    except OSError as exc:
        print(f"error: {out}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        raise typer.Exit(USER_ERROR) from None
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(failure_exit_code(exc, str(out))) from None
    for path in written:
        print(path)
