"""Wiring for the pages: the router (session + CSRF + security headers apply to pages only, never
to the API, whose callers use bearer tokens), the template engine and the static files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from client.core.errors import LexiconError
from registry.problems import EXCEPTION_HANDLERS
from registry.settings import Settings

from . import account_pages, member_pages, pages, training_pages

HERE = Path(__file__).parent
SESSION_COOKIE = "lexicon_session"
CSRF_COOKIE = "lexicon_csrf"
# No inline script or style anywhere; images may come from presigned storage URLs (https:).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def _secret(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key per purpose, derived from LEXICON_SESSION_SECRET."""
    return hashlib.sha256(f"{purpose}:{settings.session_secret}".encode()).digest()


def security_headers(app: ASGIApp) -> ASGIApp:
    """CSP without inline script, frame-ancestors 'none', nosniff and a referrer policy on every
    page answer (errors included)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def _session_middleware(config: CookieBackendConfig) -> Any:
    """The session middleware built when the app is (a Router deep-copies its middleware list,
    and the cookie backend's cipher cannot be copied; a function is copied by reference)."""

    def build(app: ASGIApp) -> ASGIApp:
        return SessionMiddleware(app=app, backend=ClientSideSessionBackend(config=config))

    return build


def web_router(settings: Settings) -> Router:
    session = CookieBackendConfig(
        secret=_secret(settings, "session"),
        key=SESSION_COOKIE,
        httponly=True,
        samesite="lax",
        secure=(settings.public_url or "").startswith("https://"),
        max_age=14 * 24 * 3600,
    )
    csrf = CSRFConfig(
        secret=_secret(settings, "csrf").hex(),
        cookie_name=CSRF_COOKIE,
        cookie_samesite="strict",
        cookie_secure=(settings.public_url or "").startswith("https://"),
    )
    return Router(
        path="/",
        route_handlers=[
            *pages.ROUTES,
            *account_pages.ROUTES,
            *training_pages.ROUTES,
            *member_pages.ROUTES,
            create_static_files_router(path="/static", directories=[HERE / "static"]),
        ],
        middleware=[
            security_headers,
            _session_middleware(session),
            DefineMiddleware(CSRFMiddleware, config=csrf),
        ],
        # Every class the app maps to problem+json, mapped to a page instead (registry/problems).
        exception_handlers=dict.fromkeys(EXCEPTION_HANDLERS, _page_error),
        include_in_schema=False,
    )


def _page_error(request: Request, exc: Exception) -> Response:
    status, title, detail = 500, "Something went wrong", "Please try again."
    if isinstance(exc, LexiconError):
        status, detail = exc.spec.status, str(exc)
        title = "That did not work"
    elif isinstance(exc, NotFoundException):
        status = 404
    elif isinstance(exc, PermissionDeniedException):
        status, title = 403, "Form expired"
        detail = "The form's security token did not match; reload the page and try again."
    elif hasattr(exc, "status_code"):
        status, detail = int(exc.status_code), str(getattr(exc, "detail", "")) or detail
        title = "That did not work"
    if status == 404:
        title, detail = "Not found", "There is nothing here, or it is not yours to see."
    return Template(
        "error.html",
        context={"title": title, "detail": detail, "status": status},
        status_code=status,
    )
