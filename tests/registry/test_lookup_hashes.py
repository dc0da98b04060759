"""By-hash lookup finds a version by the hash of any file a user may hold for it (issue 9.5),
and never by a hash someone merely claimed (issue 8.6: squatting).

A1111 records the sha256 of the file on disk and shows its first 10 hex digits; Civitai shows
10 (AutoV2) or 12 (AutoV3, sha256 of a safetensors file's body)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from typing import Any

import httpx
import numpy as np
import pytest

from client.core.canonical import canonical_bytes, serialize_safetensors
from client.core.embedding import Embedding as Vectors
from client.core.writers import FORMATS, embedding_to_bytes
from tests.registry.helpers import Hub, assert_problem, auth, random_vectors

BASE = "/api/v1/embeddings"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def autov3(data: bytes) -> str:
    (n,) = struct.unpack("<Q", data[:8])
    return sha(data[8 + n :])


def diffusers_file(vectors: Vectors, token: str = "<mine>") -> bytes:
    """The original a user might have: a diffusers safetensors ``{token: [n, 768]}``."""
    return serialize_safetensors({token: vectors.vectors["emb_params"]}, {"format": "pt"})


def kohya_file(vectors: Vectors) -> bytes:
    return embedding_to_bytes(vectors, "kohya", token="a kohya title")[""]


def a1111_pt(vectors: Vectors) -> bytes:
    """An A1111 ``.pt`` as A1111 writes it (torch pickle), produced with torch; the registry
    reads it with the restricted unpickler only."""
    torch = pytest.importorskip("torch")
    param = torch.from_numpy(np.ascontiguousarray(vectors.vectors["emb_params"]))
    buffer = io.BytesIO()
    torch.save(
        {"string_to_token": {"*": 265}, "string_to_param": {"*": param}, "name": "x", "step": 9},
        buffer,
    )
    return buffer.getvalue()


def publish(
    hub: Hub,
    ref: str,
    token: str | None,
    vectors: Vectors,
    original: bytes | None = None,
    meta: dict[str, Any] | None = None,
):  # type: ignore[no-untyped-def]
    files: dict[str, Any] = {
        "file": ("e.safetensors", canonical_bytes(vectors), "application/octet-stream")
    }
    if original is not None:
        files["original"] = ("original.bin", original, "application/octet-stream")
    form = {"metadata": json.dumps(meta)} if meta is not None else None
    return hub.client.post(f"{BASE}/{ref}/versions", files=files, data=form, headers=auth(token))


def found(hub: Hub, value: str, token: str | None = None) -> dict[str, set[str]]:
    """ref -> kinds that matched ``value``."""
    response = hub.get(f"/api/v1/lookup?hash={value}", token)
    assert response.status_code == 200, response.text
    return {i["ref"]: {m["kind"] for m in i.get("matched", [])} for i in response.json()["items"]}


def test_a_claimed_source_hash_is_never_listed(hub: Hub) -> None:
    alice, mallory = hub.user("alice"), hub.user("mallory")
    mine = random_vectors(token="<mine>")
    original = diffusers_file(mine)
    assert publish(hub, "alice/mine", alice, mine, original).status_code == 201
    # Mallory claims Alice's file as the source of his own vectors.
    squat = publish(
        hub, "mallory/squat", mallory, random_vectors(), meta={"source_sha256": sha(original)}
    )
    assert squat.status_code == 201, squat.text
    for value in (sha(original), sha(original)[:10], sha(original)[:12]):
        assert set(found(hub, value)) == {"alice/mine@1"}, value
        assert found(hub, value)["alice/mine@1"] == {"original"}
    assert squat.json()["upload_sha256"] != sha(original)  # the claim is not shown either


def test_an_original_holding_other_vectors_is_refused_and_nothing_is_stored(hub: Hub) -> None:
    alice = hub.user("alice")
    upload, other = random_vectors(), random_vectors()
    refused = publish(hub, "alice/cat", alice, upload, diffusers_file(other))
    body = assert_problem(refused, 422, "original_mismatch")
    assert upload.digest in body["detail"] and other.digest in body["detail"]
    assert not hub.store.exists(upload.digest)
    assert hub.get(f"{BASE}/alice/cat", alice).status_code == 404
    junk = publish(hub, "alice/cat", alice, upload, b"not an embedding at all")
    assert junk.status_code in (415, 422), junk.text
    assert "original file" in junk.json()["detail"]
    assert not hub.store.exists(upload.digest)


def test_the_short_hashes_of_a_pushed_original_find_the_version(hub: Hub) -> None:
    alice = hub.user("alice")
    vectors = random_vectors(token="<pt>")
    pt = a1111_pt(vectors)
    created = publish(hub, "alice/pt", alice, vectors, pt)
    assert created.status_code == 201, created.text
    assert created.json()["upload_sha256"] == sha(pt)
    for value in (sha(pt), sha(pt)[:10], sha(pt)[:12], "sha256:" + sha(pt)):
        assert found(hub, value) == {"alice/pt@1": {"original"}}, value
    # A safetensors original is also found by Civitai's AutoV3 of it.
    kohya = kohya_file(random_vectors(seed=7))
    assert publish(hub, "alice/ko", alice, random_vectors(seed=7), kohya).status_code == 201
    assert "alice/ko@1" in found(hub, autov3(kohya)[:12])
    assert found(hub, sha(kohya)[:10]) == {"alice/ko@1": {"original"}}


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_every_served_format_is_found_by_the_hash_of_the_served_file(hub: Hub, family: str) -> None:
    alice = hub.user("alice")
    vectors = random_vectors(family, 2, token="<fmt>")
    assert publish(hub, "alice/fmt", alice, vectors).status_code == 201
    for fmt in FORMATS:
        response = hub.get(f"{BASE}/alice/fmt/versions/1/file?format={fmt}", follow_redirects=False)
        if response.status_code == 307:  # S3: canonical bytes come from storage
            response = httpx.get(response.headers["location"], timeout=10)
        assert response.status_code == 200, (fmt, response.text)
        files = [response.content]
        if response.headers["content-type"] == "application/zip":  # SDXL diffusers pair
            archive = zipfile.ZipFile(io.BytesIO(response.content))
            files = [archive.read(n) for n in archive.namelist()]
        for content in files:
            for value in (sha(content), sha(content)[:10], sha(content)[:12]):
                hits = found(hub, value)
                assert "alice/fmt@1" in hits, (fmt, value, hits)


def test_two_originals_pushed_to_the_same_name_are_both_found(hub: Hub) -> None:
    alice = hub.user("alice")
    vectors = random_vectors(token="<two>")
    first, second = diffusers_file(vectors), kohya_file(vectors)
    assert publish(hub, "alice/two", alice, vectors, first).status_code == 201
    again = publish(hub, "alice/two", alice, vectors, second)
    assert again.status_code == 200 and again.json()["created"] is False, again.text
    for original in (first, second):
        assert found(hub, sha(original)[:10]) == {"alice/two@1": {"original"}}


def test_private_versions_are_found_only_by_their_namespace(hub: Hub) -> None:
    alice, bob = hub.user("alice"), hub.user("bob")
    vectors = random_vectors(token="<hid>")
    original = diffusers_file(vectors)
    created = publish(hub, "alice/hid", alice, vectors, original, {"visibility": "private"})
    assert created.status_code == 201, created.text
    for value in (sha(original)[:10], vectors.digest, vectors.digest[7:19]):
        assert found(hub, value) == {}, value
        assert found(hub, value, bob) == {}, value
        assert "alice/hid@1" in found(hub, value, alice), value


def test_a_deleted_embedding_leaves_no_hash_behind(hub: Hub) -> None:
    """Rows go with their version, so a later version (which may reuse the row id on SQLite)
    is never found by the deleted one's files."""
    from registry.embeddings.models import VersionHash

    alice = hub.user("alice")
    vectors = random_vectors(token="<gone>")
    original = diffusers_file(vectors)
    assert publish(hub, "alice/gone", alice, vectors, original).status_code == 201
    assert hub.client.delete(f"{BASE}/alice/gone/", headers=auth(alice)).status_code == 204
    assert publish(hub, "alice/next", alice, random_vectors()).status_code == 201
    assert found(hub, sha(original)[:10], alice) == {}
    assert found(hub, vectors.digest, alice) == {}
    assert sha(original) not in {row.sha256 for row in hub.rows(VersionHash)}
