"""Property-based probes of every documented route: schemathesis reads the registry's own
``/schema/openapi.json`` from a live uvicorn registry (SQLite + local blobs) and sends bounded,
generated requests to each operation, anonymously and with a user's token. No answer may be a
server error, and every answer must match what the schema documents (status, content type,
body).

Bounded for the suite: ``MAX_EXAMPLES`` per operation and caller, no per-example deadline (the
machine is shared), Hypothesis' database off so runs do not depend on earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET

from registry.accounts import services as accounts
from registry.app import create_app
from registry.db import session_scope
from registry.migrations import upgrade
from tests.attack.hostile_publish import good_file
from tests.hub.conftest import _Server, _settings

MAX_EXAMPLES = 15


class Probe:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token


@pytest.fixture(scope="module")
def probe(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Probe]:
    settings_ = _settings("sqlite-local", tmp_path_factory.mktemp("schemathesis"), request)
    upgrade(settings_.resolved_database_url)
    app = create_app(settings_)
    with session_scope(app.state.registry.engine) as session:
        user = accounts.create_user(session, "alice")
        token, _ = accounts.create_token(session, user, "probe")
    server = _Server(app)
    url = f"http://127.0.0.1:{server.port}"
    # Something to find: a public embedding the generated refs may hit.
    httpx.post(
        f"{url}/api/v1/embeddings/alice/cat/versions",
        files={"file": ("c.safetensors", good_file(1))},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    yield Probe(url, token)
    # schemathesis keeps its connections open; without force_exit uvicorn waits for them
    # until stop() gives up (10 s of nothing at the end of every run).
    server.server.force_exit = True
    server.stop()


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# What "responses match the documented schema" means (issue 8): no server error, the status is
# documented for the operation, the content type is documented for that status, the body
# validates against the documented schema and the documented headers are present.
RESPONSE_CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Operations whose valid inputs a schema cannot fully state, each with the reason: their
# answers are checked, but not that every schema-valid request is accepted. Every other
# operation must accept (2xx, or 401/403/404/409/429 for the caller) whatever the document
# calls valid. Kept short on purpose: a new entry needs a reason a reviewer would accept.
INPUTS_NOT_DESCRIBABLE = {
    # The multipart parts carry files the server parses (safetensors, PNG, JSON params); a
    # random part is schema-valid and rightly refused (tests/attack/test_hostile_corpus.py).
    "POST /api/v1/embeddings/{namespace}/{name}/versions": "a file part the server parses",
    "POST /api/v1/training-jobs": "images and params JSON the server parses",
    "PUT /api/v1/training-jobs/{job_id}/checkpoint": "a checkpoint file and a lease",
    "POST /api/v1/training-jobs/{job_id}/complete": "an embedding file and a lease",
}

# Query parameters that only the server mints (a random value is schema-valid and rightly
# refused, see the corpus' tampered cursors): the probe leaves them out.
OPAQUE_QUERY = {"cursor": "only a next_cursor the server returned is valid"}


def _integral_numbers_as_integers(value: Any) -> Any:
    """JSON Schema calls 3.0 an integer; the registry wants integers spelt as integers (as
    every client sends them) and refuses 3.0, so the probe spells them so."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_numbers_as_integers(v) for v in value]
    return value


def as_a_client_sends(case: Any) -> Any:
    for name in OPAQUE_QUERY:
        if case.query:
            case.query.pop(name, None)
    if case.body is not NOT_SET:
        case.body = _integral_numbers_as_integers(case.body)
    return case


def _bounded_run(
    operation: Any, url: str, headers: dict[str, str], checks: list[Any]
) -> Callable[[], None]:
    @given(case=operation.as_strategy().map(as_a_client_sends))
    @BOUNDED
    def run(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=checks)

    return run


def probe_every_operation(probe: Probe, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Run every documented operation's bounded examples through every check (one pass, so
    the suite pays for each request once); (operations, one line per failing operation).
    Each operation runs on its own so one failing route does not hide the others."""
    schema = schemathesis.openapi.from_url(f"{probe.url}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        label = f"{operation.method.upper()} {operation.path}"
        checks = list(RESPONSE_CONFORMANCE)
        if label not in INPUTS_NOT_DESCRIBABLE:
            checks.append(positive_data_acceptance)

        try:
            _bounded_run(operation, probe.url, headers, checks)()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation reports
            found = [line[2:] for line in str(exc).splitlines() if line.startswith("- ")]
            found += [line.strip() for line in str(exc).splitlines() if "curl" in line][:1]
            text = "; ".join(found) or " ".join(str(exc).split())[:300]
            failures.append(f"{label}: {text}")
    return operations, failures


@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_generated_requests_get_documented_answers_and_never_a_server_error(
    probe: Probe, who: str
) -> None:
    """For every documented operation, as an anonymous caller and as a user: no 5xx, every
    answer as documented (status, content type, body, headers), and every request the
    document calls valid accepted (not a 400/413/415/422): the document says what is valid,
    not just that a body is "an object"."""
    headers = {"Authorization": f"Bearer {probe.token}"} if who == "alice" else {}
    operations, failures = probe_every_operation(probe, headers)
    assert operations >= 20
    assert not failures, f"{len(failures)} of {operations} operations failed as {who}:\n" + (
        "\n".join(failures)
    )


def test_the_schema_documents_every_api_route(probe: Probe) -> None:
    raw = httpx.get(f"{probe.url}/schema/openapi.json").json()
    assert len(raw["paths"]) >= 20, sorted(raw["paths"])
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            not_found = operation["responses"].get("404", {}).get("content", {})
            assert "application/problem+json" in not_found, f"{method} {path}: 404 undocumented"


def test_a_publish_answer_matches_the_documented_version(probe: Probe) -> None:
    """The body schemathesis rarely reaches (a valid file): publish, then re-publish."""
    raw = httpx.get(f"{probe.url}/schema/openapi.json").json()
    path = "/api/v1/embeddings/{namespace}/{name}/versions"
    responses = raw["paths"][path]["post"]["responses"]
    data = good_file(77)
    for expected in (201, 200):
        got = httpx.post(
            f"{probe.url}/api/v1/embeddings/alice/documented/versions",
            files={"file": ("d.safetensors", data)},
            headers={"Authorization": f"Bearer {probe.token}"},
        )
        assert got.status_code == expected, got.text
        schema = responses[str(expected)]["content"]["application/json"]["schema"]
        jsonschema.validate(got.json(), {**schema, "components": raw["components"]})
