"""Rate limits (issue 8, defect 8): sign-in and token creation per address, guessed tokens,
each token's own budget, anonymous traffic — on the in-process app (fresh counters per app) with
tiny limits, on both backends (the caller is looked up in SQLite or PostgreSQL before the limits
count). Wire-level limits on slow and large requests are in test_limits.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.registry.helpers import Hub, assert_problem, auth


def _burst_until_limited(call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Call until the first 429 (or 5 s): per-second windows end on whole seconds, so a burst
    is refused within a window or two, however the calls fall across the second boundary."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answers.append(call())
        if answers[-1].status_code == 429:
            break
    return answers


def _assert_rate_limited(response: httpx.Response) -> None:
    assert_problem(response, 429, "rate_limited")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 60


def test_sign_in_and_token_creation_are_rate_limited_per_address(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub(backend, rate_limit_signin_per_minute=3, open_signup=True)
    token = hub.user("alice")
    answers = [
        hub.client.post("/api/v1/tokens", json={"name": f"t{i}"}, headers=auth(token))
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    _assert_rate_limited(hub.client.post("/api/v1/tokens", json={}, headers=auth(token)))
    # sign-up shares the budget: a script cannot create accounts to get round it
    _assert_rate_limited(
        hub.client.post("/api/v1/users", json={"username": "mallory", "password": "x" * 12})
    )
    # other traffic is not held back, nor an admin creating accounts
    assert hub.client.get("/api/v1/whoami", headers=auth(token)).status_code == 200
    admin = hub.user("root", admin=True)
    created = hub.client.post("/api/v1/users", json={"username": "carol"}, headers=auth(admin))
    assert created.status_code == 201, created.text


def test_guessing_tokens_is_rate_limited(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub(backend, rate_limit_failed_auth_per_minute=3)
    token = hub.user("alice")
    for i in range(3):
        guess = hub.client.get("/api/v1/whoami", headers=auth(f"lxh_guess{i}"))
        assert_problem(guess, 401, "unauthorized")
    _assert_rate_limited(hub.client.get("/api/v1/whoami", headers=auth("lxh_guess9")))
    # the real token still works from the same address
    assert hub.client.get("/api/v1/whoami", headers=auth(token)).status_code == 200


def test_each_token_has_its_own_request_budget(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub(backend, rate_limit_token_per_second=3)
    alice, bob = hub.user("alice"), hub.user("bob")
    answers = _burst_until_limited(lambda: hub.client.get("/api/v1/whoami", headers=auth(alice)))
    *allowed, refused = answers
    assert len(allowed) >= 3 and all(a.status_code == 200 for a in allowed)
    _assert_rate_limited(refused)
    assert hub.client.get("/api/v1/whoami", headers=auth(bob)).status_code == 200


def test_anonymous_traffic_is_limited_but_health_checks_are_not(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub(backend, rate_limit_anonymous_per_second=2)
    *allowed, refused = _burst_until_limited(lambda: hub.client.get("/api/v1/embeddings"))
    assert len(allowed) >= 2 and all(a.status_code == 200 for a in allowed)
    _assert_rate_limited(refused)
    for _ in range(5):
        assert hub.client.get("/healthz").status_code == 200
        assert hub.client.get("/readyz").status_code == 200


def test_answers_carry_the_limit_that_counted_them(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    """RateLimit-* headers (IETF draft) name the first rule that counted the request; exempt
    paths carry none. A sign-up without a token counts against sign-in and anonymous traffic,
    and reports the sign-in budget."""
    hub: Hub = make_hub(
        backend,
        rate_limit_anonymous_per_second=50,
        rate_limit_token_per_second=40,
        rate_limit_signin_per_minute=7,
        open_signup=True,
    )
    token = hub.user("alice")
    anonymous = hub.client.get("/api/v1/embeddings")
    assert anonymous.headers["ratelimit-limit"] == "50"
    assert anonymous.headers["ratelimit-policy"] == "50; w=1"
    assert 0 <= int(anonymous.headers["ratelimit-remaining"]) < 50
    assert 0 <= int(anonymous.headers["ratelimit-reset"]) <= 1
    with_token = hub.client.get("/api/v1/whoami", headers=auth(token))
    assert with_token.headers["ratelimit-policy"] == "40; w=1"
    sign_up = hub.client.post("/api/v1/users", json={"username": "bob", "password": "x" * 12})
    assert sign_up.status_code == 201, sign_up.text
    assert sign_up.headers["ratelimit-policy"] == "7; w=60"
    assert sign_up.headers["ratelimit-remaining"] == "6"
    assert "ratelimit-limit" not in hub.client.get("/healthz").headers


def test_a_refusal_reports_the_exhausted_budget(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub: Hub = make_hub(backend, rate_limit_failed_auth_per_minute=2)
    for i in range(2):
        assert hub.client.get("/api/v1/whoami", headers=auth(f"lxh_guess{i}")).status_code == 401
    refused = hub.client.get("/api/v1/whoami", headers=auth("lxh_guess2"))
    _assert_rate_limited(refused)
    assert refused.headers["ratelimit-policy"] == "2; w=60"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert "x-request-id" in refused.headers
