"""Accounts over HTTP: sign-up is closed unless the setting opens it, passwords are stored as
argon2id hashes, org owners manage members, and the last owner cannot leave."""

from __future__ import annotations

from typing import Any

from registry.accounts.models import User
from registry.accounts.services import verify_password
from tests.registry.helpers import assert_problem, auth


def test_signup_is_closed_by_default_and_admins_create_users(make_hub: Any) -> None:
    hub = make_hub("sqlite-local")
    anonymous = hub.client.post("/api/v1/users", json={"username": "mallory", "password": "pw"})
    assert_problem(anonymous, 401, "unauthorized")
    plain = hub.user("alice")
    refused = hub.client.post("/api/v1/users", json={"username": "m2"}, headers=auth(plain))
    assert_problem(refused, 403, "forbidden")

    admin = hub.user("root", admin=True, scopes=["read", "write", "admin"])
    created = hub.client.post(
        "/api/v1/users",
        json={"username": "carol", "password": "correct horse"},
        headers=auth(admin),
    )
    assert created.status_code == 201, created.text
    carol_token = created.json()["token"]
    assert hub.get("/api/v1/whoami", carol_token).json()["username"] == "carol"

    (carol,) = [u for u in hub.rows(User) if u.username == "carol"]
    assert carol.password_hash.startswith("$argon2id$")
    assert "correct horse" not in carol.password_hash
    assert verify_password(carol, "correct horse") and not verify_password(carol, "wrong")


def test_open_signup_gives_a_first_token(make_hub: Any) -> None:
    hub = make_hub("sqlite-local", open_signup=True)
    answer = hub.client.post("/api/v1/users", json={"username": "dave", "password": "pw"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["is_admin"] is False
    taken = hub.client.post("/api/v1/users", json={"username": "dave"})
    assert_problem(taken, 409, "conflict")
    bad = hub.client.post("/api/v1/users", json={"username": "Not Valid"})
    assert_problem(bad, 422, "bad_name")


def test_org_owners_manage_members_and_the_last_owner_stays(make_hub: Any) -> None:
    hub = make_hub("sqlite-local")
    alice, bob = hub.user("alice"), hub.user("bob")
    made = hub.client.post("/api/v1/orgs", json={"name": "acme"}, headers=auth(alice))
    assert made.status_code == 201, made.text
    added = hub.client.put(
        "/api/v1/orgs/acme/members/bob", json={"role": "reader"}, headers=auth(alice)
    )
    assert added.status_code == 200, added.text
    members = hub.get("/api/v1/orgs/acme/members", bob).json()["items"]
    assert {m["username"]: m["role"] for m in members} == {"alice": "owner", "bob": "reader"}
    # a reader cannot manage members; an outsider does not even see the member list
    promote = hub.client.put(
        "/api/v1/orgs/acme/members/bob", json={"role": "owner"}, headers=auth(bob)
    )
    assert_problem(promote, 403, "forbidden")
    assert_problem(hub.get("/api/v1/orgs/acme/members", hub.user("eve")), 404, "not_found")
    leave = hub.client.delete("/api/v1/orgs/acme/members/alice", headers=auth(alice))
    assert_problem(leave, 409, "conflict")
