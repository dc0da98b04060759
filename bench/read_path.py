"""Read path of the registry against a bare Litestar route, in one run (issue 12, target 1).

Starts the baseline (``bench/bare_app.py``) and the registry (``lexicon-registry serve``, the
README's launch) as uvicorn processes, seeds the registry with a few embeddings, and drives each
read route with wrk, anonymous and with a token. Prints req/s, p50 and p99 per route and the
ratio of req/s to the bare route's.

    .venv/bin/python bench/read_path.py                      # SQLite, 1 worker
    .venv/bin/python bench/read_path.py --db postgres --workers 2
    .venv/bin/python bench/read_path.py --seconds 5 --connections 50 --only resolve
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from servers import (  # noqa: E402
    database,
    machine,
    registry_env,
    start_bare,
    start_registry,
    wrk,
)

EMBEDDINGS = 20


def seed(url: str, data_dir: Path, count: int) -> tuple[str, str]:
    """``count`` public embeddings by user ``bench`` (two versions each, tag ``stable`` on the
    first, content tags), published through the registry's own service; returns (token, digest
    of bench/e0 version 1)."""
    import numpy as np

    from client.core.canonical import canonical_bytes
    from client.core.embedding import Embedding as Vectors
    from registry.accounts import services as accounts
    from registry.db import make_engine, session_scope
    from registry.embeddings import services
    from registry.embeddings.publish import PublishMetadata, publish_version
    from registry.migrations import upgrade
    from registry.settings import Settings
    from registry.storage import blob_store_from_settings

    upgrade(url)
    settings = Settings(data_dir=data_dir, database_url=url)
    engine = make_engine(url)
    store = blob_store_from_settings(settings)
    with session_scope(engine) as session:
        user = accounts.create_user(session, "bench")
        token, _ = accounts.create_token(session, user, "bench", ["read", "write"])
    with session_scope(engine) as session:
        principal = accounts.principal_for_token(session, token)
    rng = np.random.default_rng(0)
    first = ""
    for i in range(count):
        for number in (1, 2):
            vectors = Vectors.from_tensors(
                {"emb_params": rng.standard_normal((1, 768)).astype(np.float32)},
                token=f"<e{i}>",
                source_format="test",
            )
            meta = PublishMetadata(
                description=f"benchmark embedding {i} painting style",
                tags=["bench", "style", f"t{i % 5}"],
                type="style",
            )
            result = publish_version(
                engine,
                store,
                principal,
                "bench",
                f"e{i}",
                data=canonical_bytes(vectors),
                meta=meta,
                max_bytes=settings.max_upload_bytes,
            )
            if i == 0 and number == 1:
                first = result.version.digest
        with session_scope(engine) as session:
            services.set_tag(session, principal, "bench", f"e{i}", "stable", 1)
    engine.dispose()
    return token, first


def routes(base: str, digest: str, get=httpx.get) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """name -> (method, path) of the read routes the issue lists (``get`` fetches the first
    browse page, whose cursor the deep-page route uses)."""
    e = "/api/v1/embeddings/bench/e0"
    first_page = get(f"{base}/api/v1/embeddings", params={"tag": "style", "limit": 5})
    cursor = first_page.json()["next_cursor"]
    return {
        "resolve": ("GET", e + "/"),
        "version-number": ("GET", e + "/versions/1"),
        "version-tag": ("GET", e + "/versions/stable"),
        "version-digest": ("GET", f"{e}/versions/{digest}"),
        "file": ("GET", e + "/versions/latest/file"),
        "head-blob": ("HEAD", f"/api/v1/blobs/{digest}"),
        "search": ("GET", "/api/v1/embeddings?q=painting"),
        "browse-filter-cursor": (
            "GET",
            f"/api/v1/embeddings?tag=style&family=sd1&sort=downloads&limit=5&cursor={cursor}",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", nargs="*", help="route names to run (default: all)")
    parser.add_argument("--no-token", action="store_true", help="anonymous runs only")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lexicon-bench-") as tmp:
        data_dir = Path(tmp)
        with database(args.db, data_dir) as url:
            token, digest = seed(url, data_dir, EMBEDDINGS)
            bare = start_bare(args.workers)
            registry = start_registry(registry_env(data_dir, url), args.workers)
            try:
                run(args, bare.base, registry.base, token, digest)
            finally:
                registry.stop()
                bare.stop()


def run(args: argparse.Namespace, bare: str, base: str, token: str, digest: str) -> None:
    load = dict(seconds=args.seconds, connections=args.connections)
    print(
        f"# read path: {args.db}, {args.workers} worker(s), wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s; {machine()}"
    )
    baseline = wrk(f"{bare}/bare", **load)
    print(
        f"bare route: {baseline.rps:,.0f} req/s, p50 {baseline.p50_ms:.2f} ms, "
        f"p99 {baseline.p99_ms:.2f} ms"
    )
    print("| route | caller | req/s | p50 ms | p99 ms | x bare | errors |")
    print("|---|---|---|---|---|---|---|")
    callers = (
        {"anonymous": {}}
        if args.no_token
        else {"anonymous": {}, "token": {"Authorization": f"Bearer {token}"}}
    )
    for name, (method, path) in routes(base, digest).items():
        if args.only and name not in args.only:
            continue
        for caller, headers in callers.items():
            result = wrk(base + path, method=method, headers=headers, **load)
            print(
                f"| {name} | {caller} | {result.rps:,.0f} | {result.p50_ms:.1f} | "
                f"{result.p99_ms:.1f} | {result.rps / baseline.rps:.3f} | {result.errors} |",
                flush=True,
            )
    print(f"# after: {machine()}")


if __name__ == "__main__":
    main()
