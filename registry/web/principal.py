"""Who is looking at a page: the signed-in person (session cookie), else a bearer token's
principal, else anonymous — then every rule is the API's own (``registry.accounts.access``)."""

from __future__ import annotations

from litestar import Request

from registry.accounts.access import Principal
from registry.accounts.models import Scope
from registry.accounts.services import principal_for_token, principal_for_user
from registry.context import CALLER_STATE_KEY, bearer_secret
from registry.db import session_scope

SESSION_USER = "user_id"
# A signed-in person may do in the browser what a read+write token allows.
SESSION_SCOPES = [Scope.READ.value, Scope.WRITE.value]


def page_principal(request: Request) -> Principal | None:
    user_id = request.session.get(SESSION_USER) if "session" in request.scope else None
    if isinstance(user_id, int):
        with session_scope(request.app.state.registry.engine) as session:
            principal = principal_for_user(session, user_id, SESSION_SCOPES)
        if principal is not None:
            return principal
        request.clear_session()  # the user is gone
    return _bearer_principal(request)


def _bearer_principal(request: Request) -> Principal | None:
    """The API's caller, as the request guard resolved it (else resolved here)."""
    caller = request.scope.get("state", {}).get(CALLER_STATE_KEY)
    if caller is not None:
        return caller.principal
    secret = bearer_secret(request.headers)
    if secret is None:
        return None
    with session_scope(request.app.state.registry.engine) as session:
        return principal_for_token(session, secret)
