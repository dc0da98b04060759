"""One conformance suite for every blob-store backend (distribution's testsuites.Driver idea):
the same behaviour on a local directory, moto's S3 over HTTP and Swift's real S3 layer, and a
backend that leaves files behind fails it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from client.core.errors import BadRequest, DigestMismatch, NotFound, Unavailable
from registry.settings import Settings
from registry.storage import BlobStore, LocalBlobStore, blob_key, blob_store_from_settings
from registry.storage.s3 import S3BlobStore
from tests.services import free_port
from tests.services.moto import S3Endpoint


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def s3_store(endpoint: S3Endpoint) -> S3BlobStore:
    return S3BlobStore(
        bucket=endpoint.new_bucket(),
        endpoint_url=endpoint.url,
        region=endpoint.region,
        access_key=endpoint.access_key,
        secret=endpoint.secret,
    )


def inventory(store: BlobStore) -> list[str]:
    """Everything the backend holds, blob or not (temp files and stray keys included)."""
    if isinstance(store, LocalBlobStore):
        if not store.root.exists():
            return []
        return sorted(
            p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()
        )
    assert isinstance(store, S3BlobStore)
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(params=["local", "moto", "swift"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    return s3_store(endpoint)


def test_round_trip_and_layout(store: BlobStore) -> None:
    data = b"textual inversion vectors"
    digest = digest_of(data)
    assert not store.exists(digest)
    store.put(digest, data)
    assert store.exists(digest)
    assert store.get(digest) == data
    assert b"".join(store.open_stream(digest)) == data
    assert store.size(digest) == len(data)
    assert list(store.iter_digests()) == [digest]
    assert inventory(store) == [blob_key(digest)]
    store.delete(digest)
    assert not store.exists(digest)
    assert inventory(store) == []


def test_put_existing_blob_is_a_noop(store: BlobStore) -> None:
    data = b"same bytes twice"
    store.put(digest_of(data), data)
    store.put(digest_of(data), data)
    assert inventory(store) == [blob_key(digest_of(data))]
    assert store.get(digest_of(data)) == data


def test_digest_mismatch_leaves_nothing_behind(store: BlobStore) -> None:
    claimed = digest_of(b"what the client said")
    with pytest.raises(DigestMismatch):
        store.put(claimed, b"what actually arrived")
    assert not store.exists(claimed)
    assert inventory(store) == []


def test_mismatch_cannot_overwrite_an_existing_blob(store: BlobStore) -> None:
    data = b"the real bytes"
    store.put(digest_of(data), data)
    with pytest.raises(DigestMismatch):
        store.put(digest_of(data), b"forged bytes")
    assert store.get(digest_of(data)) == data
    assert inventory(store) == [blob_key(digest_of(data))]


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    missing = digest_of(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.get(missing)
    with pytest.raises(NotFound):
        store.size(missing)
    with pytest.raises(NotFound):
        store.open_stream(missing)
    store.delete(missing)  # deleting what is gone is not an error for garbage collection
    assert list(store.iter_digests()) == []


def test_100kb_blob_round_trips_byte_exact(store: BlobStore) -> None:
    data = os.urandom(100 * 1024)
    digest = digest_of(data)
    store.put(digest, data)
    assert store.get(digest) == data
    assert b"".join(store.open_stream(digest)) == data
    assert store.size(digest) == len(data)


def test_iter_digests_lists_every_blob(store: BlobStore) -> None:
    blobs = [f"blob {i}".encode() for i in range(5)]
    for data in blobs:
        store.put(digest_of(data), data)
    assert sorted(store.iter_digests()) == sorted(digest_of(b) for b in blobs)
    store.check()


@pytest.mark.parametrize(
    "bad",
    ["", "sha256:", "sha256:" + "A" * 64, "md5:" + "a" * 64, "sha256:" + "a" * 63, "../etc"],
)
def test_malformed_digest_is_a_bad_request(store: BlobStore, bad: str) -> None:
    with pytest.raises(BadRequest):
        store.put(bad, b"x")
    with pytest.raises(BadRequest):
        store.get(bad)
    assert inventory(store) == []


def test_blob_key_layout() -> None:
    digest = "sha256:" + "ab" + "c" * 62
    assert blob_key(digest) == "blobs/sha256/ab/ab" + "c" * 62


def test_unreachable_s3_is_unavailable() -> None:
    store = S3BlobStore("b", f"http://127.0.0.1:{free_port()}", access_key="k", secret="s")
    with pytest.raises(Unavailable):
        store.get(digest_of(b"x"))
    with pytest.raises(Unavailable):
        store.check()


def test_settings_pick_the_backend(tmp_path: Path, moto_endpoint: S3Endpoint) -> None:
    local = blob_store_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "blobs"
    bucket = f"created-at-start-{free_port()}"
    settings = Settings(
        data_dir=tmp_path,
        storage="s3",
        s3_endpoint_url=moto_endpoint.url,
        s3_bucket=bucket,
        s3_access_key_id=moto_endpoint.access_key,
        s3_secret_access_key=moto_endpoint.secret,
    )
    s3 = blob_store_from_settings(settings)
    s3.check()  # creates the missing bucket (s3_create_bucket defaults to true)
    data = os.urandom(64)
    s3.put(digest_of(data), data)
    assert s3.get(digest_of(data)) == data


def test_unknown_storage_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LEXICON_STORAGE"):
        blob_store_from_settings(Settings(data_dir=tmp_path, storage="ftp"))
