"""Typed results of the registry's API, parsed from its JSON in one place.

Each class keeps the raw JSON in ``raw`` (for ``--json`` output and fields added later) and
exposes the fields the client relies on. Parsing is lenient about extra keys and strict about
the ones it needs: a missing ``digest`` is a clear ``UnexpectedResponse``-style error, not a
``KeyError`` three calls later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client.core.errors import LexiconError


class BadPayload(LexiconError):
    """The registry answered 2xx with JSON that lacks what this client needs (version skew, or
    LEXICON_URL points at something that is not a Lexicon Hub registry)."""


def _need(raw: Any, key: str, what: str) -> Any:
    if not isinstance(raw, dict) or key not in raw:
        raise BadPayload(
            f"the registry's {what} lacks {key!r}; check that LEXICON_URL points at a Lexicon Hub "
            "registry and that client and registry versions match"
        )
    return raw[key]


@dataclass(frozen=True)
class VersionInfo:
    """One published version (``GET …/versions/{ref}``). ``uploaded`` is set by ``Hub.push``:
    False when the registry already had the bytes and nothing was sent."""

    namespace: str
    name: str
    number: int
    digest: str
    family: str
    size: int = 0
    vectors: int = 0
    dtype: str = ""
    trigger: str | None = None
    base_model: str | None = None
    yanked: bool = False
    tags: tuple[str, ...] = ()
    created_at: str | None = None
    created: bool | None = None
    uploaded: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Any, *, uploaded: bool | None = None) -> VersionInfo:
        what = "version data"
        return cls(
            namespace=str(_need(raw, "namespace", what)),
            name=str(_need(raw, "name", what)),
            number=int(_need(raw, "number", what)),
            digest=str(_need(raw, "digest", what)),
            family=str(_need(raw, "family", what)),
            size=int(raw.get("size") or 0),
            vectors=int(raw.get("vectors") or 0),
            dtype=str(raw.get("dtype") or ""),
            trigger=raw.get("trigger") or None,
            base_model=raw.get("base_model") or None,
            yanked=bool(raw.get("yanked")),
            tags=tuple(raw.get("tags") or ()),
            created_at=raw.get("created_at"),
            created=raw.get("created"),
            uploaded=uploaded,
            raw=dict(raw),
        )

    @property
    def repo(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ref(self) -> str:
        """``ns/name@N``: the version by number (what ``hub push`` prints)."""
        return f"{self.repo}@{self.number}"

    def to_json(self) -> dict[str, Any]:
        out = dict(self.raw)
        if self.uploaded is not None:
            out["uploaded"] = self.uploaded
        return out


@dataclass(frozen=True)
class EmbeddingSummary:
    """One search result (``GET /api/v1/embeddings``)."""

    namespace: str
    name: str
    description: str = ""
    type: str | None = None
    trigger: str | None = None
    family: str | None = None
    license: str | None = None
    visibility: str = "public"
    downloads: int = 0
    stars: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Any) -> EmbeddingSummary:
        what = "embedding data"
        return cls(
            namespace=str(_need(raw, "namespace", what)),
            name=str(_need(raw, "name", what)),
            description=str(raw.get("description") or ""),
            type=raw.get("type"),
            trigger=raw.get("trigger"),
            family=raw.get("family"),
            license=raw.get("license"),
            visibility=str(raw.get("visibility") or "public"),
            downloads=int(raw.get("downloads") or 0),
            stars=int(raw.get("stars") or 0),
            raw=dict(raw),
        )

    @property
    def repo(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EmbeddingInfo(EmbeddingSummary):
    """An embedding with its content tags, version tags (``latest`` included) and versions."""

    tags: tuple[str, ...] = ()
    version_tags: dict[str, int] = field(default_factory=dict)
    latest: int | None = None
    versions: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, raw: Any) -> EmbeddingInfo:
        base = EmbeddingSummary.from_json(raw)
        return cls(
            **{k: getattr(base, k) for k in EmbeddingSummary.__dataclass_fields__},
            tags=tuple(raw.get("tags") or ()),
            version_tags={str(k): int(v) for k, v in (raw.get("version_tags") or {}).items()},
            latest=raw.get("latest"),
            versions=tuple(raw.get("versions") or ()),
        )


@dataclass(frozen=True)
class SearchPage:
    items: list[EmbeddingSummary]
    next_cursor: str | None

    @classmethod
    def from_json(cls, raw: Any) -> SearchPage:
        items = _need(raw, "items", "search result")
        return cls([EmbeddingSummary.from_json(i) for i in items], raw.get("next_cursor"))


@dataclass(frozen=True)
class WhoAmI:
    username: str
    is_admin: bool = False
    scopes: tuple[str, ...] = ()
    orgs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any) -> WhoAmI:
        return cls(
            username=str(_need(raw, "username", "whoami answer")),
            is_admin=bool(raw.get("is_admin")),
            scopes=tuple(raw.get("scopes") or ()),
            orgs=dict(raw.get("orgs") or {}),
        )
