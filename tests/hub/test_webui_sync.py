"""Pulling into A1111 / ComfyUI embeddings folders and the files tools load (issue 9), against a
live registry: the trigger is the file name those tools key by, a different file of the same
name is never overwritten silently, and ``hub sync --to-webui/--to-comfy`` is repeatable."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from client.core.embedding import Embedding
from client.core.writers import write_embedding
from client.hub import Hub
from tests.hub.helpers import digest_of, random_embedding


def _push(live, tmp_path: Path, embedding: Embedding, name: str) -> str:
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "pusher") as hub:
        return hub.push(embedding, f"alice/{name}").digest


def test_a1111_file_pushes_with_its_file_name_as_trigger_and_info_shows_both(
    live, hub_cli, tmp_path: Path, realworld_dir: Path
) -> None:
    source = tmp_path / "badhandv4.pt"  # as its users have it; the pickle says "badhandv3"
    shutil.copyfile(realworld_dir / "a1111_badhandv4.pt", source)
    name = live.unique("badhand")
    pushed = hub_cli("push", source, f"alice/{name}")
    assert pushed.exit_code == 0, pushed.output
    shown = hub_cli("info", f"alice/{name}")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert any("trigger" in line and "badhandv4" in line for line in lines), shown.stdout
    assert any("internal name" in line and "badhandv3" in line for line in lines), shown.stdout
    version = json.loads(hub_cli("info", f"alice/{name}", "--json").stdout)["version"]
    assert version["trigger"] == "badhandv4" and version["training"]["name"] == "badhandv3"
    webui = tmp_path / "webui"
    pulled = hub_cli("pull", f"alice/{name}", "--to-webui", webui)
    assert pulled.exit_code == 0, pulled.output
    assert Path(pulled.stdout.strip()) == webui / "badhandv4.safetensors"


def test_pull_to_webui_refuses_a_different_file_of_the_same_name(
    live, hub_cli, tmp_path: Path
) -> None:
    name = live.unique("clash")
    ours = random_embedding(token="<clash>")
    digest = _push(live, tmp_path, ours, name)
    webui = tmp_path / "embeddings"
    theirs = random_embedding(token="<clash>")
    (target,) = write_embedding(theirs, webui / "clash.safetensors", "a1111")
    before = target.read_bytes()

    refused = hub_cli("pull", f"alice/{name}", "--to-webui", webui)
    assert refused.exit_code == 1, refused.output
    assert str(target) in refused.stderr and theirs.digest in refused.stderr
    assert f"alice/{name}" in refused.stderr and digest in refused.stderr
    assert "--force" in refused.stderr
    assert target.read_bytes() == before, "the user's file was overwritten"

    forced = hub_cli("pull", f"alice/{name}", "--to-webui", webui, "--force")
    assert forced.exit_code == 0, forced.output
    assert digest_of(target) == digest
    again = hub_cli("pull", f"alice/{name}", "--to-comfy", webui)  # identical content: fine
    assert again.exit_code == 0, again.output


def test_pull_to_webui_refuses_a_same_named_pt_it_would_load_beside(
    live, hub_cli, tmp_path: Path
) -> None:
    name = live.unique("twin")
    _push(live, tmp_path, random_embedding(token="<twin>"), name)
    webui = tmp_path / "embeddings"
    (pt,) = write_embedding(random_embedding(token="<twin>"), webui / "twin.pt", "a1111")
    refused = hub_cli("pull", f"alice/{name}", "--to-webui", webui)
    assert refused.exit_code == 1 and str(pt) in refused.stderr, refused.output
    assert not (webui / "twin.safetensors").exists()


def test_pull_a1111_pt_is_a_torch_file_and_other_formats_refuse_pt(
    live, hub_cli, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    name = live.unique("ptfile")
    embedding = random_embedding(token="<ptfile>")
    _push(live, tmp_path, embedding, name)
    out = tmp_path / "ptfile.pt"
    pulled = hub_cli("pull", f"alice/{name}", "--format", "a1111", "-o", out)
    assert pulled.exit_code == 0, pulled.output
    assert zipfile.is_zipfile(out)
    loaded = torch.load(out, weights_only=True)
    np.testing.assert_array_equal(
        loaded["string_to_param"]["*"].numpy(), embedding.vectors["emb_params"]
    )
    assert loaded["string_to_token"] == {"*": 265} and loaded["name"] == "ptfile"
    refused = hub_cli("pull", f"alice/{name}", "--format", "kohya", "-o", tmp_path / "k.pt")
    assert refused.exit_code == 1 and "k.safetensors" in refused.stderr, refused.output
    assert not (tmp_path / "k.pt").exists()


def test_single_vector_pulls_as_a_one_dimensional_diffusers_file(
    live, hub_cli, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    name = live.unique("one")
    embedding = random_embedding(n=1, token="<one>")
    _push(live, tmp_path, embedding, name)
    out = tmp_path / "one.safetensors"
    pulled = hub_cli("pull", f"alice/{name}", "--format", "diffusers", "-o", out)
    assert pulled.exit_code == 0, pulled.output
    assert {k: v.shape for k, v in load_file(str(out)).items()} == {"<one>": (768,)}


def _lock(hub_cli, tmp_path: Path, *refs: str) -> Path:
    lockfile = tmp_path / "project" / "lexicon.lock"
    lockfile.parent.mkdir(exist_ok=True)
    locked = hub_cli("lock", *refs, "--update", "-f", lockfile)
    assert locked.exit_code == 0, locked.output
    return lockfile


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in folder.iterdir()
    }


@pytest.mark.parametrize("option", ["--to-webui", "--to-comfy"])
def test_sync_to_an_embeddings_folder_is_idempotent_and_refuses_foreign_files(
    live, hub_cli, tmp_path: Path, option: str
) -> None:
    first, second = live.unique("brand-a"), live.unique("brand-b")
    a = random_embedding(token=f"<{first}>")
    b = random_embedding(token=f"<{second}>")
    _push(live, tmp_path, a, first)
    _push(live, tmp_path, b, second)
    lockfile = _lock(hub_cli, tmp_path, f"alice/{first}", f"alice/{second}")
    folder = tmp_path / "embeddings"

    synced = hub_cli("sync", "-f", lockfile, option, folder)
    assert synced.exit_code == 0, synced.output
    assert [line.split()[-1] for line in synced.stdout.splitlines()] == ["written", "written"]
    assert digest_of(folder / f"{first}.safetensors") == a.digest
    assert digest_of(folder / f"{second}.safetensors") == b.digest
    before = _snapshot(folder)

    again = hub_cli("sync", "-f", lockfile, option, folder)
    assert again.exit_code == 0, again.output
    assert [line.split()[-1] for line in again.stdout.splitlines()] == ["unchanged"] * 2
    assert _snapshot(folder) == before, "a repeated sync rewrote files"

    # A new version of a pin replaces the file sync wrote (it is ours), without --force.
    newer = random_embedding(token=f"<{first}>")
    _push(live, tmp_path, newer, first)
    _lock(hub_cli, tmp_path, f"alice/{first}")
    moved = hub_cli("sync", "-f", lockfile, option, folder)
    assert moved.exit_code == 0, moved.output
    assert "replaced" in moved.stdout and digest_of(folder / f"{first}.safetensors") == newer.digest

    # Someone else's file of that name: refused, and nothing at all is written.
    foreign = random_embedding(token=f"<{second}>")
    write_embedding(foreign, folder / f"{second}.safetensors", "a1111")
    newest = random_embedding(token=f"<{first}>")
    _push(live, tmp_path, newest, first)
    _lock(hub_cli, tmp_path, f"alice/{first}")
    held = _snapshot(folder)
    refused = hub_cli("sync", "-f", lockfile, option, folder)
    assert refused.exit_code == 1, refused.output
    assert foreign.digest in refused.stderr and f"alice/{second}" in refused.stderr
    assert _snapshot(folder) == held, "a refused sync wrote files"
    forced = hub_cli("sync", "-f", lockfile, option, folder, "--force")
    assert forced.exit_code == 0, forced.output
    assert digest_of(folder / f"{second}.safetensors") == b.digest
    assert digest_of(folder / f"{first}.safetensors") == newest.digest
    manifest = json.loads((folder / ".lexicon-hub.json").read_text())
    assert set(manifest) == {f"{first}.safetensors", f"{second}.safetensors"}
