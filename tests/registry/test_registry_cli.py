"""``lexicon-registry``: create-user prints a working token, gc removes orphan blobs only,
serve answers health checks on the embedded default."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from client.core.canonical import serialize_safetensors
from registry.app import create_app
from registry.cli import app as cli
from registry.settings import Settings
from tests.registry.helpers import Hub, auth, embedding_bytes, random_vectors
from tests.services import free_port, wait_until_serving

BIN = Path(sys.executable).parent / "lexicon-registry"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEXICON_")}
    return {**env, **extra}


def _settings_env(settings: Settings) -> dict[str, str]:
    """The ``LEXICON_*`` variables that point the CLI at ``settings``'s database and store."""
    env = {
        "LEXICON_DATA_DIR": str(settings.data_dir),
        "LEXICON_DATABASE_URL": settings.resolved_database_url,
        "LEXICON_STORAGE": settings.storage,
    }
    if settings.storage == "s3":
        env.update(
            {
                "LEXICON_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
                "LEXICON_S3_BUCKET": settings.s3_bucket,
                "LEXICON_S3_ACCESS_KEY_ID": str(settings.s3_access_key_id),
                "LEXICON_S3_SECRET_ACCESS_KEY": str(settings.s3_secret_access_key),
            }
        )
    return env


def test_create_user_prints_a_token_that_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("LEXICON_")]:
        monkeypatch.delenv(key)
    data = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["create-user", "alice", "--data-dir", str(data), "--org", "acme"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("lxh_")
    again = CliRunner().invoke(cli, ["create-user", "alice", "--data-dir", str(data)])
    assert again.exit_code != 0  # the name is taken

    with TestClient(create_app(Settings(data_dir=data))) as client:
        who = client.get("/api/v1/whoami", headers=auth(token)).json()
        assert who["username"] == "alice" and who["orgs"] == {"acme": "owner"}
        for ns in ("alice", "acme"):
            response = client.post(
                f"/api/v1/embeddings/{ns}/cat/versions",
                files={"file": ("c.safetensors", embedding_bytes())},
                headers=auth(token),
            )
            assert response.status_code == 201, response.text


def test_gc_removes_orphans_and_keeps_referenced_blobs(hub: Hub) -> None:
    token = hub.user("alice")
    kept = hub.published("alice", "cat", token)["digest"]
    deleted_embedding = hub.published("alice", "gone", token)["digest"]
    assert (
        hub.client.delete("/api/v1/embeddings/alice/gone", headers=auth(token)).status_code == 204
    )
    orphan = random_vectors()
    hub.store.put(orphan.digest, serialize_safetensors(orphan.vectors))
    assert hub.store.exists(orphan.digest)

    # No grace period: nothing publishes here (tests/registry/test_gc.py covers the grace).
    runner = CliRunner(env={**_settings_env(hub.settings), "LEXICON_GC_MIN_AGE_SECONDS": "0"})
    dry = runner.invoke(cli, ["gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete {orphan.digest}" in dry.output and "2 orphan" in dry.output
    assert hub.store.exists(orphan.digest)

    result = runner.invoke(cli, ["gc"])
    assert result.exit_code == 0, result.output
    assert f"deleted {orphan.digest}" in result.output
    assert f"deleted {deleted_embedding}" in result.output
    assert kept not in result.output
    assert not hub.store.exists(orphan.digest) and not hub.store.exists(deleted_embedding)
    assert hub.store.exists(kept)
    assert "sha256:" + hashlib.sha256(hub.store.get(kept)).hexdigest() == kept
    assert "0 orphan" in runner.invoke(cli, ["gc"]).output


def test_serve_answers_health_checks(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "served"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(proc, base, tmp_path / "serve.log")
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert (data / "registry.db").exists()
        # the embedded default serves the API too
        anonymous = httpx.get(f"{base}/api/v1/embeddings", timeout=5)
        assert anonymous.status_code == 200 and anonymous.json()["items"] == []
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
