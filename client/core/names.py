"""Names of namespaces, embeddings and tags: one rule, shared by the registry and the client."""

from __future__ import annotations

import re

from .errors import BadName

# Matched against the whole string (``fullmatch``): ``$`` alone also matches before a trailing
# newline, which let ``acme\n`` squat a look-alike of ``acme`` (issue 8, defect 5).
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}", re.ASCII)
RESERVED = frozenset({"api", "schema", "static", "admin", "login", "logout", "settings", "new"})


def validate_slug(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid slug, else raise ``BadName`` saying what is allowed."""
    if not isinstance(value, str) or not SLUG_RE.fullmatch(value) or value.endswith((".", "-")):
        raise BadName(
            f"invalid {what} {value!r}: use 1-64 characters of lowercase letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    if ".." in value:
        raise BadName(f"invalid {what} {value!r}: '..' is not allowed")
    return value


def validate_namespace(value: str, what: str = "namespace") -> str:
    validate_slug(value, what)
    if value in RESERVED:
        raise BadName(f"namespace {value!r} is reserved; pick another name")
    return value
