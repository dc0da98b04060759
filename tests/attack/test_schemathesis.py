"""Property-based probes of every documented route: schemathesis reads the registry's own
``/schema/openapi.json`` from a live uvicorn registry (SQLite + local blobs) and sends bounded,
generated requests to each operation, anonymously and with a user's token. No answer may be a
server error, and every answer must match what the schema documents (status, content type,
body).

Bounded for the suite: ``MAX_EXAMPLES`` per operation and caller, no per-example deadline (the
machine is shared), Hypothesis' database off so runs do not depend on earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from registry.accounts import services as accounts
from registry.app import create_app
from registry.db import session_scope
from registry.migrations import upgrade
from tests.hub.conftest import _Server, _settings

MAX_EXAMPLES = 8


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
    from tests.attack.hostile_publish import good_file

    httpx.post(
        f"{url}/api/v1/embeddings/alice/cat/versions",
        files={"file": ("c.safetensors", good_file(1))},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    yield Probe(url, token)
    server.stop()


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def probe_every_operation(
    probe: Probe, headers: dict[str, str], checks: list[Any] | None = None
) -> tuple[int, list[str]]:
    """Run every documented operation's bounded examples; (operations, one line per failure).
    Each operation runs on its own so one failing route does not hide the others."""
    schema = schemathesis.openapi.from_url(f"{probe.url}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @BOUNDED
        def run(case: Any) -> None:
            case.call_and_validate(base_url=probe.url, headers=headers, checks=checks)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation reports
            found = [line[2:] for line in str(exc).splitlines() if line.startswith("- ")]
            text = "; ".join(found) or " ".join(str(exc).split())[:300]
            failures.append(f"{operation.method.upper()} {operation.path}: {text}")
    return operations, failures


@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_no_generated_request_is_a_server_error(probe: Probe, who: str) -> None:
    from schemathesis.checks import not_a_server_error

    headers = {"Authorization": f"Bearer {probe.token}"} if who == "alice" else {}
    operations, failures = probe_every_operation(probe, headers, [not_a_server_error])
    assert operations >= 20
    assert not failures, f"{len(failures)} of {operations} operations failed as {who}:\n" + (
        "\n".join(failures)
    )


@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_every_answer_matches_the_documented_schema(probe: Probe, who: str) -> None:
    headers = {"Authorization": f"Bearer {probe.token}"} if who == "alice" else {}
    operations, failures = probe_every_operation(probe, headers)
    assert operations >= 20
    assert not failures, f"{len(failures)} of {operations} operations failed as {who}:\n" + (
        "\n".join(failures)
    )


def test_the_schema_documents_every_api_route(probe: Probe) -> None:
    raw = httpx.get(f"{probe.url}/schema/openapi.json").json()
    assert len(raw["paths"]) >= 20, sorted(raw["paths"])
