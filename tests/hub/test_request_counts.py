"""How many HTTP requests a pull costs (issue 12, target 5): a warm pull by digest makes none and
does not even load httpx; a cold pull makes at most 3 (resolve, file, and on S3 the presigned
redirect's target). Counted on the real client's session with an httpx event hook, against the
live registry on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client.hub import Hub
from tests.hub.helpers import digest_of, random_embedding

COLD_PULL_MAX_REQUESTS = 3

# `hub pull REF` in a fresh interpreter, then which of the HTTP libraries it loaded.
WARM_PULL_PROBE = """
import json, sys
from client.cli.main import app
try:
    app(["pull", sys.argv[1]], prog_name="hub")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(
    m for m in sys.modules if m.split(".")[0] in {"httpx", "httpcore", "h11"})}))
"""


def _publish(live, tmp_path: Path, name: str, tag: str | None = None):
    ref = f"alice/{name}:{tag}" if tag else f"alice/{name}"
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "pusher") as hub:
        return hub.push(random_embedding(token=f"<{name}>"), ref)


def _counted(hub: Hub) -> list[str]:
    requests: list[str] = []
    hub.transport._client.event_hooks["request"].append(
        lambda r: requests.append(f"{r.method} {r.url.copy_with(query=None)}")
    )
    return requests


@pytest.mark.parametrize("form", ["digest", "number", "tag"])
def test_a_cold_pull_makes_at_most_three_requests(live, tmp_path: Path, form: str) -> None:
    name = live.unique("cold")
    info = _publish(live, tmp_path, name, tag="stable")
    ref = {
        "digest": f"alice/{name}@{info.digest}",
        "number": f"alice/{name}@{info.number}",
        "tag": f"alice/{name}:stable",
    }[form]
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "cold-cache") as hub:
        requests = _counted(hub)
        out = hub.pull(ref, out=tmp_path / "out.safetensors")
    assert digest_of(out) == info.digest
    assert 1 <= len(requests) <= COLD_PULL_MAX_REQUESTS, requests


def test_a_warm_pull_by_digest_makes_no_request_and_loads_no_http_library(
    live, tmp_path: Path
) -> None:
    name = live.unique("warm")
    info = _publish(live, tmp_path, name)
    cache = tmp_path / "cache"
    ref = f"alice/{name}@{info.digest}"
    with Hub(live.url, live.tokens["alice"], cache_dir=cache) as hub:
        hub.pull(ref)
        requests = _counted(hub)
        again = hub.pull(ref, format="a1111", out=tmp_path / "again.safetensors")
    assert requests == []
    assert digest_of(again) == info.digest

    env = {
        **os.environ,
        "LEXICON_URL": live.url,
        "LEXICON_TOKEN": live.tokens["alice"],
        "LEXICON_CACHE": str(cache),
        "LEXICON_OFFLINE": "0",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run(
        [sys.executable, "-c", WARM_PULL_PROBE, ref],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    printed, _, probe = done.stdout.rstrip().rpartition("\n")
    result = json.loads(probe)
    assert result["code"] in (0, None), done.stderr
    assert Path(printed.strip()).is_file()
    assert result["loaded"] == []
