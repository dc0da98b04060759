"""The OpenAPI document's name pattern is the registry's name rule, not an approximation: a
client generated from the document must accept exactly the names the registry accepts."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from client.core.errors import BadName
from client.core.names import validate_slug
from registry.openapi import SLUG, document_problems


def _registry_accepts(value: str) -> bool:
    try:
        validate_slug(value)
    except BadName:
        return False
    return True


def _document_accepts(value: str) -> bool:
    """As JSON Schema (ECMA-262) reads the pattern: ``$`` is the end of the string only."""
    pattern = SLUG["pattern"].removesuffix("$") + r"\Z"
    return len(value) <= SLUG["maxLength"] and re.search(pattern, value) is not None


@settings(max_examples=400, database=None, derandomize=True)
@given(st.text(alphabet="ab09._-Z\n/", max_size=70))
def test_the_documented_name_pattern_is_the_registry_rule(value: str) -> None:
    assert _document_accepts(value) == _registry_accepts(value), repr(value)


def test_known_names_either_way() -> None:
    for good in ("a", "alice", "my-emb_2", "v1.5", "a_", "x.-y"):
        assert _document_accepts(good) and _registry_accepts(good), good
    for bad in ("", "a.", "a-", "a..b", "-a", ".a", "A", "a\n", "a" * 65):
        assert not _document_accepts(bad) and not _registry_accepts(bad), bad


def test_every_operation_documents_problems_and_keeps_the_input_untouched() -> None:
    document = {"paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    out = document_problems(document)
    assert document == {"paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    responses = out["paths"]["/x"]["get"]["responses"]
    assert {"200", "400", "401", "403", "404", "429", "500"} <= set(responses)
    assert "application/problem+json" in responses["404"]["content"]
