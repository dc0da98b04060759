"""Browsing pages: home, search, an embedding, a user or org. Each calls the services the API
routes call (search, embeddings, similarity, accounts), so the rules live in one place."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter, QueryParameter
from litestar.response import Template

from client.core.errors import NotFound
from client.core.families import FAMILIES
from client.core.training import templates_for
from client.core.writers import FORMATS, prompt_word
from registry.accounts import services as accounts
from registry.accounts.access import can_read_namespace
from registry.accounts.models import Namespace, Org, Role, User
from registry.context import Registry
from registry.db import session_scope
from registry.embeddings import services as embeddings
from registry.embeddings.models import ConceptType, Star
from registry.embeddings.search import SORTS, SearchQuery, search_embeddings
from registry.similarity.services import similar_embeddings
from registry.training.metadata import producing_job, recorded_previews

from .charts import loss_chart
from .principal import page_principal

Text = Annotated[str | None, Parameter(required=False)]


def _page(name: str, request: Request, principal: Any, **context: Any) -> Template:
    return Template(name, context={"me": principal, **context})


@get("/", sync_to_thread=True, name="home")
def home(request: Request, registry: Registry) -> Template:
    principal = page_principal(request)
    shelves = {}
    with session_scope(registry.engine) as session:
        for title, sort in (
            ("Trending", "trending"),
            ("Newest", "recent"),
            ("Most downloaded", "downloads"),
        ):
            rows, _ = search_embeddings(session, principal, SearchQuery(sort=sort, limit=8))
            shelves[title] = (sort, rows)
    return _page("home.html", request, principal, shelves=shelves)


@get("/search", sync_to_thread=True, name="search")
def search(
    request: Request,
    registry: Registry,
    q: Text = None,
    family: Text = None,
    type_: Annotated[str | None, QueryParameter(name="type", required=False)] = None,
    tag: Text = None,
    author: Text = None,
    sort: str = "downloads",
    cursor: Text = None,
) -> Template:
    principal = page_principal(request)
    query = SearchQuery(
        q or None,
        family or None,
        type_ or None,
        tag or None,
        author or None,
        sort,
        24,
        cursor or None,
    )
    with session_scope(registry.engine) as session:
        rows, next_cursor = search_embeddings(session, principal, query)
    params = {
        k: v
        for k, v in {
            "q": q,
            "family": family,
            "type": type_,
            "tag": tag,
            "author": author,
            "sort": sort,
        }.items()
        if v
    }
    return _page(
        "search.html",
        request,
        principal,
        rows=rows,
        query=query,
        params=params,
        next_cursor=next_cursor,
        families=list(FAMILIES),
        types=[t.value for t in ConceptType],
        sorts=list(SORTS),
    )


@get("/embeddings/{namespace:str}/{name:str}", sync_to_thread=True, name="embedding")
def embedding_page(request: Request, registry: Registry, namespace: str, name: str) -> Template:
    principal = page_principal(request)
    with session_scope(registry.engine) as session:
        embedding = embeddings.get_embedding(session, principal, namespace, name)
        versions = embeddings.versions_of(session, embedding)
        tags = embeddings.version_tags(session, embedding)
        content_tags = embeddings.content_tags(session, embedding)
        starred = (
            principal is not None
            and session.get(Star, (principal.user_id, embedding.id)) is not None
        )
        latest = next((v for v in reversed(versions) if v.number == tags.get("latest")), None)
        trained = _trained_here(session, embedding, latest) if latest else None
    similar = similar_embeddings(registry.engine, principal, namespace, name, 6) if latest else []
    training = (latest.training or {}) if latest else {}
    word = prompt_word(embedding.trigger, embedding.name)
    return _page(
        "embedding.html",
        request,
        principal,
        e=embedding,
        versions=list(reversed(versions)),
        tags=tags,
        content_tags=content_tags,
        latest=latest,
        similar=similar,
        formats=FORMATS,
        starred=starred,
        training=training,
        trained=trained,
        chart=loss_chart(training.get("losses") or []),
        snippets={
            "hub": f"hub pull {embedding.namespace}/{embedding.name}",
            "python": (
                "from client.inject import load_embedding\n"
                f'load_embedding(pipe, "{embedding.namespace}/{embedding.name}")'
            ),
            **_prompt_snippets(embedding.concept_type, word),
        },
    )


def _prompt_snippets(concept_type: str | None, word: str) -> dict[str, str]:
    """What to type in A1111 and ComfyUI, by the embedding's type: a negative embedding goes in
    the negative prompt, a style after the style template, anything else (object, subject,
    unset) as the thing pictured: the first training template of its kind."""
    if concept_type == ConceptType.NEGATIVE:
        return {"a1111": f"Negative prompt: {word}", "comfy": f"negative: embedding:{word}"}
    template = templates_for("style" if concept_type == ConceptType.STYLE else "object")[0]
    return {"a1111": template.format(word), "comfy": template.format(f"embedding:{word}")}


@get("/u/{namespace:str}", sync_to_thread=True, name="namespace")
def namespace_page(request: Request, registry: Registry, namespace: str) -> Template:
    """A user's or an org's embeddings; an org's members and roles for its owners."""
    principal = page_principal(request)
    with session_scope(registry.engine) as session:
        row = session.get(Namespace, namespace)
        if row is None:
            raise NotFound(f"{namespace} not found")
        rows, _ = search_embeddings(
            session, principal, SearchQuery(author=namespace, sort="recent", limit=100)
        )
        org = session.exec(_org_named(namespace)).first()
        members = []
        if (
            org is not None
            and principal is not None
            and (principal.is_admin or principal.role_in(namespace) == Role.OWNER.value)
        ):
            members = [(u.username, role) for u, role in accounts.org_members(session, org)]
        user = session.exec(_user_named(namespace)).first()
    return _page(
        "namespace.html",
        request,
        principal,
        namespace=namespace,
        rows=rows,
        is_org=org is not None,
        org=org,
        user=user,
        members=members,
        member=can_read_namespace(principal, namespace),
    )


def _trained_here(session: Any, embedding: Any, version: Any) -> dict[str, Any] | None:
    """Training details only the registry can vouch for: the job that published ``version`` (its
    row names this embedding and this digest), its image count and step, and the previews the
    preview route serves. None when the version was not trained here."""
    job = producing_job(session, embedding, version)
    if job is None:
        return None
    # the job is proven, so every recorded preview is one the preview route serves
    previews = recorded_previews(version.training)
    return {"job": job.id, "images": len(job.images), "steps": job.step, "previews": previews}


def _org_named(name: str):
    from sqlmodel import select

    return select(Org).where(Org.name == name)


def _user_named(name: str):
    from sqlmodel import select

    return select(User).where(User.username == name)


ROUTES = [home, search, embedding_page, namespace_page]
