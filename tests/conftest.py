"""Session-wide fixtures: real services started lazily (only when a test asks), and the test
environment. Area-specific fixtures live in ``tests/<area>/conftest.py``."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `tests.services` must import however pytest is launched (`pytest`, `python -m pytest`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services import REPO_ROOT  # noqa: E402
from tests.services.moto import S3Endpoint  # noqa: E402

# Tests never reach the internet; the registry's own offline switch is the tests' to set.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("LEXICON_OFFLINE", None)

_MARKERS = {
    "postgres_url": "postgres",
    "new_postgres_database": "postgres",
    "moto_endpoint": "s3",
    "swift_endpoint": "swift",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the services they use, so ``-m 'not swift'`` works without hand-marking."""
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & _MARKERS.keys():
            item.add_marker(_MARKERS[fixture])


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def _postgres() -> Iterator[object]:
    from tests.services.postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(_postgres) -> str:  # type: ignore[no-untyped-def]
    """SQLAlchemy URL (``postgresql+psycopg://…``) of a fresh database for this session."""
    return str(_postgres.session_url)


@pytest.fixture(scope="session")
def new_postgres_database(_postgres) -> Callable[[], str]:  # type: ignore[no-untyped-def]
    """Factory: each call creates another empty database and returns its URL (dropped at end)."""
    return _postgres.create_database  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server over HTTP; call ``.new_bucket()`` for a bucket of your own."""
    from tests.services.moto import MotoServer

    server = MotoServer()
    yield server.endpoint
    server.stop()


@pytest.fixture(scope="session")
def swift_endpoint() -> Iterator[S3Endpoint]:
    """OpenStack Swift's S3 layer (checks SigV4); key ``test:tester``, secret ``testing``."""
    from tests.services.swift import SwiftServer, swift_missing_reason

    reason = swift_missing_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"CI must run the Swift tests: {reason}", pytrace=False)
        pytest.skip(reason)
    server = SwiftServer()
    yield server.endpoint
    server.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An embedded SQLite database in this test's temp dir."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(scope="session")
def realworld_dir() -> Path:
    """Community embedding files (``../shared/realworld`` or ``LEXICON_REALWORLD_DIR``)."""
    path = Path(os.environ.get("LEXICON_REALWORLD_DIR", REPO_ROOT.parent / "shared" / "realworld"))
    if not path.is_dir():
        pytest.skip(f"real-world embeddings absent at {path} (set LEXICON_REALWORLD_DIR)")
    return path


# One headless Chromium for the whole session, shared by every test that drives pages (the web
# pages' tests and the toy world's worker test that takes the README's screenshots): Playwright's
# sync API cannot run a second instance inside the first one's event loop.
CHROMIUM = os.environ.get("LEXICON_CHROMIUM", "/usr/bin/chromium")


def _need_browser() -> None:
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install playwright)"
    if missing is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing = f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    if missing is not None:
        if _in_ci():
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
