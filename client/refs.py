"""References to an embedding version, as users type them: ``ns/name`` (tag ``latest``),
``ns/name@3`` (version number), ``ns/name:tag`` and ``ns/name@sha256:<hex>`` (exact bytes).

A reference names exactly one of version, tag or digest, so ``str(ref)`` always parses back to
an equal ``Ref`` and the registry's ``/versions/{ref}`` path segment is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from client.core.errors import BadName
from client.core.names import validate_namespace, validate_slug

DEFAULT_TAG = "latest"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION_RE = re.compile(r"[1-9][0-9]{0,8}")
FORMS = "ns/name, ns/name@3, ns/name:tag or ns/name@sha256:<64 hex digits>"


def _bad(text: str, why: str) -> BadName:
    return BadName(f"invalid reference {text!r}: {why}; use one of {FORMS}")


def validate_tag(tag: str) -> str:
    """A tag is a slug that cannot be read as a version number (``:3`` would shadow ``@3``)."""
    validate_slug(tag, "tag")
    if tag.isdigit():
        raise BadName(
            f"invalid tag {tag!r}: a tag cannot be all digits; write @{tag} for a version"
        )
    return tag


def validate_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise BadName(
            f"invalid digest {digest!r}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return digest


@dataclass(frozen=True)
class Ref:
    """One embedding version by number, tag or digest; with none given it means tag ``latest``."""

    namespace: str
    name: str
    version: int | None = None
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        validate_namespace(self.namespace)
        validate_slug(self.name, "embedding name")
        chosen = [x for x in (self.version, self.tag, self.digest) if x is not None]
        if not chosen:
            object.__setattr__(self, "tag", DEFAULT_TAG)
        elif len(chosen) > 1:
            raise BadName(
                f"reference {self.repo} names more than one of version, tag and digest; "
                f"use one of {FORMS}"
            )
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1
        ):
            raise BadName(f"invalid version {self.version!r}: versions are numbered from 1")
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)

    @classmethod
    def parse(cls, text: str) -> Ref:
        """Parse what a user typed; every refusal lists the accepted forms."""
        if not isinstance(text, str) or not text.strip():
            raise _bad(str(text), "it is empty")
        text = text.strip()
        repo, at, pin = text.partition("@")
        tag: str | None = None
        if not at:
            repo, colon, tag = text.partition(":")
            if colon and not tag:
                raise _bad(text, "the tag after ':' is empty")
        ns, slash, name = repo.partition("/")
        if not slash or not ns or not name or "/" in name:
            raise _bad(text, "expected exactly one '/' between namespace and name")
        try:
            if not at:
                return cls(ns, name, tag=tag or None)
            if pin.startswith("sha256:"):
                return cls(ns, name, digest=validate_digest(pin.lower()))
            if _VERSION_RE.fullmatch(pin):
                return cls(ns, name, version=int(pin))
        except BadName as exc:
            raise _bad(text, str(exc)) from None
        raise _bad(text, f"{pin!r} after '@' is neither a version number nor a sha256 digest")

    @property
    def repo(self) -> str:
        """``ns/name``: the embedding this version belongs to."""
        return f"{self.namespace}/{self.name}"

    @property
    def api_ref(self) -> str:
        """The ``{ref}`` segment of ``/versions/{ref}``: a number, a tag or ``sha256:<hex>``."""
        if self.version is not None:
            return str(self.version)
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def is_pinned(self) -> bool:
        """True when the reference cannot move: a digest or a version number (tags move)."""
        return self.tag is None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.repo}@{self.version}"
        if self.digest is not None:
            return f"{self.repo}@{self.digest}"
        return f"{self.repo}:{self.tag}"


def parse_ref(text: str | Ref) -> Ref:
    """``Ref.parse`` that passes an existing ``Ref`` through, for APIs taking either."""
    return text if isinstance(text, Ref) else Ref.parse(text)
