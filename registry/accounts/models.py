"""Accounts: namespaces shared by users and organisations, memberships with roles, API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class NamespaceKind(StrEnum):
    USER = "user"
    ORG = "org"


class Role(StrEnum):
    OWNER = "owner"
    MAINTAINER = "maintainer"
    READER = "reader"


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    WORKER = "worker"


class Namespace(SQLModel, table=True):
    """One name space for users and orgs alike, so ``acme/brand`` is unambiguous."""

    name: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=8)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(foreign_key="namespace.name", unique=True, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    password_hash: str | None = Field(default=None, max_length=255)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Org(SQLModel, table=True):
    __tablename__ = "orgs"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(foreign_key="namespace.name", unique=True, max_length=64)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    org_id: int = Field(foreign_key="orgs.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """Stored as a SHA-256 of the random secret (high-entropy secrets need no slow KDF);
    the secret itself is shown once. ``prefix`` lets a user recognise a token in a list."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(max_length=100)  # space-separated Scope values
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
