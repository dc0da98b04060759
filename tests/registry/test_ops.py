"""Operations: health and readiness (naming what is down), Prometheus metrics, the OpenAPI
document and page, request ids in headers, problem bodies and JSON logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from litestar.testing import TestClient

from registry.app import create_app
from registry.migrations import upgrade
from registry.ops import JsonFormatter
from registry.settings import Settings
from tests.registry.helpers import Hub, assert_problem


def test_health_and_readiness(hub: Hub) -> None:
    assert hub.get("/healthz").json() == {"status": "ok"}
    ready = hub.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "database": "ok", "storage": "ok"}


def test_readyz_names_missing_storage(moto_endpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        storage="s3",
        s3_endpoint_url=moto_endpoint.url,
        s3_bucket="no-such-bucket-lexicon",
        s3_access_key_id=moto_endpoint.access_key,
        s3_secret_access_key=moto_endpoint.secret,
        s3_create_bucket=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200  # alive, but not ready
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["database"] == "ok"
        assert body["storage"].startswith("error") and "no-such-bucket-lexicon" in body["storage"]


def test_readyz_names_a_broken_database(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'missing-dir' / 'r.db'}"
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("error")
        assert ready.json()["storage"] == "ok"


def test_metrics_count_requests(hub: Hub) -> None:
    for _ in range(3):
        hub.get("/healthz")
    hub.get("/api/v1/embeddings/nobody/nothing")
    text = hub.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("lexicon_http_requests_total{")]
    counts = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}
    healthz = [v for k, v in counts.items() if '"/healthz"' in k and 'status="200"' in k]
    assert healthz == [3.0], counts
    assert any('status="404"' in k for k in counts), counts
    assert "lexicon_http_request_seconds_bucket" in text
    assert hub.get("/metrics").text.count('route="/healthz"') >= 1


def test_openapi_lists_the_routes(hub: Hub) -> None:
    doc = hub.get("/schema/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for path in (
        "/api/v1/embeddings",
        "/api/v1/embeddings/{namespace}/{name}",
        "/api/v1/embeddings/{namespace}/{name}/versions",
        "/api/v1/embeddings/{namespace}/{name}/versions/{ref}",
        "/api/v1/embeddings/{namespace}/{name}/versions/{ref}/file",
        "/api/v1/embeddings/{namespace}/{name}/tags/{tag}",
        "/api/v1/embeddings/{namespace}/{name}/star",
        "/api/v1/blobs/{digest}",
        "/api/v1/lookup",
        "/api/v1/whoami",
        "/api/v1/tokens",
    ):
        assert path in paths, (path, sorted(paths))
    assert "post" in paths["/api/v1/embeddings/{namespace}/{name}/versions"]
    page = hub.get("/schema")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_request_ids(hub: Hub) -> None:
    first, second = hub.get("/healthz"), hub.get("/healthz")
    assert first.headers["x-request-id"] and second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    given = hub.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert given.headers["x-request-id"] == "trace-123"
    missing = hub.client.get(
        "/api/v1/embeddings/nobody/nothing", headers={"X-Request-ID": "trace-404"}
    )
    body = assert_problem(missing, 404, "not_found")
    assert missing.headers["x-request-id"] == "trace-404" and body["request_id"] == "trace-404"


def test_requests_are_logged_as_json_with_their_id(hub: Hub) -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(JsonFormatter().format(record))

    handler = Collect()
    logger = logging.getLogger("registry.access")
    logger.addHandler(handler)
    try:
        hub.client.get("/healthz", headers={"X-Request-ID": "log-me"})
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(r) for r in records]
    mine = [e for e in entries if e.get("request_id") == "log-me"]
    assert mine and mine[0]["path"] == "/healthz" and mine[0]["status"] == 200


def test_a_request_id_we_cannot_echo_safely_is_replaced_not_a_500(hub: Hub) -> None:
    """Not UTF-8, or not a plain token: the request is served under an id of our own."""
    for given in (b"\xff\xfe", b"trace 1; x=2", b"a" * 65 + b"\x80"):
        r = hub.client.get("/healthz", headers={b"X-Request-ID": given})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] and r.headers["x-request-id"].encode() != given
