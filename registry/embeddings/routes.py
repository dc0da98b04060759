"""HTTP in/out for embeddings: parse the request, call one service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, head, patch, post, put
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect

from client.core.errors import BadRequest, NotFound
from registry import validation
from registry.accounts.access import Principal
from registry.context import Registry, run_read
from registry.db import read_connection, read_scope, session_scope
from registry.similarity.routes import near_duplicates_json

from . import downloads, hashes, reads, services
from .publish import PublishMetadata, publish_version
from .search import SearchQuery, search_embeddings
from .views import embedding_json, embedding_summary, lookup_json, version_json

PREFIX = "/api/v1/embeddings/{namespace:str}/{name:str}"


def _metadata(raw: Any) -> PublishMetadata:
    if raw in (None, ""):
        return PublishMetadata()
    if isinstance(raw, list):
        raise BadRequest("'metadata' was sent more than once; send one JSON object")
    if hasattr(raw, "file"):  # sent as a file part
        raw = raw.file.read(validation.MAX_JSON_BYTES + 1)
    return PublishMetadata.from_json(validation.loads(raw, "metadata"))


def _upload(part: Any, limit: int) -> bytes | None:
    """The ``file`` part's bytes: exactly one file part (not text, not twice)."""
    if part in (None, ""):
        return None
    if isinstance(part, list):
        raise BadRequest("'file' was sent more than once; send one embedding per publish")
    if not hasattr(part, "file"):
        raise BadRequest("'file' must be a file part (the embedding's bytes), not a text field")
    return part.file.read(limit + 1)


def _form_text(value: Any, field: str, max_len: int) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be one text field")
    return validation.text(value, field, max_len)


def _version_number(ref: str, namespace: str, name: str) -> int:
    number = validation.plain_decimal(ref)
    if number is None:
        raise NotFound(f"{namespace}/{name} has no version {ref!r}; versions are numbers")
    return number


def _original(part: Any, limit: int) -> bytes | None:
    """The optional ``original`` part: the file the upload was converted from (a file part)."""
    if part in (None, ""):
        return None
    if not hasattr(part, "file"):
        raise BadRequest("send 'original' as a file part (the file the upload was made from)")
    return part.file.read(limit + 1)


class EmbeddingController(Controller):
    path = PREFIX
    tags = ["embeddings"]

    @post(
        "/versions",
        sync_to_thread=True,
        status_code=201,
        summary="Publish a version (multipart: file + optional metadata JSON)",
    )
    def publish(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response:
        limit = registry.settings.max_upload_bytes
        content = _upload(data.get("file"), limit)
        result = publish_version(
            registry.engine,
            registry.store,
            principal,
            namespace,
            name,
            data=content,
            digest=_form_text(data.get("digest"), "digest", 71),
            meta=_metadata(data.get("metadata")),
            max_bytes=limit,
            original=_original(data.get("original"), limit),
        )
        with read_scope(registry.engine) as session:
            tags = services.version_tags(session, result.embedding)
        body = version_json(result.embedding, result.version, tags)
        body["created"] = result.created
        body["near_duplicates"] = near_duplicates_json(registry, principal, result.version)
        return Response(body, status_code=201 if result.created else 200)

    @get("/", summary="An embedding with its tags and versions")
    async def info(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str
    ) -> dict[str, Any]:
        return await run_read(registry, _info, registry, principal, namespace, name)

    @patch("/", sync_to_thread=True, summary="Edit description, type, trigger, tags, license…")
    def edit(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        meta = PublishMetadata.from_json(data, "request body")
        with session_scope(registry.engine) as session:
            embedding = services.update_embedding(session, principal, namespace, name, meta)
            return embedding_json(session, embedding)

    @delete("/", sync_to_thread=True, status_code=204, summary="Delete (owners and admins)")
    def remove(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str
    ) -> None:
        with session_scope(registry.engine) as session:
            services.delete_embedding(session, principal, namespace, name)

    @get("/versions", summary="Every version, yanked included")
    async def versions(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str
    ) -> dict[str, Any]:
        return await run_read(registry, _versions, registry, principal, namespace, name)

    @get("/versions/{ref:str}", summary="A version by number, tag or digest")
    async def version(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str, ref: str
    ) -> dict[str, Any]:
        return await run_read(registry, _version, registry, principal, namespace, name, ref)

    @get("/versions/{ref:str}/file", sync_to_thread=True, summary="Download a version's file")
    def file(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        ref: str,
        format_: Annotated[str, QueryParameter(name="format")] = "canonical",
    ) -> Response:
        plan = downloads.plan_download(registry, principal, namespace, name, ref, format_)
        if plan.redirect_url:
            return Redirect(plan.redirect_url, status_code=307)
        return Response(
            plan.content,
            media_type=plan.media_type,
            headers={
                "ETag": f'"{plan.digest}"',
                "Content-Disposition": f'attachment; filename="{plan.filename}"',
                "X-Lexicon-Digest": plan.digest,
            },
        )

    @post("/versions/{number:str}/yank", sync_to_thread=True, status_code=200)
    def yank(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        number: str,
    ) -> dict[str, Any]:
        version = _version_number(number, namespace, name)
        return self._set_yanked(registry, principal, namespace, name, version, True)

    @post("/versions/{number:str}/unyank", sync_to_thread=True, status_code=200)
    def unyank(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        number: str,
    ) -> dict[str, Any]:
        version = _version_number(number, namespace, name)
        return self._set_yanked(registry, principal, namespace, name, version, False)

    @staticmethod
    def _set_yanked(registry, principal, namespace, name, number, yanked) -> dict[str, Any]:
        with session_scope(registry.engine) as session:
            version = services.set_yanked(session, principal, namespace, name, number, yanked)
            embedding = services.get_embedding(session, principal, namespace, name)
            return version_json(embedding, version, services.version_tags(session, embedding))

    @put("/tags/{tag:str}", sync_to_thread=True, summary="Point a tag at a version")
    def put_tag(
        self,
        registry: Registry,
        principal: Principal | None,
        namespace: str,
        name: str,
        tag: str,
        data: dict[str, Any],
    ) -> dict[str, int]:
        number = validation.integer(data.get("version"), "version", 1)
        with session_scope(registry.engine) as session:
            services.set_tag(session, principal, namespace, name, tag, number)
            embedding = services.get_embedding(session, principal, namespace, name)
            return services.version_tags(session, embedding)

    @delete("/tags/{tag:str}", sync_to_thread=True, status_code=204)
    def delete_tag(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str, tag: str
    ) -> None:
        with session_scope(registry.engine) as session:
            services.delete_tag(session, principal, namespace, name, tag)

    @put("/star", sync_to_thread=True)
    def star(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str
    ) -> dict[str, Any]:
        with session_scope(registry.engine) as session:
            embedding = services.set_star(session, principal, namespace, name, True)
            return {"starred": True, "stars": embedding.stars}

    @delete("/star", sync_to_thread=True, status_code=200)
    def unstar(
        self, registry: Registry, principal: Principal | None, namespace: str, name: str
    ) -> dict[str, Any]:
        with session_scope(registry.engine) as session:
            embedding = services.set_star(session, principal, namespace, name, False)
            return {"starred": False, "stars": embedding.stars}


@get("/api/v1/embeddings", tags=["embeddings"], summary="Browse and search")
async def browse(
    registry: Registry,
    principal: Principal | None,
    q: str | None = None,
    family: str | None = None,
    type_: Annotated[str | None, QueryParameter(name="type")] = None,
    tag: str | None = None,
    author: str | None = None,
    sort: str = "downloads",
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    query = SearchQuery(q, family, type_, tag, author, sort, limit, cursor)
    return await run_read(registry, _browse, registry, principal, query)


# text/plain: an empty body is "" (Content-Length: 0), not JSON "null" (4 bytes a client that
# does not special-case HEAD, wrk for one, would wait for).
@head("/api/v1/blobs/{digest:str}", tags=["blobs"], media_type=MediaType.TEXT)
async def blob_exists(registry: Registry, principal: Principal | None, digest: str) -> None:
    """200 when a version the caller can see has this digest (so ``hub push`` can skip the
    upload); 404 otherwise, also for blobs that only private embeddings hold. The database
    answers alone: a version's blob is stored before its row and gc never deletes a blob a
    row references, so asking the store too (an S3 HEAD per request) would only add latency."""
    if not await run_read(registry, _blob_visible, registry, principal, digest):
        raise NotFound(f"blob {digest} not found")


@get("/api/v1/lookup", sync_to_thread=True, tags=["blobs"], summary="Find versions by any hash")
def lookup(
    registry: Registry,
    principal: Principal | None,
    hash_: Annotated[str, QueryParameter(name="hash")],
) -> dict[str, Any]:
    """Versions with a file hash equal to, or starting with, ``hash`` (digest, full sha256,
    A1111/Civitai short hash); each item says what matched (``matched``: kind + sha256)."""
    with read_scope(registry.engine) as session:
        hits = hashes.lookup(session, principal, hash_)
        return {"items": [lookup_json(h) for h in hits]}


# The read handlers' database work: plain functions so that ``run_read`` can run them inline
# (SQLite) or in a worker thread (PostgreSQL). Core rows on a Core connection, no ORM Session
# (see ``reads`` and ``read_connection``).


def _info(registry: Registry, principal: Principal | None, ns: str, name: str) -> dict[str, Any]:
    with read_connection(registry.engine) as conn:
        return embedding_json(conn, reads.embedding_row(conn, principal, ns, name))


def _versions(
    registry: Registry, principal: Principal | None, ns: str, name: str
) -> dict[str, Any]:
    with read_connection(registry.engine) as conn:
        embedding = reads.embedding_row(conn, principal, ns, name)
        tags, _ = reads.tags_of(conn, embedding.id)
        items = reads.versions(conn, embedding.id)
        return {"items": [version_json(embedding, v, tags) for v in items]}


def _version(
    registry: Registry, principal: Principal | None, ns: str, name: str, ref: str
) -> dict[str, Any]:
    with read_connection(registry.engine) as conn:
        embedding = reads.embedding_row(conn, principal, ns, name)
        version = reads.version_row(conn, embedding, ref)
        tags, _ = reads.tags_of(conn, embedding.id)
        return version_json(embedding, version, tags)


def _browse(registry: Registry, principal: Principal | None, query: SearchQuery) -> dict[str, Any]:
    with read_connection(registry.engine) as conn:
        rows, next_cursor = search_embeddings(conn, principal, query)
        return {"items": [embedding_summary(r) for r in rows], "next_cursor": next_cursor}


def _blob_visible(registry: Registry, principal: Principal | None, digest: str) -> bool:
    with read_connection(registry.engine) as conn:
        return reads.blob_visible(conn, principal, digest)


ROUTES = [EmbeddingController, browse, blob_exists, lookup]
