"""An organisation's members page: members (and admins) see who holds which role; owners add a
member, change a role or remove one. The rules are the API's own: who may look is the members
route's (404 to everyone else), who may change is ``registry.accounts.access.require_owner``
(403), and the changes are ``registry.accounts.services``' (the last owner cannot leave)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.enums import MediaType
from litestar.response import Redirect, Template

from client.core.errors import LexiconError, NotFound
from registry.accounts import services as accounts
from registry.accounts.access import Principal, require_owner
from registry.accounts.models import Role
from registry.context import Registry
from registry.db import session_scope

from .account_pages import Form, _field
from .principal import page_principal


def _members_page(
    registry: Registry,
    principal: Principal | None,
    namespace: str,
    error: str | None = None,
    status: int = 200,
) -> Template:
    with session_scope(registry.engine) as session:
        org = accounts.get_org(session, namespace)
        if principal is None or not (principal.is_admin or principal.role_in(namespace)):
            raise NotFound(f"organisation {namespace!r} not found")
        members = [(u.username, role) for u, role in accounts.org_members(session, org)]
    is_owner = principal.is_admin or principal.role_in(namespace) == Role.OWNER.value
    return Template(
        "members.html",
        context={
            "me": principal,
            "org": namespace,
            "members": members,
            "roles": [r.value for r in Role],
            "is_owner": is_owner,
            "error": error,
        },
        status_code=status,
    )


@get("/u/{namespace:str}/members", sync_to_thread=True, name="members", media_type=MediaType.HTML)
def members(request: Request, registry: Registry, namespace: str) -> Template:
    return _members_page(registry, page_principal(request), namespace)


def _change(request: Request, registry: Registry, namespace: str, change: Any) -> Any:
    """Run ``change(session, org)`` as an owner; a refusal is shown on the page by name."""
    principal = page_principal(request)
    _members_page(registry, principal, namespace)  # 404 first to those who may not look
    try:
        require_owner(principal, namespace)
        with session_scope(registry.engine) as session:
            change(session, accounts.get_org(session, namespace))
    except LexiconError as exc:
        return _members_page(registry, principal, namespace, str(exc), exc.spec.status)
    return Redirect(f"/u/{namespace}/members", status_code=303)


@post("/u/{namespace:str}/members", sync_to_thread=True, status_code=303, media_type=MediaType.HTML)
def set_member(request: Request, registry: Registry, namespace: str, data: Form) -> Any:
    """Add a member, or change a member's role (the API's PUT)."""
    username, role = _field(data, "username", 64), _field(data, "role", 16)

    def change(session: Any, org: Any) -> None:
        accounts.set_membership(session, org, accounts.get_user(session, username), role)

    return _change(request, registry, namespace, change)


@post(
    "/u/{namespace:str}/members/{username:str}/remove",
    sync_to_thread=True,
    status_code=303,
    media_type=MediaType.HTML,
)
def remove_member(request: Request, registry: Registry, namespace: str, username: str) -> Any:
    def change(session: Any, org: Any) -> None:
        accounts.remove_membership(session, org, accounts.get_user(session, username))

    return _change(request, registry, namespace, change)


ROUTES = [members, set_member, remove_member]
