"""HTTP in/out for accounts: whoami, tokens, users, organisations and memberships."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put

from client.core.errors import BadRequest, Forbidden, NotFound
from registry import validation
from registry.context import Registry
from registry.db import session_scope

from . import services
from .access import Principal, require_owner, require_scope
from .models import ApiToken, Role, Scope, User


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes.split(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked": token.revoked_at is not None,
        "created_at": token.created_at.isoformat(),
    }


def user_json(user: User, *, show_admin: bool = True) -> dict[str, Any]:
    """``show_admin``: whether the caller may learn that this account is an admin (the user
    and admins may; anonymous callers and other users may not: it names targets)."""
    out: dict[str, Any] = {"username": user.username}
    if show_admin:
        out["is_admin"] = user.is_admin
    out["created_at"] = user.created_at.isoformat()
    return out


class AccountController(Controller):
    path = "/api/v1"
    tags = ["accounts"]

    @get("/whoami", sync_to_thread=False)
    def whoami(self, principal: Principal | None) -> dict[str, Any]:
        principal = require_scope(principal, Scope.READ)
        return {
            "username": principal.username,
            "is_admin": principal.is_admin,
            "scopes": sorted(principal.scopes),
            "orgs": dict(sorted(principal.roles.items())),
        }

    @post("/tokens", sync_to_thread=True, status_code=201)
    def create_token(
        self, registry: Registry, principal: Principal | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        """The secret is in this response only; we keep its hash."""
        principal = require_scope(principal, Scope.READ)
        scopes = services.parse_scopes(data.get("scopes"))
        name = validation.text(data.get("name"), "name", 100) or "token"
        days = data.get("expires_in_days")
        if days is not None:
            validation.integer(days, "expires_in_days", 1, services.MAX_TOKEN_DAYS)
        if not principal.has_scope(Scope.ADMIN) and not set(scopes) <= principal.scopes:
            raise Forbidden(f"a token with scopes {sorted(principal.scopes)} cannot grant {scopes}")
        with session_scope(registry.engine) as session:
            user = session.get(User, principal.user_id)
            secret, token = services.create_token(
                session,
                user,
                name,
                scopes,
                days,
            )
            return {**token_json(token), "token": secret}

    @get("/tokens", sync_to_thread=True)
    def list_tokens(self, registry: Registry, principal: Principal | None) -> dict[str, Any]:
        principal = require_scope(principal, Scope.READ)
        with session_scope(registry.engine) as session:
            return {
                "items": [token_json(t) for t in services.list_tokens(session, principal.user_id)]
            }

    @delete("/tokens/{token_id:str}", sync_to_thread=True, status_code=204)
    def revoke_token(self, registry: Registry, principal: Principal | None, token_id: str) -> None:
        principal = require_scope(principal, Scope.READ)
        number = validation.plain_decimal(token_id)  # int() would take '١' and '1_0'
        if number is None:
            raise NotFound(f"token {token_id!r} not found")
        with session_scope(registry.engine) as session:
            services.revoke_token(session, principal.user_id, number, admin=principal.is_admin)

    @post("/users", sync_to_thread=True, status_code=201)
    def create_user(
        self, registry: Registry, principal: Principal | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Admins create users; with LEXICON_OPEN_SIGNUP anyone may sign up (and gets a first
        token back)."""
        admin = principal is not None and principal.is_admin and principal.has_scope(Scope.ADMIN)
        if not admin and not registry.settings.open_signup:
            require_scope(principal, Scope.ADMIN)
            raise Forbidden("only admins create users here (sign-up is closed)")
        username = data.get("username")
        if not isinstance(username, str):
            raise BadRequest('\'username\' is required: send {"username": ..., "password": ...}')
        email = validation.text(data.get("email"), "email", 320)
        password = validation.text(data.get("password"), "password", services.MAX_PASSWORD)
        make_admin = validation.boolean(data.get("is_admin", False), "is_admin")
        with session_scope(registry.engine) as session:
            user = services.create_user(
                session,
                username,
                is_admin=make_admin and admin,
                email=email,
                password=password,
            )
            secret, token = services.create_token(session, user, "first token")
            return {**user_json(user), "token": secret}

    @get("/users/{username:str}", sync_to_thread=True)
    def get_user(
        self, registry: Registry, principal: Principal | None, username: str
    ) -> dict[str, Any]:
        show_admin = principal is not None and (
            principal.is_admin or principal.username == username
        )
        with session_scope(registry.engine) as session:
            return user_json(services.get_user(session, username), show_admin=show_admin)

    @post("/orgs", sync_to_thread=True, status_code=201)
    def create_org(
        self, registry: Registry, principal: Principal | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        principal = require_scope(principal, Scope.WRITE)
        with session_scope(registry.engine) as session:
            owner = session.get(User, principal.user_id)
            org = services.create_org(
                session,
                validation.text(data.get("name"), "name", 64, required=True),
                owner,
                validation.text(data.get("description"), "description", 2000) or "",
            )
            return {"name": org.name, "description": org.description, "role": Role.OWNER.value}

    @get("/orgs/{org_name:str}/members", sync_to_thread=True)
    def members(
        self, registry: Registry, principal: Principal | None, org_name: str
    ) -> dict[str, Any]:
        """Visible to the org's members (and admins) only."""
        with session_scope(registry.engine) as session:
            org = services.get_org(session, org_name)
            if principal is None or not (principal.is_admin or principal.role_in(org_name)):
                raise NotFound(f"organisation {org_name!r} not found")
            return {
                "items": [
                    {"username": u.username, "role": r}
                    for u, r in services.org_members(session, org)
                ]
            }

    @put("/orgs/{org_name:str}/members/{username:str}", sync_to_thread=True)
    def set_member(
        self,
        registry: Registry,
        principal: Principal | None,
        org_name: str,
        username: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        require_owner(principal, org_name)
        with session_scope(registry.engine) as session:
            org = services.get_org(session, org_name)
            user = services.get_user(session, username)
            role = validation.text(data.get("role"), "role", 16, required=True)
            membership = services.set_membership(session, org, user, role)
            return {"username": username, "role": membership.role}

    @delete("/orgs/{org_name:str}/members/{username:str}", sync_to_thread=True, status_code=204)
    def remove_member(
        self, registry: Registry, principal: Principal | None, org_name: str, username: str
    ) -> None:
        require_owner(principal, org_name)
        with session_scope(registry.engine) as session:
            services.remove_membership(
                session, services.get_org(session, org_name), services.get_user(session, username)
            )


ROUTES = [AccountController]
