"""Per-request cost of one registry route, in process, without a server or load generator in the
way: requests go straight into the ASGI app, one at a time, so ms/request is the work a request
does (not queueing). Prints it next to the bare route's (``bench/bare_app.py``) and the number of
SQL statements per request. Run it under py-spy for the profile (threads included):

    .venv/bin/python bench/profile_route.py --route resolve --requests 2000
    .venv/bin/py-spy record -r 500 -f raw -o /tmp/resolve.txt -- \
        .venv/bin/python bench/profile_route.py --route resolve --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bare_app  # noqa: E402
from litestar import get  # noqa: E402
from read_path import EMBEDDINGS, seed  # noqa: E402
from servers import database  # noqa: E402

STUB_PATH = "/api/v1/bench-stub"


# ``--route stub``: the bare route's handler inside the registry's app and middleware stack,
# so that its cost minus the bare route's is what the middleware costs.
stub = get(STUB_PATH, sync_to_thread=False, name="bench-stub")(bare_app.bare.fn)


def scope_for(app, method: str, path: str, headers: dict[str, str]) -> dict:
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "app": app,
    }


async def drive(app, method: str, path: str, headers: dict[str, str], n: int) -> float:
    """CPU seconds (this process, all threads) per request over ``n`` sequential requests
    (after 50 to warm up): on a shared machine CPU time is steadier than wall time."""
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def once() -> None:
        await app(scope_for(app, method, path, headers), receive, send)

    for _ in range(50):
        await once()
    assert statuses[-1] < 400, f"{method} {path} answered {statuses[-1]}"
    started = time.process_time()
    for _ in range(n):
        await once()
    return (time.process_time() - started) / n


def count_statements(engine) -> list[int]:
    from sqlalchemy import event

    counter = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args) -> None:
        counter[0] += 1

    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--route", default="resolve", help="a bench/read_path.py route, or stub (see STUB_PATH)"
    )
    parser.add_argument("--path", help="GET this path instead of a named route (e.g. /healthz)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--token", action="store_true", help="send the bench user's token")
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="keep the per-token and anonymous limits on (caps too high to refuse), as in "
        "production; by default they are off, as in bench/read_path.py",
    )
    args = parser.parse_args()

    from read_path import routes

    from registry.app import create_app
    from registry.settings import Settings

    with (
        tempfile.TemporaryDirectory(prefix="lexicon-prof-") as tmp,
        database(args.db, Path(tmp)) as url,
    ):
        token, digest = seed(url, Path(tmp), EMBEDDINGS)
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            log_level="WARNING",
            rate_limit_anonymous_per_second=10**9 if args.rate_limits else 0,
            rate_limit_token_per_second=10**9 if args.rate_limits else 0,
        )
        app = create_app(settings)
        app.register(stub)  # the registry's middleware stack around the bare route's handler
        from litestar.testing import TestClient

        with TestClient(app) as client:  # start-up hooks, and the cursor for the browse route
            paths = routes("", digest, get=client.get)
        paths["stub"] = ("GET", STUB_PATH)
        method, path = ("GET", args.path) if args.path else paths[args.route]
        headers = {"Authorization": f"Bearer {token}"} if args.token else {}
        statements = count_statements(app.state.registry.engine)
        bare = asyncio.run(drive(bare_app.app, "GET", "/bare", {}, args.requests))
        statements[0] = 0
        cost = asyncio.run(drive(app, method, path, headers, args.requests))
        per_request = statements[0] / (args.requests + 50)
        print(
            f"{args.db} {args.route} ({'token' if args.token else 'anonymous'}): "
            f"{cost * 1000:.3f} ms CPU/request, bare {bare * 1000:.3f} ms "
            f"(x{cost / bare:.1f}); {per_request:.1f} SQL statements/request"
        )


if __name__ == "__main__":
    main()
