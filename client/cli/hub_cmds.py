"""Registry commands: login, whoami, push, pull, search, info, versions, tag, untag, yank,
star, lookup. Heavy modules are imported inside the commands so ``hub --help`` stays fast;
errors go through :func:`client.cli.errors.handles_errors` (one line, one exit code)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import app
from .errors import handles_errors

if TYPE_CHECKING:
    from ..hub import Hub

FORMAT_HELP = "canonical, a1111, diffusers or kohya."
TYPES = ("style", "object", "subject", "negative")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def open_hub(*, progress: bool = True) -> Iterator[Hub]:
    """A Hub from the environment, with rich transfer bars on stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from ..hub import Hub

    console = Console(stderr=True)
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=console,
        transient=True,
        disable=not (progress and console.is_terminal),
    )
    tasks: dict[str, Any] = {}

    def report(what: str, done: int, total: int | None) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(what, total=total)
        bars.update(tasks[what], completed=done, total=total)

    with bars, Hub(progress=report) as hub:
        yield hub


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=160).print(table)


@app.command()
@handles_errors
def login(
    url: Annotated[str | None, typer.Option("--url", help="Registry URL.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="API token (prompted).")] = None,
) -> None:
    """Check an API token against the registry and save it for that URL."""
    from ..hub import login as do_login

    if not token:
        token = typer.prompt("API token", hide_input=True)
    me = do_login(url, token)
    from ..config import ClientConfig

    print(f"logged in to {ClientConfig.resolve(url=url).url} as {me.username}")


@app.command()
@handles_errors
def logout() -> None:
    """Forget the saved token (LEXICON_TOKEN, if set, still applies)."""
    from ..config import credentials_path, delete_credentials

    forgot = delete_credentials()
    print(f"removed {credentials_path()}" if forgot else "no saved credentials")


@app.command()
@handles_errors
def whoami(as_json: JsonOpt = False) -> None:
    """Show who the configured token belongs to."""
    with open_hub() as hub:
        me = hub.whoami()
        if as_json:
            emit_json({"url": hub.url, **me.__dict__})
        else:
            orgs = ", ".join(f"{o} ({r})" for o, r in me.orgs.items())
            print(f"{me.username} on {hub.url}" + (f"; orgs: {orgs}" if orgs else ""))


@app.command()
@handles_errors
def push(
    files: Annotated[list[Path], typer.Argument(help="Embedding file, or an SDXL pair.")],
    ref: Annotated[str, typer.Argument(help="NS/NAME (or NS/NAME:TAG).")],
    trigger: Annotated[str | None, typer.Option(help="Prompt token, e.g. <brand>.")] = None,
    base_model: Annotated[str | None, typer.Option(help="Base model id.")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="style, object, subject or negative.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Content tag (repeat).")] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Visible to you/your org only.")
    ] = False,
    license_: Annotated[str | None, typer.Option("--license", help="License id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert FILE to canonical form and publish it; skips the upload when the registry
    already has the bytes. Prints NS/NAME@N sha256:<hex>."""
    from ..core.errors import BadRequest

    if type_ is not None and type_ not in TYPES:
        raise BadRequest(f"unknown --type {type_!r}; use {', '.join(TYPES)}")
    with open_hub() as hub:
        info = hub.push(
            files if len(files) > 1 else files[0],
            ref,
            trigger=trigger,
            base_model=base_model,
            type=type_,
            tags=tag or None,
            description=description,
            private=True if private else None,
            license=license_,
        )
    if as_json:
        emit_json(info.to_json())
        return
    note = "" if info.uploaded else " (already on the registry, nothing uploaded)"
    print(f"{info.ref} {info.digest}{note}")
    for dupe in info.raw.get("near_duplicates") or []:  # issue 10: re-uploads made visible
        typer.echo(f"near-duplicate of {dupe['ref']} (cosine {dupe['score']:.3f})", err=True)


WebuiOpt = Annotated[
    Path | None,
    typer.Option("--to-webui", help="A1111 embeddings/ folder: DIR/<trigger>.safetensors."),
]
ComfyOpt = Annotated[
    Path | None,
    typer.Option("--to-comfy", help="ComfyUI models/embeddings/ folder (same layout)."),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace a different embedding of the same name there.")
]


def embeddings_folder(to_webui: Path | None, to_comfy: Path | None) -> Path | None:
    """The one A1111/ComfyUI folder asked for (they share a layout: the file name is the
    prompt word, ``name`` in A1111, ``embedding:name`` in ComfyUI)."""
    if to_webui and to_comfy:
        from ..core.errors import BadRequest

        raise BadRequest("give --to-webui or --to-comfy, not both (run twice for two folders)")
    return to_webui or to_comfy


@app.command()
@handles_errors
def pull(
    ref: Annotated[str, typer.Argument(help="ns/name, ns/name@3, ns/name:tag, ns/name@sha256:…")],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Where to write (a1111: .pt or .safetensors)."),
    ] = None,
    format_: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "canonical",
    to_webui: WebuiOpt = None,
    to_comfy: ComfyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Download (verified, through the cache) and print the path written. With --to-webui or
    --to-comfy a different embedding already named so is refused (exit 1) unless --force."""
    from ..core.writers import check_format

    check_format(format_)
    folder = embeddings_folder(to_webui, to_comfy)
    with open_hub() as hub:
        if folder:
            path = hub.to_webui(ref, folder, force=force)
        else:
            path = hub.pull(ref, format=format_, out=out)
    print(path)


@app.command()
@handles_errors
def search(
    query: Annotated[str | None, typer.Argument(help="Words to search for.")] = None,
    family: Annotated[str | None, typer.Option(help="sd1, sd2 or sdxl.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Concept type.")] = None,
    tag: Annotated[str | None, typer.Option(help="Content tag.")] = None,
    author: Annotated[str | None, typer.Option(help="Namespace.")] = None,
    sort: Annotated[str | None, typer.Option(help="downloads, stars, recent, trending.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search public embeddings (and private ones your token may see)."""
    with open_hub() as hub:
        page = hub.search(
            query, family=family, type=type_, tag=tag, author=author, sort=sort, limit=limit
        )
    if as_json:
        emit_json({"items": [i.raw for i in page.items], "next_cursor": page.next_cursor})
        return
    rows = [
        [i.repo, i.family, i.type, i.trigger, i.downloads, i.stars, i.description[:60]]
        for i in page.items
    ]
    columns = ["embedding", "family", "type", "trigger", "downloads", "stars", "description"]
    print_table(None, columns, rows)


@app.command()
@handles_errors
def info(
    ref: Annotated[str, typer.Argument(help="ns/name or a version ref.")], as_json: JsonOpt = False
) -> None:
    """Show an embedding and the version REF names (latest by default)."""
    with open_hub() as hub:
        embedding = hub.info(ref)
        version = hub.version(ref) if embedding.latest or "@" in ref or ":" in ref else None
    if as_json:
        emit_json({"embedding": embedding.raw, "version": version.raw if version else None})
        return
    fields: dict[str, Any] = {
        "embedding": embedding.repo,
        "description": embedding.description,
        "type": embedding.type,
        "family": embedding.family,
        "visibility": embedding.visibility,
        "license": embedding.license,
        "tags": ", ".join(embedding.tags),
        "version tags": ", ".join(f"{t}={n}" for t, n in sorted(embedding.version_tags.items())),
        "downloads / stars": f"{embedding.downloads} / {embedding.stars}",
    }
    if version is not None:
        fields |= {
            "version": version.ref + (" (yanked)" if version.yanked else ""),
            "digest": version.digest,
            "trigger": version.trigger,
            "internal name": internal_name(version.raw),
            "vectors": f"{version.vectors} ({version.dtype})",
        }
    print_table(None, ["field", "value"], [[k, v] for k, v in fields.items() if v])


def internal_name(version: dict[str, Any]) -> str | None:
    """The name the trainer gave the embedding (A1111's internal ``name``) when it differs from
    the trigger, which A1111 and ComfyUI take from the file name (issue 9.3)."""
    training = version.get("training")
    name = training.get("name") if isinstance(training, dict) else None
    if not isinstance(name, str) or name == version.get("trigger"):
        return None
    return name


@app.command()
@handles_errors
def versions(
    ref: Annotated[str, typer.Argument(help="ns/name.")], as_json: JsonOpt = False
) -> None:
    """List every version, yanked ones included."""
    with open_hub() as hub:
        items = hub.versions(ref)
    if as_json:
        emit_json([v.raw for v in items])
        return
    rows = [
        [v.number, v.digest, v.family, v.vectors, ", ".join(v.tags), "yes" if v.yanked else ""]
        for v in items
    ]
    print_table(ref, ["version", "digest", "family", "vectors", "tags", "yanked"], rows)


@app.command()
@handles_errors
def tag(
    ref: Annotated[str, typer.Argument(help="The version: ns/name@3, ns/name:other…")],
    name: Annotated[str, typer.Argument(help="The tag to point at it.")],
) -> None:
    """Point a tag at a version."""
    from ..refs import parse_ref

    with open_hub() as hub:
        tags = hub.tag(ref, name)
    print(f"{parse_ref(ref).repo}:{name} -> @{tags.get(name)}")


@app.command()
@handles_errors
def untag(
    repo: Annotated[str, typer.Argument(help="ns/name.")],
    name: Annotated[str, typer.Argument(help="The tag to remove.")],
) -> None:
    """Remove a tag."""
    with open_hub() as hub:
        hub.untag(repo, name)
    print(f"removed tag {name} from {repo}")


@app.command()
@handles_errors
def yank(
    ref: Annotated[str, typer.Argument(help="The version to yank.")],
    undo: Annotated[bool, typer.Option("--undo", help="Un-yank.")] = False,
) -> None:
    """Yank a version: tags (latest too) skip it; pinned numbers and digests still pull."""
    with open_hub() as hub:
        version = hub.yank(ref, undo=undo)
    print(f"{version.ref} {'yanked' if version.yanked else 'restored'}")


@app.command()
@handles_errors
def star(
    repo: Annotated[str, typer.Argument(help="ns/name.")],
    undo: Annotated[bool, typer.Option("--undo", help="Remove your star.")] = False,
) -> None:
    """Star an embedding."""
    with open_hub() as hub:
        stars = hub.star(repo, undo=undo)
    print(f"{repo}: {stars} star{'s' if stars != 1 else ''}")


@app.command()
@handles_errors
def lookup(
    hash_: Annotated[str, typer.Argument(metavar="HASH", help="Digest, sha256, or short hash.")],
    as_json: JsonOpt = False,
) -> None:
    """Find the versions that have a file with sha256 HASH (or starting with it: the short
    hashes A1111 and Civitai show): any format the hub serves or writes, or an original file
    pushed. MATCHED says which."""
    with open_hub() as hub:
        items = hub.lookup(hash_)
    if as_json:
        emit_json([v.raw for v in items])
        return
    if not items:
        from ..core.errors import NotFound

        raise NotFound(f"no version you can see matches {hash_}")
    print_table(
        None,
        ["version", "matched", "digest", "family", "trigger"],
        [[v.ref, _matched(v.raw), v.digest, v.family, v.trigger] for v in items],
    )


def _matched(raw: dict[str, Any]) -> str:
    """``original 5e2f586aef``, one per matching file: the kind and its short hash."""
    return "\n".join(
        f"{m.get('kind')} {str(m.get('sha256', ''))[:10]}" for m in raw.get("matched") or []
    )
