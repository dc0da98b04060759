"""Sign in and out (session cookie; CSRF on every form; rate limited per address like the API's
token route, registry/limits.py), API tokens (a new secret is shown once), and starring."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from client.core.errors import BadRequest, LexiconError, Unauthorized
from registry import validation
from registry.accounts import services as accounts
from registry.accounts.access import require_scope
from registry.accounts.models import Scope, User
from registry.context import Registry
from registry.db import session_scope
from registry.embeddings import services as embeddings

from .principal import SESSION_USER, page_principal

NEW_TOKEN = "new_token"
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _field(data: dict[str, Any], name: str, limit: int = 200) -> str:
    value = data.get(name) or ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be one text field")
    return validation.text(value, name, limit) or ""


def _local(path: str) -> str:
    """Only same-site paths after sign-in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


@get("/signin", name="signin", sync_to_thread=False)
def signin_form(request: Request) -> Template:
    return Template(
        "signin.html",
        context={"me": None, "next": _local(request.query_params.get("next", "/")), "error": None},
    )


@post("/signin", sync_to_thread=True, status_code=303, media_type=MediaType.HTML)
def signin(request: Request, registry: Registry, data: Form) -> Any:
    username, password = _field(data, "username", 64), _field(data, "password", 1000)
    next_page = _local(_field(data, "next", 500) or "/")
    with session_scope(registry.engine) as session:
        try:
            user = accounts.get_user(session, username)
        except LexiconError:
            user = None
        ok = user is not None and accounts.verify_password(user, password)
        user_id = user.id if ok and user else None
    if user_id is None:
        return Template(
            "signin.html",
            context={"me": None, "next": next_page, "error": "Wrong username or password."},
            status_code=401,
        )
    request.set_session({SESSION_USER: user_id})
    return Redirect(next_page, status_code=303)


@post("/signout", status_code=303, sync_to_thread=False)
def signout(request: Request) -> Redirect:
    request.clear_session()
    return Redirect("/", status_code=303)


def _tokens_page(registry: Registry, principal: Any, secret: str | None = None) -> Template:
    with session_scope(registry.engine) as session:
        tokens = [t for t in accounts.list_tokens(session, principal.user_id)]
    return Template("tokens.html", context={"me": principal, "tokens": tokens, "secret": secret})


def _signed_in(request: Request) -> Any:
    principal = page_principal(request)
    if principal is None:
        raise Unauthorized("sign in to manage your tokens")
    return require_scope(principal, Scope.READ)


@get("/tokens", sync_to_thread=True, name="tokens", media_type=MediaType.HTML)
def tokens(request: Request, registry: Registry) -> Any:
    if page_principal(request) is None:
        return Redirect("/signin?next=/tokens")
    # A new secret travels once, in the encrypted session cookie, from the POST to this page
    # (post/redirect/get: reloading never creates a second token nor shows the secret again).
    secret = request.session.pop(NEW_TOKEN, None)
    if secret is not None:
        request.set_session(dict(request.session))
    return _tokens_page(registry, _signed_in(request), secret)


@post("/tokens", sync_to_thread=True, status_code=303)
def create_token(request: Request, registry: Registry, data: Form) -> Redirect:
    principal = _signed_in(request)
    name = _field(data, "name", 100) or "web"
    scopes = [s for s in ("read", "write") if data.get(f"scope_{s}")] or ["read"]
    with session_scope(registry.engine) as session:
        user = session.get(User, principal.user_id)
        secret, _ = accounts.create_token(session, user, name, scopes)
    request.set_session({**request.session, NEW_TOKEN: secret})
    return Redirect("/tokens", status_code=303)


@post("/tokens/{token_id:int}/revoke", sync_to_thread=True, status_code=303)
def revoke_token(request: Request, registry: Registry, token_id: int) -> Redirect:
    principal = _signed_in(request)
    with session_scope(registry.engine) as session:
        accounts.revoke_token(session, principal.user_id, token_id)
    return Redirect("/tokens", status_code=303)


@post("/embeddings/{namespace:str}/{name:str}/star", sync_to_thread=True, status_code=303)
def star(request: Request, registry: Registry, namespace: str, name: str, data: Form) -> Redirect:
    principal = page_principal(request)
    page = f"/embeddings/{namespace}/{name}"
    if principal is None:
        return Redirect(f"/signin?next={page}", status_code=303)
    with session_scope(registry.engine) as session:
        embeddings.set_star(session, principal, namespace, name, data.get("star") == "1")
    return Redirect(page, status_code=303)


ROUTES = [signin_form, signin, signout, tokens, create_token, revoke_token, star]
