"""Client speed (issue 12, target 5), measured in one run against baselines from the same run:

- ``hub --help`` wall time (median of 10) minus a bare ``python -c pass`` (median of 10);
  target < 0.25 s.
- HTTP requests of a warm pull by digest (target 0, and httpx not imported) and of cold pulls
  (target <= 3), against a live registry (SQLite + local blobs, uvicorn in a thread).
- Injecting 20 embeddings into an SD1.x pipeline whose tokenizer and text encoder table have
  CLIP's real 49,408 rows: ``load_embeddings`` (one call) and 20 ``load_embedding`` calls vs 20
  diffusers ``load_textual_inversion`` calls, each on a fresh pipeline, from the same 20 files;
  the encoder output for a prompt using all 20 triggers must be identical. Target >= 5x.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/client_speed.py [--skip-inject] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_EMBEDDINGS = 20
VECTORS = 2

WARM_PULL_PROBE = """
import json, sys
from client.cli.main import app
try:
    app(["pull", sys.argv[1]], prog_name="hub")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"httpx", "httpcore"})))
"""


def _median_wall(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_startup(repeats: int) -> dict[str, float]:
    bare = _median_wall([sys.executable, "-c", "pass"], repeats)
    help_ = _median_wall([sys.executable, "-m", "client.cli.main", "--help"], repeats)
    return {"python -c pass s": bare, "hub --help s": help_, "over bare s": help_ - bare}


# --- request counts ----------------------------------------------------------------------------
@contextmanager
def live_registry(tmp: Path) -> Iterator[tuple[str, str]]:
    """The real registry app (SQLite, local blobs) served by uvicorn in a thread; (url, token)."""
    import uvicorn

    from registry.accounts import services as accounts
    from registry.app import create_app
    from registry.db import session_scope
    from registry.migrations import upgrade
    from registry.settings import Settings
    from tests.services import free_port

    tmp.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'registry.db'}", log_level="WARNING"
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    with session_scope(app.state.registry.engine) as session:
        user = accounts.create_user(session, "alice")
        token, _ = accounts.create_token(session, user, "bench")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _counting(hub: Any) -> list[str]:
    seen: list[str] = []
    hub.transport._client.event_hooks["request"].append(lambda r: seen.append(r.url.path))
    return seen


def request_counts(tmp: Path) -> dict[str, Any]:
    from client.hub import Hub
    from tests.hub.helpers import random_embedding

    out: dict[str, Any] = {}
    with live_registry(tmp / "registry") as (url, token):
        with Hub(url, token, cache_dir=tmp / "pusher") as hub:
            info = hub.push(random_embedding(token="<bench>"), "alice/bench:stable")
        refs = {
            "digest": f"alice/bench@{info.digest}",
            "number": "alice/bench@1",
            "tag": "alice/bench:stable",
        }
        for form, ref in refs.items():
            with Hub(url, token, cache_dir=tmp / f"cold-{form}") as hub:
                seen = _counting(hub)
                hub.pull(ref)
                out[f"cold pull by {form}: requests"] = len(seen)
        cache = tmp / "cold-digest"
        with Hub(url, token, cache_dir=cache) as hub:
            seen = _counting(hub)
            hub.pull(refs["digest"])
            out["warm pull by digest: requests"] = len(seen)
        env = {**os.environ, "LEXICON_URL": url, "LEXICON_TOKEN": token}
        env |= {"LEXICON_CACHE": str(cache), "XDG_CONFIG_HOME": str(tmp / "config")}
        probe = subprocess.run(
            [sys.executable, "-c", WARM_PULL_PROBE, refs["digest"]],
            capture_output=True, text=True, env=env, check=True, cwd=ROOT,
        )  # fmt: skip
        out["warm `hub pull` by digest: http modules loaded"] = json.loads(
            probe.stdout.rstrip().rpartition("\n")[2]
        )
    return out


# --- injection -------------------------------------------------------------------------------
def _files(tmp: Path) -> list[tuple[Path, str]]:
    """20 embeddings as A1111 safetensors files, both loaders read the same bytes."""
    import numpy as np

    from client.core.embedding import Embedding
    from client.core.writers import write_embedding

    rng = np.random.default_rng(12)
    files = []
    for i in range(N_EMBEDDINGS):
        vectors = rng.standard_normal((VECTORS, 768)).astype(np.float32)
        embedding = Embedding.from_tensors(
            {"emb_params": vectors}, token=f"<b{i}>", source_format="bench"
        )
        path = tmp / f"b{i}.safetensors"
        write_embedding(embedding, path, "a1111")
        files.append((path, f"<b{i}>"))
    return files


def _encode(pipe: Any, prompt: str) -> Any:
    import torch

    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(prompt, "cpu", 1, do_classifier_free_guidance=False)
    return embeds


def _timed(build: Callable[[], Any], load: Callable[[Any], None]) -> tuple[float, Any]:
    pipe = build()
    start = time.perf_counter()
    load(pipe)
    return time.perf_counter() - start, pipe


def injection(tmp: Path, repeats: int) -> dict[str, Any]:
    import torch

    from bench.speed_models import tiny_speed_pipeline
    from client.inject import load_embedding, load_embeddings

    torch.manual_seed(0)
    base = tiny_speed_pipeline("sd1", "full")
    table = base.text_encoder.get_input_embeddings().weight.detach().clone()

    def build() -> Any:  # the same pipeline each time: the first table restored, no new tokens
        from bench.speed_models import _full_tokenizer

        base.tokenizer = _full_tokenizer()
        embeddings = base.text_encoder.get_input_embeddings()
        embeddings.weight.data = table.clone()
        embeddings.num_embeddings = table.shape[0]
        base.text_encoder.config.vocab_size = table.shape[0]
        return base

    files = _files(tmp)
    paths, triggers = [p for p, _ in files], [t for _, t in files]
    prompt = " ".join(t for _, t in files)  # 40 tokens: within CLIP's 77, none truncated
    ways: dict[str, Callable[[Any], None]] = {
        "diffusers load_textual_inversion x20": lambda pipe: [
            pipe.load_textual_inversion(str(p), token=t) for p, t in files
        ],
        "ours load_embedding x20": lambda pipe: [
            load_embedding(pipe, p, token=t) for p, t in files
        ],
        "ours load_embeddings (one call)": lambda pipe: load_embeddings(
            pipe, paths, tokens=triggers
        ),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, load in ways.items():
            elapsed, pipe = _timed(build, load)
            seconds[name].append(elapsed)
            outputs[name] = _encode(pipe, prompt)
    reference = outputs["diffusers load_textual_inversion x20"]
    baseline = statistics.median(seconds["diffusers load_textual_inversion x20"])
    result: dict[str, Any] = {
        "encoder output identical": all(torch.equal(o, reference) for o in outputs.values())
    }
    for name, values in seconds.items():
        result[f"{name} s (median of {repeats})"] = round(statistics.median(values), 3)
        result[f"{name} speed-up"] = round(baseline / statistics.median(values), 1)
    print(json.dumps(result, indent=2))
    assert result["encoder output identical"], "encoder output differs from diffusers'"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="CLI start-up runs per command")
    parser.add_argument("--inject-repeats", type=int, default=3)
    parser.add_argument("--skip-inject", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"load average before: {os.getloadavg()}")
    report: dict[str, Any] = {"cli": cli_startup(args.repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        report["requests"] = request_counts(Path(tmp))
        if not args.skip_inject:
            report["inject"] = injection(Path(tmp), args.inject_repeats)
    print(json.dumps(report, indent=2))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
