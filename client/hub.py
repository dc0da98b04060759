"""``Hub``: the registry client library behind the ``hub`` CLI.

Pulling goes through the verified cache (:mod:`client.cache`, layout in its docstring):

- ``ns/name@sha256:…`` whose blob is cached is served with no request at all;
- ``ns/name@3`` (numbers never move) is resolved from the cached version JSON once seen;
- ``ns/name:tag`` is re-resolved when its cached resolution is older than ``tag_ttl_s``;
- every downloaded byte is checked against the digest it was asked for before it is kept, and
  a cached blob that no longer matches its digest is dropped and fetched again;
- offline (``LEXICON_OFFLINE=1`` or ``offline=True``) the cache alone answers, stale tags
  included, and a miss names what is missing.

Other formats are converted locally from the canonical bytes (the client owns formats), into
``<cache>/exports/`` unless ``out=`` says where.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from client.core.embedding import Embedding, training_from_source
from client.core.errors import BadRequest, LexiconError, NotFound, Unavailable

from .api_types import VersionInfo, WhoAmI
from .cache import Cache
from .config import ClientConfig, save_credentials
from .hub_manage import API, ManageMixin, repo_path
from .refs import Ref, parse_ref
from .transport import Transport, UnexpectedResponse
from .webui import Placed, Placement, place_all

DEFAULT_TAG_TTL_S = 60.0
# (what, bytes done, total bytes or None): the CLI draws rich progress bars from it.
Progress = Callable[[str, int, int | None], None]
Source = Embedding | str | Path | Sequence[str | Path]


class NotInCache(Unavailable):
    """Offline, and the cache does not hold what was asked for."""


class Hub(ManageMixin):
    """A registry client with a local cache. Arguments default to :class:`ClientConfig`
    (``LEXICON_URL``, ``LEXICON_TOKEN`` or saved credentials, ``LEXICON_CACHE``,
    ``LEXICON_OFFLINE``). No connection is opened until a request is needed."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        cache_dir: Path | str | None = None,
        offline: bool | None = None,
        *,
        tag_ttl_s: float = DEFAULT_TAG_TTL_S,
        timeout: float = 30.0,
        retries: int = 3,
        progress: Progress | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(url, token, cache_dir, offline)
        self.cache = Cache(self.config.cache_dir)
        self.tag_ttl_s = tag_ttl_s
        self.progress = progress
        self._transport_args = {"timeout": timeout, "retries": retries}
        self._transport: Transport | None = None

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def offline(self) -> bool:
        return self.config.offline

    @property
    def transport(self) -> Transport:
        if self.offline:
            raise NotInCache(
                "offline (LEXICON_OFFLINE=1): this needs the registry; unset LEXICON_OFFLINE"
            )
        if self._transport is None:
            self._transport = Transport(self.url, self.config.token, **self._transport_args)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A 2xx JSON answer; anything else that answers 2xx (a proxy's HTML) is refused."""
        response = self.transport.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            snippet = " ".join(response.text[:120].split())
            raise UnexpectedResponse(
                f"{method} {response.request.url} answered {response.status_code} with non-JSON "
                f"content: {snippet!r}. Check that LEXICON_URL ({self.url}) is a Lexicon Hub "
                "registry",
                status=response.status_code,
            ) from None

    def _report(self, what: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(what, done, total)

    # --- resolving -----------------------------------------------------------------------------
    def version(self, ref: str | Ref) -> VersionInfo:
        """Ask the registry what ``ref`` names now (cache only when offline); caches the answer."""
        ref = parse_ref(ref)
        if self.offline:
            return self._cached_version(ref, stale_ok=True) or self._miss(ref, "its version data")
        raw = self._json("GET", f"{repo_path(ref)}/versions/{ref.api_ref}")
        info = VersionInfo.from_json(raw)
        self._remember(ref, info)
        return info

    resolve = version

    def _remember(self, ref: Ref, info: VersionInfo) -> None:
        self.cache.put_version(ref.namespace, ref.name, info.number, info.raw)
        if ref.tag is not None:
            self.cache.put_ref(
                ref.namespace, ref.name, ref.tag, digest=info.digest, version=info.number
            )

    def _cached_version(self, ref: Ref, *, stale_ok: bool) -> VersionInfo | None:
        """What the cache says ``ref`` is, without a request; tags only within the TTL unless
        ``stale_ok``. Digest refs with no cached metadata give a bare VersionInfo (number 0)."""
        ns, name = ref.namespace, ref.name
        if ref.version is not None:
            raw = self.cache.get_version(ns, name, ref.version)
            return VersionInfo.from_json(raw) if raw else None
        if ref.digest is not None:
            for path in sorted((self.cache.root / "versions" / ns / name).glob("[0-9]*.json")):
                if not path.stem.isdigit():
                    continue
                raw = self.cache.get_version(ns, name, int(path.stem))
                if raw and raw.get("digest") == ref.digest:
                    return VersionInfo.from_json(raw)
            return VersionInfo(ns, name, 0, ref.digest, family="")
        assert ref.tag is not None
        entry = self.cache.get_ref(ns, name, ref.tag)
        if entry is None:
            return None
        if not stale_ok and self.cache.resolve_tag(ns, name, ref.tag, self.tag_ttl_s) is None:
            return None
        raw = self.cache.get_version(ns, name, entry.version)
        if raw and raw.get("digest") == entry.digest:
            return VersionInfo.from_json(raw)
        return VersionInfo(ns, name, entry.version, entry.digest, family="")

    def _miss(self, ref: Ref, what: str) -> Any:
        raise NotInCache(
            f"offline (LEXICON_OFFLINE=1) and {ref} is not in the cache at {self.cache.root} "
            f"({what} missing); pull it once while online, or unset LEXICON_OFFLINE"
        )

    def _locate(self, ref: Ref) -> VersionInfo:
        """The version to pull: from the cache when the rules allow, else from the registry."""
        cached = self._cached_version(ref, stale_ok=self.offline)
        if cached is not None and (ref.digest is None or self.cache.has_blob(ref.digest)):
            return cached
        if self.offline:
            return self._miss(ref, "its bytes" if ref.digest else "its resolution")
        return self.version(ref)

    # --- pull ----------------------------------------------------------------------------------
    def fetch(self, ref: str | Ref) -> tuple[VersionInfo, bytes]:
        """The version and its canonical bytes (tensors-only safetensors, sha256 = digest),
        verified, from the cache or downloaded into it."""
        ref = parse_ref(ref)
        info = self._locate(ref)
        data = self.cache.get_blob(info.digest)
        if data is None:
            if self.offline:
                self._miss(ref, f"blob {info.digest}")
            what = f"{ref.repo}@{info.number or info.digest[:19]}"
            data = self.transport.download(
                f"{repo_path(ref)}/versions/{info.digest}/file",
                info.digest,
                progress=lambda done, total: self._report(what, done, total),
            )
            self.cache.put_blob(info.digest, data)
        return info, data

    def load(self, ref: str | Ref) -> Embedding:
        """The version as an :class:`Embedding` whose token is the version's trigger."""
        from client.core.canonical import parse_safetensors

        ref = parse_ref(ref)
        info, data = self.fetch(ref)
        tensors, _ = parse_safetensors(data)
        return Embedding.from_tensors(tensors, token=info.trigger, source_format="canonical")

    def pull(
        self, ref: str | Ref, *, format: str = "canonical", out: Path | str | None = None
    ) -> Path:
        """Fetch ``ref`` and write it in ``format`` to ``out`` (default: under
        ``<cache>/exports/``); returns the file written (a folder for diffusers SDXL)."""
        from client.core.writers import check_format, write_embedding

        check_format(format)
        ref = parse_ref(ref)
        embedding = self.load(ref)
        digest = embedding.digest
        if out is None:
            hexd = digest.removeprefix("sha256:")
            out = self.cache.root / "exports" / ref.namespace / ref.name / hexd / format
            out = out / (ref.name if _is_folder(embedding, format) else f"{ref.name}.safetensors")
        out = Path(out)
        written = write_embedding(embedding, out, format, token=embedding.token)
        return out if _is_folder(embedding, format) else written[0]

    def to_webui(self, ref: str | Ref, directory: Path | str, *, force: bool = False) -> Path:
        """Write ``DIR/<trigger without <>>.safetensors`` (A1111 layout) for the ``embeddings/``
        folder of A1111 or ComfyUI, where the file name is the prompt word. A different
        embedding already there is refused unless ``force`` (:mod:`client.webui`)."""
        return self.to_folder([ref], directory, force=force)[0].path

    def to_folder(
        self, refs: Sequence[str | Ref], directory: Path | str, *, force: bool = False
    ) -> list[Placed]:
        """:meth:`to_webui` for several references at once: all checked, then all written."""
        parsed = [parse_ref(r) for r in refs]
        items = [Placement(self.load(r), str(r), r.name) for r in parsed]
        return place_all(directory, items, force=force)

    # --- push ----------------------------------------------------------------------------------
    def push(
        self,
        source: Source,
        ref: str | Ref,
        *,
        trigger: str | None = None,
        base_model: str | None = None,
        type: str | None = None,
        tags: Iterable[str] | None = None,
        description: str | None = None,
        private: bool | None = None,
        license: str | None = None,
        notes: str | None = None,
        training: dict[str, Any] | None = None,
    ) -> VersionInfo:
        """Publish ``source`` (any supported file, an SDXL pair, or an :class:`Embedding`) as the
        next version of ``ns/name``; ``ns/name:tag`` also points ``tag`` at it. When the
        registry already holds the bytes (``HEAD /blobs``) nothing is uploaded. A single source
        file also travels as ``original``: the registry checks that it holds the same vectors
        and indexes its hashes, so the short hash A1111 and Civitai show for it finds the
        version (a hash the client merely claimed would not be trusted)."""
        from client.core.canonical import canonical_bytes
        from client.core.formats import read_embedding

        ref = parse_ref(ref)
        if ref.version is not None or ref.digest is not None:
            raise BadRequest(f"push to ns/name or ns/name:tag, not {ref}; versions are numbered")
        original: tuple[str, bytes] | None = None
        if isinstance(source, Embedding):
            embedding = source
        else:
            paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
            if len(paths) == 1 and paths[0].is_file():
                original = _original_part(paths[0])
            try:
                embedding = read_embedding(paths[0] if len(paths) == 1 else paths)
            except LexiconError as exc:  # the reader leaves naming the file to its caller
                label = " + ".join(str(p) for p in paths)
                raise exc.__class__(f"{label}: {exc}", code=exc.code) from None
        from client.core.families import check_base_model

        check_base_model(embedding.family, base_model)
        visibility = None if private is None else ("private" if private else "public")
        meta = {
            "trigger": trigger or embedding.token,
            "base_model": base_model,
            "type": type,
            "tags": list(tags) if tags is not None else None,
            "description": description,
            "license": license,
            "visibility": visibility,
            "notes": notes,
            "training": training if training is not None else training_from_source(embedding),
        }
        meta_json = json.dumps({k: v for k, v in meta.items() if v is not None})
        digest = embedding.digest
        path = f"{repo_path(ref)}/versions"
        raw = None
        if self._blob_known(digest):
            try:
                files = {"digest": (None, digest), "metadata": (None, meta_json)}
                raw = self._json("POST", path, files=_with_original(files, original))
            except NotFound:  # the blob became invisible in between: upload it after all
                raw = None
        uploaded = raw is None
        if raw is None:
            data = canonical_bytes(embedding)
            what = f"{ref.repo}"
            self._report(what, 0, len(data))
            files = {
                "file": (f"{ref.name}.safetensors", data, "application/octet-stream"),
                "metadata": (None, meta_json),
            }
            raw = self._json("POST", path, files=_with_original(files, original))
            self._report(what, len(data), len(data))
        info = VersionInfo.from_json(raw, uploaded=uploaded)
        # The registry applies embedding-level fields only when the embedding is created; for
        # an existing one, what the user passed explicitly is applied as an edit.
        edits = {k: meta[k] for k in ("description", "type", "license", "visibility")}
        edits = {k: v for k, v in edits.items() if v is not None}
        if edits and (info.number > 1 or info.created is False):
            self._json("PATCH", repo_path(ref), json=edits)
        self.cache.put_version(ref.namespace, ref.name, info.number, info.raw)
        if ref.tag is not None and ref.tag != "latest":
            self.tag(info.ref, ref.tag)
        return info

    def _blob_known(self, digest: str) -> bool:
        try:
            self.transport.request("HEAD", f"{API}/blobs/{digest}")
        except NotFound:
            return False
        except UnexpectedResponse as exc:
            if exc.status == 404:
                return False
            raise
        return True


def login(url: str | None, token: str, *, credentials_path: Path | None = None) -> WhoAmI:
    """Check ``token`` against the registry (whoami) and only then save it for ``url``."""
    with Hub(url=url, token=token, offline=False) as hub:
        me = hub.whoami()
        save_credentials(hub.url, token, credentials_path)
    return me


def _original_part(path: Path) -> tuple[str, bytes] | None:
    """The file a push converts, sent beside the canonical bytes when within the registry's
    default upload limit (larger ones, e.g. big PNG previews, are pushed without it)."""
    from client.core.canonical import DEFAULT_MAX_BYTES

    if path.stat().st_size > DEFAULT_MAX_BYTES:
        return None
    return path.name, path.read_bytes()


def _with_original(files: dict[str, Any], original: tuple[str, bytes] | None) -> dict[str, Any]:
    if original is None:
        return files
    name, data = original
    return {**files, "original": (name, data, "application/octet-stream")}


def _is_folder(embedding: Embedding, fmt: str) -> bool:
    return fmt == "diffusers" and embedding.family.name == "sdxl"
