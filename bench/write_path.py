"""Write path of the registry against a bare upload route, in one run (issue 12, target 2).

Starts the baseline (``bench/bare_app.py``: a Litestar route that reads the same multipart body
and does nothing else) and the registry (``lexicon-registry serve``, the README's launch) as
uvicorn processes, then drives 1, 4 and 16 concurrent publishing clients (one thread and one
``httpx.Client`` each). Every registry publish is a new version (fresh vectors), so each one
validates, stores a blob, numbers a version, indexes its hashes and stores its summaries.
Prints publishes/s, p50 and p99 per client count and the ratio to the bare route's uploads/s,
and each server's CPU time per request (user + system of the server process and its children):
on a shared machine the wall-clock numbers swing with other load, CPU per request much less.

    .venv/bin/python bench/write_path.py                     # SQLite, 1 worker
    .venv/bin/python bench/write_path.py --db postgres --seconds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from servers import database, machine, registry_env, start_bare, start_registry  # noqa: E402

METADATA = json.dumps({"description": "benchmark upload", "tags": ["bench", "style"]})


def uploads(count: int, seed: int) -> list[bytes]:
    """``count`` canonical SD 1.x files with different vectors (each publish a new version)."""
    import numpy as np

    from client.core.canonical import canonical_bytes
    from client.core.embedding import Embedding as Vectors

    rng = np.random.default_rng(seed)
    return [
        canonical_bytes(
            Vectors.from_tensors(
                {"emb_params": rng.standard_normal((1, 768)).astype(np.float32)},
                token="<w>",
                source_format="test",
            )
        )
        for _ in range(count)
    ]


def make_user(url: str, data_dir: Path) -> str:
    """A migrated database with user ``bench`` and a write token for it."""
    from registry.accounts import services as accounts
    from registry.db import make_engine, session_scope
    from registry.migrations import upgrade

    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        user = accounts.create_user(session, "bench")
        token, _ = accounts.create_token(session, user, "bench", ["read", "write"])
    engine.dispose()
    return token


@dataclass
class Result:
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms: float = 0.0  # the server's CPU time per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server process and its children (uvicorn's worker)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def measured(server, url_of, files, clients, seconds, headers) -> Result:  # noqa: ANN001
    """:func:`drive` against ``server``, with its CPU time per request."""
    before = cpu_seconds(server.process.pid)
    result = drive(url_of, files, clients, seconds, headers)
    used = cpu_seconds(server.process.pid) - before
    result.cpu_ms = used * 1000 / max(result.requests, 1)
    return result


def drive(url_of, files: list[bytes], clients: int, seconds: float, headers: dict) -> Result:  # noqa: ANN001
    """``clients`` threads post multipart uploads back to back for ``seconds``; ``url_of(i)``
    is client i's URL. Each upload is one of ``files``, never the same one twice."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    next_file = [0]
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        url = url_of(i)
        with httpx.Client(headers=headers, timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    data = files[next_file[0] % len(files)]
                    next_file[0] += 1
                start = time.perf_counter()
                response = http.post(
                    url,
                    files={"file": ("e.safetensors", data, "application/octet-stream")},
                    data={"metadata": METADATA},
                )
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code not in (200, 201):
                        errors[0] += 1
                        if errors[0] == 1:
                            print(f"  first error: {response.status_code} {response.text[:300]}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return Result(len(ordered) / wall, pct(0.50), pct(0.99), errors[0], len(ordered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 4, 16])
    args = parser.parse_args()

    files = uploads(4000, seed=1)
    with tempfile.TemporaryDirectory(prefix="lexicon-bench-") as tmp:
        data_dir = Path(tmp)
        with database(args.db, data_dir) as url:
            token = make_user(url, data_dir)
            bare = start_bare(args.workers)
            registry = start_registry(registry_env(data_dir, url), args.workers)
            try:
                print(
                    f"# write path: {args.db}, {args.workers} worker(s), {args.seconds:g}s per "
                    f"run; {machine()}"
                )
                print(
                    "| clients | bare uploads/s | publishes/s | x bare | p50 ms | p99 ms | "
                    "bare p99 ms | CPU ms/publish | bare CPU ms/upload | errors |"
                )
                print("|---|---|---|---|---|---|---|---|---|---|")
                auth = {"Authorization": f"Bearer {token}"}
                for clients in args.clients:
                    base = measured(
                        bare,
                        lambda _i: bare.base + "/bare/upload",
                        files,
                        clients,
                        args.seconds,
                        {},
                    )
                    ours = measured(
                        registry,
                        lambda i: f"{registry.base}/api/v1/embeddings/bench/w{i}/versions",
                        files,
                        clients,
                        args.seconds,
                        auth,
                    )
                    print(
                        f"| {clients} | {base.per_second:,.0f} | {ours.per_second:,.1f} | "
                        f"{ours.per_second / base.per_second:.3f} | {ours.p50_ms:.1f} | "
                        f"{ours.p99_ms:.1f} | {base.p99_ms:.1f} | {ours.cpu_ms:.2f} | "
                        f"{base.cpu_ms:.2f} | {ours.errors} |",
                        flush=True,
                    )
                print(f"# after: {machine()}")
            finally:
                registry.stop()
                bare.stop()


if __name__ == "__main__":
    main()
