"""The registry stores only strictly valid safetensors (issue 8, defect 7): each malformed file
of :data:`tests.core.malformed_safetensors.MALFORMED` is refused with a 4xx and a stable code
naming the problem, on both backends, and nothing reaches the blob store or the database."""

from __future__ import annotations

from client.core.canonical import looks_like_safetensors
from client.core.errors import ErrorCode
from tests.core.malformed_safetensors import MALFORMED
from tests.registry.helpers import Hub, assert_problem


def test_registry_refuses_each_malformed_file_and_stores_nothing(hub: Hub) -> None:
    token = hub.user("alice")
    for case in MALFORMED:
        # A file that does not even start like safetensors is "not canonical" (415).
        code = case.error.code if looks_like_safetensors(case.data) else ErrorCode.NOT_CANONICAL
        status = 415 if code == ErrorCode.NOT_CANONICAL else 422
        body = assert_problem(hub.publish("alice", "cat", token, case.data), status, code.value)
        if code == ErrorCode.MALFORMED_SAFETENSORS:
            assert case.says in body["detail"], (case.id, body["detail"])
    assert list(hub.store.iter_digests()) == []
    assert hub.get("/api/v1/embeddings/alice/cat", token).status_code == 404
