"""Presigned download URLs. Swift's s3api checks SigV4 for real, so it proves that a URL works
untouched and is refused once tampered with or expired; moto does not check signatures, so
against moto only the happy path is meaningful."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from registry.storage import LocalBlobStore
from registry.storage.s3 import S3BlobStore
from tests.services.moto import S3Endpoint


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_blob(endpoint: S3Endpoint, data: bytes) -> tuple[S3BlobStore, str]:
    store = S3BlobStore(
        bucket=endpoint.new_bucket(),
        endpoint_url=endpoint.url,
        region=endpoint.region,
        access_key=endpoint.access_key,
        secret=endpoint.secret,
    )
    store.put(digest_of(data), data)
    return store, digest_of(data)


def flip(ch: str) -> str:
    return "0" if ch != "0" else "1"


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(params=["moto", "swift"])
def s3_endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    return request.getfixturevalue(f"{request.param}_endpoint")  # type: ignore[no-any-return]


def test_presigned_url_downloads_exact_bytes_with_filename(s3_endpoint: S3Endpoint) -> None:
    data = os.urandom(20_000)
    store, digest = stored_blob(s3_endpoint, data)
    url = store.presigned_url(digest, filename="cat-toy.safetensors", expires_s=60)
    assert url is not None
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and 'filename="cat-toy.safetensors"' in disposition


def test_presigned_url_without_filename(s3_endpoint: S3Endpoint) -> None:
    store, digest = stored_blob(s3_endpoint, b"no name given")
    url = store.presigned_url(digest, filename=None, expires_s=60)
    assert url is not None and "response-content-disposition" not in url
    assert httpx.get(url).content == b"no name given"


def test_tampered_signature_is_refused(swift_endpoint: S3Endpoint) -> None:
    store, digest = stored_blob(swift_endpoint, b"signed bytes")
    url = store.presigned_url(digest, filename=None, expires_s=60)
    assert url is not None and httpx.get(url).status_code == 200
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    forged = signature[:-1] + flip(signature[-1])
    assert httpx.get(with_query(url, **{"X-Amz-Signature": forged})).status_code == 403


def test_signature_does_not_carry_over_to_another_blob(swift_endpoint: S3Endpoint) -> None:
    store, digest = stored_blob(swift_endpoint, b"public blob")
    other = b"another blob in the same bucket"
    store.put(digest_of(other), other)
    url = store.presigned_url(digest, filename=None, expires_s=60)
    assert url is not None
    hex_this, hex_other = digest.removeprefix("sha256:"), digest_of(other).removeprefix("sha256:")
    moved = url.replace(f"/{hex_this[:2]}/{hex_this}", f"/{hex_other[:2]}/{hex_other}")
    assert moved != url
    response = httpx.get(moved)
    assert response.status_code == 403
    assert other not in response.content


def test_tampered_filename_is_refused(swift_endpoint: S3Endpoint) -> None:
    store, digest = stored_blob(swift_endpoint, b"named bytes")
    url = store.presigned_url(digest, filename="a.safetensors", expires_s=60)
    assert url is not None
    forged = with_query(url, **{"response-content-disposition": "attachment; filename=evil.exe"})
    assert httpx.get(forged).status_code == 403


def test_expired_url_is_refused(swift_endpoint: S3Endpoint) -> None:
    store, digest = stored_blob(swift_endpoint, b"short-lived")
    url = store.presigned_url(digest, filename=None, expires_s=1)
    assert url is not None
    time.sleep(2)
    assert httpx.get(url).status_code == 403


def test_local_store_has_no_presigned_urls(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put(digest_of(b"x"), b"x")
    assert store.presigned_url(digest_of(b"x"), filename="x.safetensors", expires_s=60) is None
