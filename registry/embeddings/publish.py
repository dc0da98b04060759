"""Publishing a version: validate the upload, store the blob, then write the row.

Order matters (blob first, row second, orphans collected by ``lexicon-registry gc``): a row
never points at a blob that is not there. Numbers come from ``UPDATE … RETURNING`` on the
embedding's counter inside the same transaction, so concurrent publishes get 1, 2, 3… with no
gaps or collisions on PostgreSQL (row lock) and SQLite (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from client.core.canonical import parse_canonical, serialize_safetensors
from client.core.embedding import Embedding as Vectors
from client.core.errors import BadRequest, Conflict, NotFound
from client.core.families import check_base_model
from client.core.names import validate_slug
from registry import validation
from registry.accounts.access import Principal, can_read, require_write
from registry.accounts.models import Namespace, utcnow
from registry.db import read_scope, session_scope
from registry.similarity.summaries import store_summaries
from registry.storage.base import BlobStore
from registry.training.metadata import validate_user_training

from . import hashes, search
from .models import (
    ConceptType,
    Embedding,
    EmbeddingTag,
    EmbeddingVersion,
    HashKind,
    Visibility,
)


@dataclass
class PublishMetadata:
    """Every key optional; what the file says is used where the caller says nothing."""

    trigger: str | None = None
    base_model: str | None = None
    type: str | None = None
    tags: list[str] | None = None
    description: str | None = None
    license: str | None = None
    visibility: str | None = None
    notes: str | None = None
    training: dict[str, Any] | None = None
    # Claimed sha256 of the file the user converted. Accepted for old clients but never stored
    # or indexed: a claim is not proof (issue 8.6); send the file itself as 'original'.
    source_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, what: str = "metadata") -> PublishMetadata:
        """``data`` is the decoded ``metadata`` part (or a PATCH body, ``what="request
        body"``); every field is checked against its column before anything is stored."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BadRequest(f"'{what}' must be a JSON object")
        validation.json_value(data, what)
        data = dict(data)
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        known.pop("extra", None)
        meta = cls(**known, extra=data)
        meta.validate()
        return meta

    def validate(self) -> None:
        # Lengths are the columns' (models.py): PostgreSQL refuses longer text, SQLite would
        # store it, and a refusal at the INSERT would come after the blob was stored.
        for name, limit in TEXT_LIMITS.items():
            validation.text(getattr(self, name), name, limit)
        if self.type is not None and self.type not in {t.value for t in ConceptType}:
            raise BadRequest(f"unknown type {self.type!r}; use style, object, subject or negative")
        if self.visibility is not None and self.visibility not in {v.value for v in Visibility}:
            raise BadRequest(f"unknown visibility {self.visibility!r}; use public or private")
        if self.tags is not None:
            if not isinstance(self.tags, list) or len(self.tags) > MAX_TAGS:
                raise BadRequest(f"'tags' must be a list of at most {MAX_TAGS} tag names")
            for tag in self.tags:
                validate_slug(tag, "tag")
        if self.source_sha256 is not None and not (
            isinstance(self.source_sha256, str)
            and re.fullmatch(r"[0-9a-f]{64}", self.source_sha256)
        ):
            raise BadRequest("'source_sha256' must be 64 lowercase hex characters")
        if self.training is not None and not isinstance(self.training, dict):
            raise BadRequest("'training' must be a JSON object")
        self.training = validate_user_training(self.training)  # schema; never names a blob


MAX_TAGS = 32
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TEXT_LIMITS = {
    "trigger": 100,
    "base_model": 200,
    "type": 16,
    "description": 10_000,
    "license": 100,
    "visibility": 8,
    "notes": 10_000,
}


@dataclass
class PublishResult:
    embedding: Embedding
    version: EmbeddingVersion
    created: bool


def _find_embedding(
    session: Session, namespace: str, name: str, digest: str
) -> tuple[Embedding | None, int | None]:
    """The embedding and the id of its version holding ``digest`` if it has one, in one
    statement (every statement here is another wait inside SQLite's write lock)."""
    same_digest = (
        select(EmbeddingVersion.id)
        .where(EmbeddingVersion.embedding_id == Embedding.id, EmbeddingVersion.digest == digest)
        .scalar_subquery()
    )
    found = session.exec(
        select(Embedding, same_digest).where(
            Embedding.namespace == namespace, Embedding.name == name
        )
    ).first()
    return (found[0], found[1]) if found is not None else (None, None)


def _create_embedding(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    meta: PublishMetadata,
    vectors: Vectors,
) -> Embedding:
    """A new embedding, described by the metadata or else by the file."""
    if session.get(Namespace, namespace) is None:  # deleted since _require_namespace
        raise NotFound(f"namespace {namespace!r} not found")
    row = Embedding(
        namespace=namespace,
        name=name,
        description=meta.description or "",
        concept_type=meta.type,
        trigger=meta.trigger or vectors.token,
        license=meta.license,
        visibility=meta.visibility or Visibility.PUBLIC.value,
        family=vectors.family.name,
        created_by=principal.user_id,
    )
    # A new item starts with its creation-time score, so it ranks among older ones by the
    # same rule downloads and stars later update (not below every item that has had one).
    row.trending = search.trending_score(0, 0, row.created_at)
    session.add(row)
    session.flush()
    return row


def set_content_tags(session: Session, embedding: Embedding, tags: list[str]) -> list[str]:
    """Replace the embedding's content tags; returns them as stored (sorted, once each)."""
    return _replace_tags(session, embedding.id, tags)[0]


def _replace_tags(session: Session, embedding_id: int, tags: list[str]) -> tuple[list[str], bool]:
    """Write only the difference (a publish repeating the tags writes nothing); the tags as
    stored, and whether they changed."""
    stored = sorted(set(tags))
    have = set(
        session.execute(
            select(EmbeddingTag.tag).where(EmbeddingTag.embedding_id == embedding_id)
        ).scalars()
    )
    gone = have.difference(stored)
    added = [{"embedding_id": embedding_id, "tag": tag} for tag in stored if tag not in have]
    if gone:
        session.execute(
            delete(EmbeddingTag).where(
                EmbeddingTag.embedding_id == embedding_id, EmbeddingTag.tag.in_(gone)
            )
        )
    if added:
        session.execute(insert(EmbeddingTag), added)
    return stored, bool(gone or added)


def publish_version(
    engine: Engine,
    store: BlobStore,
    principal: Principal | None,
    namespace: str,
    name: str,
    *,
    data: bytes | None,
    digest: str | None = None,
    meta: PublishMetadata,
    max_bytes: int,
    original: bytes | None = None,
) -> PublishResult:
    """Publish canonical safetensors ``data`` (or a blob the caller can already see, by
    ``digest``) as the next version of ``namespace/name``. ``original``, the file the upload was
    converted from, makes its hashes find the version once it is shown to hold the same vectors
    (a re-push of the same vectors adds another original's hashes to the existing version)."""
    validate_slug(namespace, "namespace")
    validate_slug(name, "embedding name")
    principal = require_write(principal, namespace)
    uploaded = data is not None
    if data is None:
        if not digest:
            raise BadRequest("send the embedding as the multipart field 'file'")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise BadRequest("'digest' must be sha256:<64 lowercase hex characters>")
        data = _visible_blob(engine, store, principal, digest)
    vectors = parse_canonical(data, max_bytes=max_bytes)
    check_base_model(vectors.family, meta.base_model)
    _check_header_fields(vectors)
    _require_namespace(engine, namespace)  # before the blob: no orphan for a missing namespace
    blob = serialize_safetensors(vectors.vectors)
    digest = vectors.digest
    found = hashes.file_hashes(data, HashKind.UPLOAD.value) if uploaded else set()
    upload_sha256 = hashlib.sha256(data).hexdigest()
    if original is not None:
        found |= hashes.verify_original(original, vectors, max_bytes=max_bytes)
        upload_sha256 = hashlib.sha256(original).hexdigest()
    # Every format's rendering is CPU work: done before the write lock when the trigger is
    # already known (the caller's or the file's), so it holds no other publisher back.
    trigger = meta.trigger or vectors.token
    rendered = {(trigger,): hashes.served_hashes(blob, [trigger])} if trigger else {}
    store.put(digest, blob)  # verified and visible before any row points at it

    for attempt in range(3):
        try:
            with session_scope(engine) as session:
                embedding, existing_id = _find_embedding(session, namespace, name, digest)
                new_embedding = embedding is None
                if embedding is None:
                    embedding = _create_embedding(
                        session, principal, namespace, name, meta, vectors
                    )
                elif existing_id is not None:  # a re-push: maybe another original's hashes
                    existing = session.get_one(EmbeddingVersion, existing_id)
                    _index_hashes(session, embedding, existing, blob, found, rendered)
                    return PublishResult(embedding, existing, created=False)
                now = utcnow()
                # One statement numbers the version and touches the embedding; the loaded row
                # is told the new values rather than re-read.
                number = session.execute(
                    update(Embedding)
                    .where(Embedding.id == embedding.id)
                    .values(
                        version_counter=Embedding.version_counter + 1,
                        family=vectors.family.name,
                        updated_at=now,
                    )
                    .returning(Embedding.version_counter)
                ).scalar_one()
                for key, value in (
                    ("version_counter", number),
                    ("family", vectors.family.name),
                    ("updated_at", now),
                ):
                    set_committed_value(embedding, key, value)
                version = EmbeddingVersion(
                    embedding_id=embedding.id,
                    number=number,
                    digest=digest,
                    size=len(blob),
                    family=vectors.family.name,
                    base_model=meta.base_model,
                    vectors=vectors.num_vectors,
                    encoders=vectors.encoders,
                    dtype=vectors.dtype,
                    source_format=vectors.source_format,
                    upload_sha256=upload_sha256,
                    trigger=meta.trigger or vectors.token or embedding.trigger,
                    notes=meta.notes or "",
                    training=meta.training,
                    created_by=principal.user_id,
                    created_at=now,
                )
                session.add(version)
                session.flush()
                # The search index holds the embedding's text and tags, none of a version's:
                # rewritten when the embedding is new (no tags but these) or its tags changed.
                tags: list[str] = []
                reindex = new_embedding
                if meta.tags is not None:
                    tags, changed = _replace_tags(session, embedding.id, meta.tags)
                    reindex = reindex or changed
                _index_hashes(session, embedding, version, blob, found, rendered, new=True)
                store_summaries(session, version.id, vectors)  # similar embeddings
                if reindex:
                    search.write_index(session, [search.index_fields(embedding, tags)])
                return PublishResult(embedding, version, created=True)
        except Conflict as exc:
            # A concurrent publish created the embedding or the same digest first: retry,
            # which then finds it.
            if attempt == 2 or not isinstance(exc.__cause__, IntegrityError):
                raise
    raise AssertionError("unreachable")


def _index_hashes(
    session: Session,
    embedding: Embedding,
    version: EmbeddingVersion,
    blob: bytes,
    found: set[hashes.FileHash],
    rendered: dict[tuple[str | None, ...], set[hashes.FileHash]],
    *,
    new: bool = False,
) -> None:
    """Index the served formats (rendered with the file route's trigger and ``hub pull``'s,
    when they differ; ``rendered`` holds renderings made earlier, by triggers) plus the
    verified upload and original hashes (``new``: the version was just inserted, so it has
    none yet)."""
    route_trigger = version.trigger or embedding.trigger or f"<{embedding.name}>"
    triggers = tuple(dict.fromkeys([route_trigger, version.trigger]))
    served = rendered.get(triggers)
    if served is None:
        served = hashes.served_hashes(blob, triggers)
    hashes.index_version(session, version.id, served | found, new=new)


def _check_header_fields(vectors: Vectors) -> None:
    """The file's own token and source format become columns too: hold them to the same
    limits as the metadata fields, before the blob is stored."""
    validation.text(vectors.token, "lexicon.token (the file's trigger)", TEXT_LIMITS["trigger"])
    validation.text(vectors.source_format, "lexicon.source_format", 40)


def _require_namespace(engine: Engine, namespace: str) -> None:
    with read_scope(engine) as session:  # a read: no turn at SQLite's write lock
        if session.exec(select(Namespace.name).where(Namespace.name == namespace)).first() is None:
            raise NotFound(f"namespace {namespace!r} not found")


def _visible_blob(engine: Engine, store: BlobStore, principal: Principal, digest: str) -> bytes:
    """Publishing by digest (``hub push`` skipped the upload): only for blobs the caller can
    already see, so a digest cannot be used to copy someone's private embedding."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Embedding.namespace, Embedding.visibility)
            .join(EmbeddingVersion, EmbeddingVersion.embedding_id == Embedding.id)
            .where(EmbeddingVersion.digest == digest)
        ).all()
    if not any(can_read(principal, ns, vis) for ns, vis in rows):
        raise NotFound(f"blob {digest} not found; upload the file instead")
    return store.get(digest)
