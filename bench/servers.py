"""What the registry benchmarks share: a throwaway database, a seeded registry, servers started
as real uvicorn processes, and wrk as the load generator (``apt-get install wrk``).

Every benchmark starts its baseline (``bench/bare_app.py``) and the registry in the same run, so
the ratios it prints compare like with like on whatever machine runs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN = os.environ.get("LEXICON_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database: SQLite under ``data_dir`` or a new PostgreSQL
    database on 127.0.0.1:5432 (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'registry.db'}"
        return
    import psycopg

    name = "bench_" + secrets.token_hex(4)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def registry_env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    """The registry's settings for a benchmark: rate limits off (one address sends everything),
    otherwise the defaults."""
    env = dict(os.environ)
    env.update(
        LEXICON_DATA_DIR=str(data_dir),
        LEXICON_DATABASE_URL=url,
        LEXICON_RATE_LIMIT_ANONYMOUS_PER_SECOND="0",
        LEXICON_RATE_LIMIT_TOKEN_PER_SECOND="0",
        HF_HUB_OFFLINE="1",
        **extra,
    )
    return env


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(name: str, args: list[str], env: dict[str, str], port: int, probe: str) -> Server:
    """Start a server process and wait until ``probe`` answers."""
    log = open(Path(tempfile.gettempdir()) / f"bench-{name}-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited; see {log.name}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + probe, timeout=2).status_code == 200:
                return Server(name, base, process)
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{name} did not start; see {log.name}")


def start_bare(workers: int = 1) -> Server:
    port = free_port()
    args = [PYTHON, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "bare_app:app"]
    args += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    return start("bare", args, dict(os.environ), port, "/bare")


def start_registry(env: dict[str, str], workers: int = 1) -> Server:
    """``lexicon-registry serve``, exactly as the README launches it."""
    port = free_port()
    cli = str(Path(PYTHON).parent / "lexicon-registry")
    args = [cli, "serve", "--port", str(port), "--workers", str(workers)]
    return start("registry", args, env, port, "/healthz")


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    threads: int = 1,
) -> Load:
    """One wrk run; ``errors`` counts socket errors and answers other than 2xx/3xx."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    script = None
    if method != "GET":
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(f'wrk.method = "{method}"\n')
        script.close()
        args += ["-s", script.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if script is not None:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: the "Thread Stats" lines also end in percentages ("75.50%").
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Load(rps, p50, p99, errors)


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]}"
