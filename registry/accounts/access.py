"""Who may do what. One home for the visibility and role rules every route relies on.

Outsiders must not learn that a private embedding exists, so every read path asks
``can_read`` and turns a ``False`` into ``NotFound`` (never ``Forbidden``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from client.core.errors import Forbidden, NotFound, Unauthorized

from .models import Role, Scope


@dataclass(frozen=True)
class Principal:
    """The caller, resolved from an API token. ``roles`` maps org name -> role."""

    user_id: int
    username: str
    scopes: frozenset[str]
    is_admin: bool = False
    roles: dict[str, str] = field(default_factory=dict)

    def has_scope(self, scope: Scope) -> bool:
        return scope.value in self.scopes or Scope.ADMIN.value in self.scopes

    def role_in(self, namespace: str) -> str | None:
        if namespace == self.username:
            return Role.OWNER.value
        return self.roles.get(namespace)


def can_read_namespace(principal: Principal | None, namespace: str) -> bool:
    """Private items are visible to the namespace's user, its org's members, and admins."""
    if principal is None:
        return False
    return principal.is_admin or principal.role_in(namespace) is not None


def can_read(principal: Principal | None, namespace: str, visibility: str) -> bool:
    return visibility == "public" or can_read_namespace(principal, namespace)


def require_scope(principal: Principal | None, scope: Scope) -> Principal:
    if principal is None:
        raise Unauthorized("this action needs an API token (Authorization: Bearer <token>)")
    if not principal.has_scope(scope):
        raise Forbidden(
            f"this token lacks the '{scope.value}' scope; create one with it "
            f"(`POST /api/v1/tokens` with scopes including '{scope.value}')"
        )
    return principal


def require_write(principal: Principal | None, namespace: str) -> Principal:
    """Writers: the namespace's user, org owners and maintainers, admins."""
    principal = require_scope(principal, Scope.WRITE)
    role = principal.role_in(namespace)
    if principal.is_admin or role in (Role.OWNER.value, Role.MAINTAINER.value):
        return principal
    raise Forbidden(f"{principal.username} may not publish to namespace {namespace!r}")


def require_owner(principal: Principal | None, namespace: str) -> Principal:
    principal = require_scope(principal, Scope.WRITE)
    if principal.is_admin or principal.role_in(namespace) == Role.OWNER.value:
        return principal
    raise Forbidden(f"only owners of {namespace!r} (or admins) may do this")


def require_visible(
    principal: Principal | None, namespace: str, visibility: str, what: str
) -> None:
    if not can_read(principal, namespace, visibility):
        raise NotFound(f"{what} not found")
