"""Downloads through a real S3 implementation that checks signatures (OpenStack Swift's S3
layer): the registry's 307 points at a presigned URL that works, is signed for the public
endpoint, and is refused once tampered with (moto checks no signatures, so only Swift shows it)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from registry.app import create_app
from registry.migrations import upgrade
from registry.settings import Settings
from tests.registry.helpers import Hub, embedding_bytes


@pytest.fixture
def swift_hub(swift_endpoint: Any, new_postgres_database: Any, tmp_path: Path) -> Any:
    public = swift_endpoint.url.replace("127.0.0.1", "localhost")
    settings = Settings(
        data_dir=tmp_path,
        database_url=new_postgres_database(),
        storage="s3",
        s3_endpoint_url=swift_endpoint.url,
        s3_public_endpoint_url=public,
        s3_bucket=swift_endpoint.new_bucket(),
        s3_access_key_id=swift_endpoint.access_key,
        s3_secret_access_key=swift_endpoint.secret,
        presign_seconds=60,
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    with TestClient(app) as client:
        yield Hub("postgres-swift", settings, app, client), public


def test_presigned_redirect_is_signed_for_the_public_endpoint(swift_hub: Any) -> None:
    hub, public = swift_hub
    token = hub.user("alice")
    version = hub.published("alice", "brand", token, embedding_bytes())

    answer = hub.get("/api/v1/embeddings/alice/brand/versions/1/file", follow_redirects=False)
    assert answer.status_code == 307
    url = answer.headers["location"]
    assert url.startswith(public + "/"), url

    body = httpx.get(url).content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == version["digest"]

    # One changed character of the signature, or another key, and Swift refuses the URL.
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    forged = url.replace(signature, signature[:-1] + ("0" if signature[-1] != "0" else "1"))
    assert httpx.get(forged).status_code == 403
    other_key = url.replace(version["digest"].split(":")[1][:8], "00000000", 1)
    assert httpx.get(other_key).status_code in (403, 404)
