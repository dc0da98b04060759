"""``lexicon-registry``: serve, migrate, create users and tokens, collect orphan blobs.

Every command takes the same settings (``LEXICON_*`` variables, or ``--data-dir``) so that
``serve`` and ``create-user`` on the same ``--data-dir`` talk to the same embedded database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="lexicon-registry",
    help="Lexicon Hub registry server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Embedded-default data directory (LEXICON_DATA_DIR)."),
]


def _settings(data_dir: Path | None):
    from registry.settings import Settings

    return Settings(data_dir=data_dir) if data_dir else Settings()


def _migrate(settings) -> None:
    from registry.migrations import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations (alembic upgrade head)."""
    _migrate(_settings(data_dir))
    typer.echo("database is at the latest migration")


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Migrate, then serve. With no database or storage settings: SQLite + a local blob
    directory under --data-dir (default ./lexicon-data)."""
    import uvicorn

    from registry.serving import uvicorn_options

    settings = _settings(data_dir)
    _migrate(settings)
    # Worker processes rebuild the settings from the environment.
    os.environ["LEXICON_DATA_DIR"] = str(settings.data_dir.resolve())
    typer.echo(f"Lexicon Hub registry on http://{host}:{port} (data: {settings.data_dir})")
    uvicorn.run(
        "registry.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        **uvicorn_options(settings),
    )


@app.command("create-user")
def create_user(
    name: str,
    data_dir: DataDir = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    org: Annotated[
        list[str] | None, typer.Option("--org", help="Also create/join this org as owner.")
    ] = None,
    password: Annotated[str | None, typer.Option(help="Password for the web pages.")] = None,
) -> None:
    """Create a user and print a new API token (the last line of output)."""
    from client.core.errors import NotFound
    from registry.accounts import services
    from registry.accounts.models import Role, Scope
    from registry.db import make_engine, session_scope

    settings = _settings(data_dir)
    _migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        user = services.create_user(session, name, is_admin=admin, password=password)
        for org_name in org or []:
            try:
                services.set_membership(
                    session, services.get_org(session, org_name), user, Role.OWNER.value
                )
            except NotFound:
                services.create_org(session, org_name, user)
        scopes = [Scope.READ.value, Scope.WRITE.value] + ([Scope.ADMIN.value] if admin else [])
        secret, _ = services.create_token(session, user, "cli", scopes)
    typer.echo(f"created user {name}{' (admin)' if admin else ''}")
    typer.echo(secret)


@app.command("create-worker-token")
def create_worker_token(name: str, data_dir: DataDir = None) -> None:
    """Create a worker identity NAME (a user holding only `worker`-scoped tokens) if it does
    not exist, and print a new worker token (the last line of output) for `lexicon-trainer`."""
    from sqlmodel import select

    from registry.accounts import services
    from registry.accounts.models import Scope, User
    from registry.db import make_engine, session_scope

    settings = _settings(data_dir)
    _migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.username == name)).first()
        created = user is None
        if user is None:
            user = services.create_user(session, name)
        secret, _ = services.create_token(session, user, "worker", [Scope.WORKER.value])
    typer.echo(f"{'created' if created else 'existing'} worker identity {name}")
    typer.echo(secret)


@app.command()
def gc(
    data_dir: DataDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list orphans.")] = False,
) -> None:
    """Delete blobs no row points at (left by failed publishes or deleted embeddings) once they
    are older than LEXICON_GC_MIN_AGE_SECONDS, so it is safe to run while the registry serves."""
    from registry.app import build_registry
    from registry.gc import collect_garbage

    registry = build_registry(_settings(data_dir))
    report = collect_garbage(registry, dry_run=dry_run)
    for digest in report.orphans:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {digest}")
    if report.malformed:
        shown = ", ".join(report.malformed[:10]) + (", ..." if len(report.malformed) > 10 else "")
        typer.echo(f"skipped malformed stored JSON in {len(report.malformed)} row(s): {shown}")
    if report.temp_files:
        typer.echo(f"removed {report.temp_files} stale temp file(s) of crashed writes")
    if report.young:
        typer.echo(
            f"kept {report.young} unreferenced blob(s) younger than "
            f"{registry.settings.gc_min_age_seconds}s (LEXICON_GC_MIN_AGE_SECONDS)"
        )
    typer.echo(f"{len(report.orphans)} orphan blob(s)")


def main() -> None:
    """Console entry: typed errors end as one line naming the cause and the fix."""
    from client.core.errors import LexiconError

    try:
        app()
    except LexiconError as exc:
        typer.echo(f"error: {exc} (fix: {exc.fix})", err=True)
        raise SystemExit(1) from None
