"""Account rules: users, organisations, memberships, API tokens and password hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlmodel import Session, select

from client.core.errors import BadRequest, Conflict, NotFound
from client.core.names import validate_namespace

from .access import Principal
from .models import ApiToken, Membership, Namespace, NamespaceKind, Org, Role, Scope, User
from .tokens import hash_token, new_token, token_matches

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


MAX_TOKEN_DAYS = 3650  # ten years; past that `timedelta` and the database overflow
MAX_PASSWORD = 1024


def _claim_namespace(session: Session, name: str, kind: NamespaceKind) -> None:
    validate_namespace(name, "username" if kind == NamespaceKind.USER else "organisation name")
    if session.get(Namespace, name) is not None:
        raise Conflict(f"the name {name!r} is taken; pick another")
    session.add(Namespace(name=name, kind=kind.value))
    session.flush()


def create_user(
    session: Session,
    username: str,
    *,
    is_admin: bool = False,
    email: str | None = None,
    password: str | None = None,
) -> User:
    _claim_namespace(session, username, NamespaceKind.USER)
    user = User(
        username=username,
        email=email,
        is_admin=is_admin,
        password_hash=_hasher.hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except VerificationError:
        return False


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def get_org(session: Session, name: str) -> Org:
    org = session.exec(select(Org).where(Org.name == name)).first()
    if org is None:
        raise NotFound(f"organisation {name!r} not found")
    return org


def create_org(session: Session, name: str, owner: User, description: str = "") -> Org:
    _claim_namespace(session, name, NamespaceKind.ORG)
    org = Org(name=name, description=description)
    session.add(org)
    session.flush()
    session.add(Membership(org_id=org.id, user_id=owner.id, role=Role.OWNER.value))
    session.flush()
    return org


def set_membership(session: Session, org: Org, user: User, role: str) -> Membership:
    try:
        role = Role(role).value
    except ValueError:
        raise BadRequest(f"unknown role {role!r}; use owner, maintainer or reader") from None
    membership = session.get(Membership, (org.id, user.id))
    if membership is None:
        membership = Membership(org_id=org.id, user_id=user.id, role=role)
    else:
        membership.role = role
    session.add(membership)
    session.flush()
    return membership


def remove_membership(session: Session, org: Org, user: User) -> None:
    membership = session.get(Membership, (org.id, user.id))
    if membership is None:
        raise NotFound(f"{user.username} is not a member of {org.name}")
    owners = session.exec(
        select(Membership).where(Membership.org_id == org.id, Membership.role == Role.OWNER.value)
    ).all()
    if membership.role == Role.OWNER.value and len(owners) == 1:
        raise Conflict(f"{user.username} is the last owner of {org.name}; add another owner first")
    session.delete(membership)
    session.flush()


def org_members(session: Session, org: Org) -> list[tuple[User, str]]:
    rows = session.exec(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id)
        .order_by(User.username)
    ).all()
    return [(user, role) for user, role in rows]


def parse_scopes(scopes: list[str] | None) -> list[str]:
    valid = {s.value for s in Scope}
    if scopes is not None and (
        not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)
    ):
        raise BadRequest(f"'scopes' must be a list of scope names from {sorted(valid)}")
    chosen = scopes or [Scope.READ.value, Scope.WRITE.value]
    bad = [s for s in chosen if s not in valid]
    if bad:
        raise BadRequest(f"unknown scopes {bad}; use {sorted(valid)}")
    return sorted(set(chosen))


def create_token(
    session: Session,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[str, ApiToken]:
    """Returns the secret (shown once, never stored) and the stored row."""
    secret, prefix, token_hash = new_token()
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken(
        user_id=user.id,
        name=name[:100] or "token",
        prefix=prefix,
        token_hash=token_hash,
        scopes=" ".join(parse_scopes(scopes)),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return secret, token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.exec(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        ).all()
    )


def revoke_token(session: Session, user_id: int, token_id: int, *, admin: bool = False) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != user_id and not admin):
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        session.add(token)
        session.flush()


_TOKEN = ApiToken.__table__.c  # type: ignore[attr-defined]
_USER = User.__table__.c  # type: ignore[attr-defined]
# Built once (a per-request select cost more than running it, issue 12): the token and its
# user in one statement, and the user's org roles.
_TOKEN_AND_USER = (
    sa.select(
        _TOKEN.user_id,
        _TOKEN.token_hash,
        _TOKEN.scopes,
        _TOKEN.revoked_at,
        _TOKEN.expires_at,
        _USER.username,
        _USER.is_admin,
    )
    .join_from(ApiToken.__table__, User.__table__, _USER.id == _TOKEN.user_id)  # type: ignore[attr-defined]
    .where(_TOKEN.token_hash == sa.bindparam("token_hash"))
)
_ROLES = (
    sa.select(Org.name, Membership.role)
    .join(Membership, Membership.org_id == Org.id)
    .where(Membership.user_id == sa.bindparam("user_id"))
)


def principal_for_token(session: Session | sa.Connection, secret: str) -> Principal | None:
    """The caller behind a bearer token, or None for an unknown, revoked or expired token.
    Runs on every request that carries a token: the token and its user in one statement,
    Core columns, no ORM objects (the request path passes a Core read connection)."""
    conn = session.connection() if isinstance(session, Session) else session
    row = conn.execute(_TOKEN_AND_USER, {"token_hash": hash_token(secret)}).first()
    if row is None:
        return None
    if not token_matches(secret, row.token_hash):
        return None
    now = datetime.now(UTC)
    expires_at = row.expires_at
    if expires_at is not None and expires_at.tzinfo is None:  # SQLite keeps no offset
        expires_at = expires_at.replace(tzinfo=UTC)
    if row.revoked_at is not None or (expires_at is not None and expires_at <= now):
        return None
    roles = conn.execute(_ROLES, {"user_id": row.user_id}).all()
    return Principal(
        user_id=row.user_id,
        username=row.username,
        scopes=frozenset(row.scopes.split()),
        is_admin=row.is_admin,
        roles={name: role for name, role in roles},
    )


def _roles(session: Session, user_id: int) -> dict[str, str]:
    """Org name -> the user's role in it."""
    rows = session.exec(
        select(Org.name, Membership.role)
        .join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user_id)
    ).all()
    return {name: role for name, role in rows}


def principal_for_user(session: Session, user_id: int, scopes: list[str]) -> Principal | None:
    """A user with ``scopes`` and their current org roles (None if the user is gone)."""
    user = session.get(User, user_id)
    if user is None:
        return None
    return Principal(
        user_id=user.id,
        username=user.username,
        scopes=frozenset(scopes),
        is_admin=user.is_admin,
        roles=_roles(session, user.id),
    )
