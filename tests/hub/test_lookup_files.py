"""``hub lookup`` finds a version by the sha256 (or the short hash A1111 and Civitai show) of any
file a user holds for it: whatever ``hub pull`` wrote, and each original file pushed to it
(issue 9.5), through the real client and CLI on a live registry."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from client.core.writers import FORMATS, write_embedding
from tests.hub.helpers import random_embedding


def _torch_pt(vectors: np.ndarray) -> bytes:
    """An A1111 ``.pt`` the way A1111 saves one (made with torch; the hub never loads it so)."""
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    param = torch.from_numpy(np.ascontiguousarray(vectors))
    torch.save({"string_to_param": {"*": param}, "name": "files", "step": 3}, buffer)
    return buffer.getvalue()


def test_files_pulled_in_every_format_and_each_original_pushed_are_found(
    live, hub_cli, tmp_path: Path
) -> None:
    name = live.unique("files")
    embedding = random_embedding(token="<files>")
    first = tmp_path / "files.pt"
    first.write_bytes(_torch_pt(embedding.vectors["emb_params"]))
    second = tmp_path / "learned_embeds.safetensors"
    write_embedding(embedding, second, "diffusers")
    for original in (first, second):  # the second push is by digest, its original still sent
        pushed = hub_cli("push", original, f"alice/{name}")
        assert pushed.exit_code == 0, pushed.output
    ref = f"alice/{name}@1"

    pulled = [Path(hub_cli("pull", ref).stdout.strip())]  # canonical, into the cache
    for fmt in FORMATS:
        out = tmp_path / "out" / f"{fmt}.safetensors"
        result = hub_cli("pull", ref, "--format", fmt, "-o", out)
        assert result.exit_code == 0, result.output
        pulled.append(out)
    pt = tmp_path / "out" / "files.pt"
    assert hub_cli("pull", ref, "--format", "a1111", "-o", pt).exit_code == 0
    pulled.append(pt)

    expected = {first: "original", second: "original"}
    expected |= {path: None for path in pulled}
    for path, kind in expected.items():
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        for value in (sha, sha[:10], sha[:12]):
            result = hub_cli("lookup", value, "--json")
            assert result.exit_code == 0, (path.name, result.output)
            hits = {
                v["ref"]: {m["kind"] for m in v.get("matched", [])}
                for v in json.loads(result.stdout)
            }
            assert ref in hits, (path.name, value, hits)
            if kind is not None:
                assert kind in hits[ref], (path.name, hits)
    # The table says what matched.
    short = hashlib.sha256(first.read_bytes()).hexdigest()[:10]
    table = hub_cli("lookup", short)
    assert table.exit_code == 0 and "original" in table.stdout and ref in table.stdout
