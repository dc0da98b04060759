"""Scale-out of the registry's read path (issue 12, target 4): the same read benchmark as
``bench/read_path.py`` against 1 and 2 uvicorn workers, and against 3 registry processes on one
PostgreSQL (one wrk per process, req/s summed), with the bare route at the same worker count as
the baseline of each row.

    .venv/bin/python bench/scale_out.py                       # PostgreSQL, route resolve
    .venv/bin/python bench/scale_out.py --route file --seconds 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from read_path import EMBEDDINGS, routes, seed  # noqa: E402
from servers import (  # noqa: E402
    Load,
    database,
    machine,
    registry_env,
    start_bare,
    start_registry,
    wrk,
)


def spread(bases: list[str], path: str, method: str, seconds: int, connections: int) -> Load:
    """One wrk per server at once, ``connections`` shared out: req/s summed, worst p50/p99."""
    each = max(1, connections // len(bases))
    with ThreadPoolExecutor(len(bases)) as pool:
        loads = list(
            pool.map(
                lambda base: wrk(base + path, method=method, seconds=seconds, connections=each),
                bases,
            )
        )
    return Load(
        sum(x.rps for x in loads),
        max(x.p50_ms for x in loads),
        max(x.p99_ms for x in loads),
        sum(x.errors for x in loads),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--route", default="resolve")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=48)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lexicon-bench-") as tmp:
        data_dir = Path(tmp)
        with database(args.db, data_dir) as url:
            _token, digest = seed(url, data_dir, EMBEDDINGS)
            env = registry_env(data_dir, url)
            print(
                f"# scale-out: {args.db}, route {args.route}, wrk -t1 -c{args.connections} "
                f"-d{args.seconds}s; {machine()}"
            )
            print(
                "| launch | bare req/s | registry req/s | x bare | x 1 worker | p50 ms | p99 ms |"
            )
            print("|---|---|---|---|---|---|---|")
            first = None
            for label, workers, processes in (
                ("1 worker", 1, 1),
                ("2 workers", 2, 1),
                ("3 processes", 1, 3),
            ):
                bare = start_bare(workers * processes)
                servers = [start_registry(env, workers) for _ in range(processes)]
                try:
                    method, path = routes(servers[0].base, digest)[args.route]
                    base = wrk(
                        bare.base + "/bare", seconds=args.seconds, connections=args.connections
                    )
                    ours = spread(
                        [s.base for s in servers], path, method, args.seconds, args.connections
                    )
                finally:
                    for server in servers:
                        server.stop()
                    bare.stop()
                first = first or ours.rps
                print(
                    f"| {label} | {base.rps:,.0f} | {ours.rps:,.0f} | {ours.rps / base.rps:.3f} | "
                    f"{ours.rps / first:.2f} | {ours.p50_ms:.1f} | {ours.p99_ms:.1f} |",
                    flush=True,
                )
            print(f"# after: {machine()}")


if __name__ == "__main__":
    main()
