"""The web pages' rows of the access matrix (registry/web): a bearer token counts as the page's
caller too; every form post without its CSRF token is refused (403) before any rule runs."""

from __future__ import annotations

from tests.attack.access_vocabulary import (
    EVERYONE,
    JOB_SEEN,
    READ,
    Row,
)

WEB_ROWS: list[Row] = [
    # -- web pages (registry/web): a bearer token counts as the page's caller too; every form
    # post without its CSRF token is refused (403) before any rule runs -------------------
    Row("GET", "/", "home page", {"-": EVERYONE}, lambda c: "/"),
    Row("GET", "/search", "search page", {"-": EVERYONE}, lambda c: "/search?q=pub"),
    Row(
        "GET",
        "/embeddings/{namespace}/{name}",
        "embedding page",
        READ,
        lambda c: f"/embeddings/{c.ref}",
    ),
    Row("GET", "/u/{namespace}", "namespace page", {"-": EVERYONE}, lambda c: "/u/acme"),
    Row("GET", "/signin", "sign-in page", {"-": EVERYONE}, lambda c: "/signin"),
    Row(
        "GET",
        "/tokens",
        "tokens page",
        {"-": "302 200 200 200 200 200 403 302 302"},
        lambda c: "/tokens",
    ),
    Row(
        "GET",
        "/train",
        "training form",
        {"-": "302 200 200 200 200 200 403 302 302"},
        lambda c: "/train",
    ),
    Row("GET", "/jobs/{job_id}", "training job page", JOB_SEEN, lambda c: f"/jobs/{c.job}"),
    Row(
        "GET",
        "/jobs/{job_id}/progress",
        "training job progress (page JSON)",
        JOB_SEEN,
        lambda c: f"/jobs/{c.job}/progress",
    ),
    Row(
        "GET",
        "/u/{namespace}/members",
        "org members page",
        {"-": "404 404 200 200 200 200 404 404 404"},
        lambda c: "/u/acme/members",
    ),
    Row("GET", "/static/{file_path}", "static file", {"-": EVERYONE}, lambda c: "/static/hub.css"),
    *[
        Row("POST", template, f"{label} form without CSRF", {"-": " ".join(["403"] * 9)}, path)
        for template, label, path in (
            ("/signin", "sign-in", lambda c: "/signin"),
            ("/signout", "sign-out", lambda c: "/signout"),
            ("/tokens", "new token", lambda c: "/tokens"),
            ("/tokens/{token_id}/revoke", "revoke token", lambda c: "/tokens/1/revoke"),
            ("/embeddings/{namespace}/{name}/star", "star", lambda c: "/embeddings/acme/pub/star"),
            ("/train", "training job", lambda c: "/train"),
            ("/u/{namespace}/members", "set member", lambda c: "/u/acme/members"),
            (
                "/u/{namespace}/members/{username}/remove",
                "remove member",
                lambda c: "/u/acme/members/rita/remove",
            ),
            ("/jobs/{job_id}/cancel", "cancel job", lambda c: "/jobs/tj_0/cancel"),
        )
    ],
]
