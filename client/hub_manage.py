"""Browsing and managing embeddings on the registry: the part of :class:`client.hub.Hub` that is
plain request/response (no cache rules), kept apart so each module holds one concept."""

from __future__ import annotations

from typing import Any

from .api_types import EmbeddingInfo, SearchPage, VersionInfo, WhoAmI
from .core.names import validate_slug
from .refs import Ref, parse_ref
from .transport import Transport, UnexpectedResponse

API = "/api/v1"


def repo_path(ref: Ref) -> str:
    return f"{API}/embeddings/{ref.namespace}/{ref.name}"


class ManageMixin:
    """Needs ``_json``, ``transport``, ``version`` and ``cache`` from :class:`client.hub.Hub`."""

    transport: Transport
    cache: Any

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def version(self, ref: str | Ref) -> VersionInfo:  # pragma: no cover
        raise NotImplementedError

    def info(self, repo: str | Ref) -> EmbeddingInfo:
        return EmbeddingInfo.from_json(self._json("GET", repo_path(parse_ref(repo))))

    def versions(self, repo: str | Ref) -> list[VersionInfo]:
        raw = self._json("GET", f"{repo_path(parse_ref(repo))}/versions")
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            raise UnexpectedResponse("the registry's version list lacks 'items'", status=200)
        return [VersionInfo.from_json(v) for v in raw["items"]]

    def search(
        self,
        query: str | None = None,
        *,
        family: str | None = None,
        type: str | None = None,
        tag: str | None = None,
        author: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        params = {
            "q": query,
            "family": family,
            "type": type,
            "tag": tag,
            "author": author,
            "sort": sort,
            "limit": limit,
            "cursor": cursor,
        }
        params = {k: v for k, v in params.items() if v is not None}
        return SearchPage.from_json(self._json("GET", f"{API}/embeddings", params=params))

    def _number(self, ref: Ref) -> int:
        return ref.version if ref.version is not None else self.version(ref).number

    def tag(self, ref: str | Ref, tag: str) -> dict[str, int]:
        """Point ``tag`` at the version ``ref`` names; returns every tag -> number."""
        validate_slug(tag, "tag")  # it goes into the URL path
        ref = parse_ref(ref)
        number = self._number(ref)
        return dict(self._json("PUT", f"{repo_path(ref)}/tags/{tag}", json={"version": number}))

    def untag(self, repo: str | Ref, tag: str) -> None:
        validate_slug(tag, "tag")
        self.transport.request("DELETE", f"{repo_path(parse_ref(repo))}/tags/{tag}")

    def yank(self, ref: str | Ref, *, undo: bool = False) -> VersionInfo:
        """Yank (or un-yank) a version: it stays pullable by number or digest, but tags such as
        ``latest`` skip it."""
        ref = parse_ref(ref)
        action = "unyank" if undo else "yank"
        raw = self._json("POST", f"{repo_path(ref)}/versions/{self._number(ref)}/{action}")
        info = VersionInfo.from_json(raw)
        self.cache.put_version(ref.namespace, ref.name, info.number, info.raw)
        return info

    def star(self, repo: str | Ref, *, undo: bool = False) -> int:
        """Star (or un-star) an embedding; returns its star count."""
        method = "DELETE" if undo else "PUT"
        raw = self._json(method, f"{repo_path(parse_ref(repo))}/star")
        return int(raw.get("stars", 0))

    def unstar(self, repo: str | Ref) -> int:
        return self.star(repo, undo=True)

    def lookup(self, hash: str) -> list[VersionInfo]:
        """Versions with a file whose sha256 is ``hash`` or starts with it (digest, A1111/Civitai
        10/12-hex short hashes): the formats the registry serves and ``hub pull`` writes, and
        the original files pushed. Each one's ``raw["matched"]`` lists the kinds that matched."""
        raw = self._json("GET", f"{API}/lookup", params={"hash": hash})
        return [VersionInfo.from_json(v) for v in raw.get("items", [])]

    def whoami(self) -> WhoAmI:
        return WhoAmI.from_json(self._json("GET", f"{API}/whoami"))
