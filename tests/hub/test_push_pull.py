"""Push every real-world community file to a live registry and pull it back in every format."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from client.core.errors import NotFound
from client.core.writers import FORMATS
from client.hub import Hub
from tests.hub.helpers import PUSHED, digest_of, random_embedding

REFUSED = "a1111_empty.pt"


def test_every_realworld_file_round_trips_in_every_format(
    live, hub_cli, realworld_dir: Path, tmp_path: Path, cache_dir: Path
) -> None:
    files = sorted(
        p for p in realworld_dir.iterdir() if p.suffix in (".pt", ".bin", ".safetensors")
    )
    assert len(files) >= 10
    for path in files:
        if path.name == REFUSED:
            continue
        name = live.unique(path.stem.lower().replace("_", "-")[:40])
        pushed = hub_cli("push", path, f"alice/{name}", "--type", "negative")
        assert pushed.exit_code == 0, pushed.output
        match = PUSHED.match(pushed.stdout)
        assert match and match["ref"] == f"alice/{name}@1", pushed.stdout
        digest = digest_of(path)
        assert match["digest"] == digest
        for fmt in FORMATS:
            out = tmp_path / fmt / f"{name}.safetensors"
            pulled = hub_cli("pull", f"alice/{name}", "--format", fmt, "-o", out)
            assert pulled.exit_code == 0, pulled.output
            assert Path(pulled.stdout.strip()) == out
            assert digest_of(out) == digest, (path.name, fmt)
        # The cache keeps the canonical bytes: their sha256 *is* the digest.
        blob = cache_dir / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest


def test_the_empty_pickle_is_refused_and_nothing_is_published(
    live, hub_cli, realworld_dir: Path
) -> None:
    name = live.unique("empty")
    result = hub_cli("push", realworld_dir / REFUSED, f"alice/{name}")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and "fix:" in result.stderr
    assert REFUSED in result.stderr and "empty" in result.stderr
    assert "Traceback" not in result.output
    with Hub(live.url, live.tokens["alice"], offline=False) as hub, pytest.raises(NotFound):
        hub.info(f"alice/{name}")


def test_pull_writes_into_the_cache_by_default_and_to_webui(
    live, hub_cli, tmp_path: Path, cache_dir: Path
) -> None:
    name = live.unique("brand")
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "pusher") as hub:
        version = hub.push(random_embedding(token="<brand-x>"), f"alice/{name}")
    result = hub_cli("pull", f"alice/{name}@1")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.is_relative_to(cache_dir) and digest_of(path) == version.digest
    webui = hub_cli("pull", f"alice/{name}", "--to-webui", tmp_path / "embeddings")
    assert webui.exit_code == 0, webui.output
    written = tmp_path / "embeddings" / "brand-x.safetensors"
    assert Path(webui.stdout.strip()) == written and digest_of(written) == version.digest
    # A1111 layout: only the tensors, exactly the registry's canonical bytes.
    assert "sha256:" + hashlib.sha256(written.read_bytes()).hexdigest() == version.digest
    sdxl = hub_cli("pull", f"alice/{name}", "--format", "nonsense")
    assert sdxl.exit_code == 1 and "unknown format" in sdxl.stderr


def test_sdxl_pair_pushes_and_pulls_as_a_diffusers_folder(live, hub_cli, tmp_path: Path) -> None:
    from client.core.writers import write_embedding

    embedding = random_embedding("sdxl", token="<xl>")
    pair = write_embedding(embedding, tmp_path / "pair", "diffusers")
    name = live.unique("xl")
    pushed = hub_cli("push", *pair, f"alice/{name}")
    assert pushed.exit_code == 0, pushed.output
    assert embedding.digest in pushed.stdout
    out = tmp_path / "out-xl"
    pulled = hub_cli("pull", f"alice/{name}", "--format", "diffusers", "-o", out)
    assert pulled.exit_code == 0, pulled.output
    assert out.is_dir() and digest_of(out) == embedding.digest


def test_repush_uploads_nothing(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("again")
    embedding = random_embedding()
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "c") as hub:
        first = hub.push(embedding, f"alice/{name}", trigger="<again>")
        assert first.uploaded is True and first.number == 1
        sent: list[tuple[str, str, int]] = []
        hub.transport._client.event_hooks["request"].append(
            lambda r: sent.append((r.method, r.url.path, len(r.read())))
        )
        second = hub.push(embedding, f"alice/{name}", trigger="<again>")
    assert second.uploaded is False
    assert (second.number, second.digest) == (1, first.digest)
    assert [m for m, _, _ in sent] == ["HEAD", "POST"]
    assert sent[1][2] < 1000, "the publish-by-digest request carried the file"
    # The CLI says so too.
    path = tmp_path / "again.safetensors"
    from client.core.writers import write_embedding

    write_embedding(embedding, path, "a1111")
    result = hub_cli("push", path, f"alice/{name}")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"alice/{name}@1 {first.digest} (already on the registry, nothing uploaded)"
    )


def test_wrong_base_model_is_incompatible(live, hub_cli, tmp_path: Path) -> None:
    from client.core.writers import write_embedding

    path = write_embedding(random_embedding("sd1"), tmp_path / "e.safetensors", "a1111")[0]
    result = hub_cli(
        "push",
        path,
        f"alice/{live.unique()}",
        "--base-model",
        "stabilityai/stable-diffusion-xl-base-1.0",
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("error: ")
