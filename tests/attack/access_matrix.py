"""The access matrix as one table: every route x every kind of caller x {public, private user,
private org} -> the expected answer. ``test_access_matrix.py`` builds the world, runs every cell
and reports all wrong cells at once; it also fails when the app has a route this table lacks.

Callers, in the order of each row's nine answers:

    anon      no token                       outsider  oscar, a user with no role
    member    rita, reader of org acme       maint     max, maintainer of acme
    owner     olivia (namespace olivia, owner of acme)
    admin     root (admin scope)             worker    trainer (worker scope only)
    revoked   olivia's revoked token         expired   olivia's expired token

Resources: ``pub`` = acme/pub (public), ``user`` = olivia/secret (private), ``org`` = acme/brand
(private); each has version 1 published by a training job with one recorded preview, and tag
``stable``. Training rows use ``user`` (a job for olivia/...) and ``org`` (acme/...); routes with
no resource use ``-``. An answer is a status (``200``), alternatives (``200|307``), or for
listing routes ``L`` (200 and listed) / ``H`` (200 and hidden).

Private things answer 404 to whoever may not see them, never 403 (their existence is a secret).
"""

from __future__ import annotations

from tests.attack.access_matrix_web import WEB_ROWS
from tests.attack.access_vocabulary import (
    ACCOUNT,
    CALLERS,
    EVERYONE,
    JOB_SEEN,
    LIST,
    READ,
    STAR,
    WORKER_ONLY,
    E,
    J,
    Row,
    _json,
    owner_only,
    write,
)

API_ROWS: list[Row] = [
    # -- reading an embedding -------------------------------------------------------------
    Row("GET", E, "info", READ, lambda c: c.base),
    Row("GET", f"{E}/versions", "versions", READ, lambda c: f"{c.base}/versions"),
    Row("GET", f"{E}/similar", "similar", READ, lambda c: f"{c.base}/similar"),
    Row("GET", f"{E}/versions/{{ref}}", "version 1", READ, lambda c: f"{c.base}/versions/1"),
    Row("GET", f"{E}/versions/{{ref}}", "tag", READ, lambda c: f"{c.base}/versions/stable"),
    Row("GET", f"{E}/versions/{{ref}}", "latest", READ, lambda c: f"{c.base}/versions/latest"),
    Row("GET", f"{E}/versions/{{ref}}", "digest", READ, lambda c: f"{c.base}/versions/{c.digest}"),
    Row(
        "GET",
        f"{E}/versions/{{ref}}/file",
        "file (bytes by digest)",
        {k: v.replace("200", "200|307") for k, v in READ.items()},
        lambda c: f"{c.base}/versions/1/file",
    ),
    Row(
        "GET",
        f"{E}/versions/{{ref}}/file",
        "file a1111",
        READ,
        lambda c: f"{c.base}/versions/1/file?format=a1111",
    ),
    Row(
        "GET",
        f"{E}/versions/{{ref}}/previews/{{digest}}",
        "preview (bytes by digest)",
        READ,
        lambda c: f"{c.base}/versions/1/previews/{c.preview}",
    ),
    Row(
        "GET",
        f"{E}/versions/{{ref}}/previews/{{digest}}",
        "preview naming the file's digest",
        {k: "404 404 404 404 404 404 404 404 404" for k in READ},
        lambda c: f"{c.base}/versions/1/previews/{c.digest}",
    ),
    Row(
        "HEAD",
        "/api/v1/blobs/{digest}",
        "head blob (bytes by digest)",
        READ,
        lambda c: f"/api/v1/blobs/{c.digest}",
    ),
    Row(
        "GET", "/api/v1/lookup", "lookup digest", LIST, lambda c: f"/api/v1/lookup?hash={c.digest}"
    ),
    Row(
        "GET",
        "/api/v1/embeddings",
        "search author",
        LIST,
        lambda c: f"/api/v1/embeddings?author={c.ns}&limit=100",
    ),
    # -- writing an embedding -------------------------------------------------------------
    Row(
        "POST",
        f"{E}/versions",
        "publish",
        {
            "pub": "401 403 403 201 201 201 403 401 401",
            "user": "401 403 403 403 201 201 403 401 401",
            "org": "401 403 403 201 201 201 403 401 401",
        },
        lambda c: f"{c.base}/versions",
        lambda c: {"files": {"file": ("e", c.fresh_file())}},
    ),
    Row(
        "POST",
        f"{E}/versions",
        "publish by digest (bytes by digest)",
        {
            "pub": "401 201 201 201 201 201 403 401 401",
            "user": "401 404 404 404 201 201 403 401 401",
            "org": "401 404 201 201 201 201 403 401 401",
        },
        lambda c: f"/api/v1/embeddings/{c.own_ns}/copy-{c.resource}/versions",
        lambda c: {"files": {"digest": (None, c.digest)}},
    ),
    Row("PATCH", E, "edit", write("200"), lambda c: c.base, _json({"description": "edited"})),
    Row(
        "POST",
        f"{E}/versions/{{number}}/yank",
        "yank",
        write("200"),
        lambda c: f"{c.base}/versions/1/yank",
    ),
    Row(
        "POST",
        f"{E}/versions/{{number}}/unyank",
        "unyank",
        write("200"),
        lambda c: f"{c.base}/versions/1/unyank",
    ),
    Row(
        "PUT",
        f"{E}/tags/{{tag}}",
        "put tag",
        write("200"),
        lambda c: f"{c.base}/tags/mine",
        _json({"version": 1}),
    ),
    Row(
        "DELETE",
        f"{E}/tags/{{tag}}",
        "delete tag",
        write("204"),
        lambda c: f"{c.base}/tags/doomed",
        prepare=lambda c: c.make_tag("doomed"),
    ),
    Row("PUT", f"{E}/star", "star", STAR, lambda c: f"{c.base}/star"),
    Row("DELETE", f"{E}/star", "unstar", STAR, lambda c: f"{c.base}/star"),
    Row(
        "DELETE",
        E,
        "delete",
        owner_only("204"),
        lambda c: c.disposable,
        prepare=lambda c: c.make_disposable(),
    ),
    # -- accounts ---------------------------------------------------------------------------
    Row("GET", "/api/v1/whoami", "whoami", {"-": ACCOUNT}, lambda c: "/api/v1/whoami"),
    Row(
        "POST",
        "/api/v1/tokens",
        "create token",
        {"-": ACCOUNT.replace("200", "201")},
        lambda c: "/api/v1/tokens",
        _json({"name": "t", "scopes": ["read"]}),
    ),
    Row("GET", "/api/v1/tokens", "list tokens", {"-": ACCOUNT}, lambda c: "/api/v1/tokens"),
    Row(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        "revoke olivia's token",
        {"-": "401 404 404 404 204 204 403 401 401"},
        lambda c: f"/api/v1/tokens/{c.spare_token}",
        prepare=lambda c: c.make_spare_token(),
    ),
    Row(
        "POST",
        "/api/v1/users",
        "create user",
        {"-": "401 403 403 403 403 201 403 401 401"},
        lambda c: "/api/v1/users",
        lambda c: {"json": {"username": c.unique("u")}},
    ),
    Row(
        "GET",
        "/api/v1/users/{username}",
        "user profile",
        {"-": EVERYONE},
        lambda c: "/api/v1/users/olivia",
    ),
    Row(
        "POST",
        "/api/v1/orgs",
        "create org",
        {"-": ACCOUNT.replace("200", "201")},
        lambda c: "/api/v1/orgs",
        lambda c: {"json": {"name": c.unique("o")}},
    ),
    Row(
        "GET",
        "/api/v1/orgs/{org_name}/members",
        "org members",
        {"-": "404 404 200 200 200 200 404 404 404"},
        lambda c: "/api/v1/orgs/acme/members",
    ),
    Row(
        "PUT",
        "/api/v1/orgs/{org_name}/members/{username}",
        "set member",
        {"-": "401 403 403 403 200 200 403 401 401"},
        lambda c: "/api/v1/orgs/acme/members/temp",
        _json({"role": "reader"}),
    ),
    Row(
        "DELETE",
        "/api/v1/orgs/{org_name}/members/{username}",
        "remove member",
        {"-": "401 403 403 403 204 204 403 401 401"},
        lambda c: "/api/v1/orgs/acme/members/temp",
        prepare=lambda c: c.make_member("temp"),
    ),
    # -- training ---------------------------------------------------------------------------
    Row(
        "POST",
        "/api/v1/training-jobs",
        "submit job",
        {
            "user": "401 403 403 403 201 201 403 401 401",
            "org": "401 403 403 201 201 201 403 401 401",
        },
        lambda c: "/api/v1/training-jobs",
        lambda c: c.submission(),
    ),
    Row(
        "GET",
        "/api/v1/training-jobs",
        "list jobs",
        {"-": ACCOUNT},
        lambda c: "/api/v1/training-jobs",
    ),
    Row("GET", J, "job", JOB_SEEN, lambda c: f"/api/v1/training-jobs/{c.job}"),
    Row(
        "GET",
        f"{J}/images/{{digest}}",
        "job image (bytes by digest)",
        JOB_SEEN,
        lambda c: f"/api/v1/training-jobs/{c.job}/images/{c.image}",
    ),
    Row(
        "POST",
        f"{J}/cancel",
        "cancel job",
        {
            "user": "404 404 404 404 200 200 404 404 404",
            "org": "404 404 403 200 200 200 404 404 404",
        },
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/cancel",
        prepare=lambda c: c.make_job(),
    ),
    Row(
        "GET",
        f"{J}/checkpoint",
        "job checkpoint (bytes by digest)",
        {
            "user": "404 404 404 404 200 200 200 404 404",
            "org": "404 404 200 200 200 200 200 404 404",
        },
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/checkpoint",
        prepare=lambda c: c.make_running_job(checkpoint=True),
    ),
    Row(
        "POST",
        f"{J}/heartbeat",
        "heartbeat",
        {"user": WORKER_ONLY, "org": WORKER_ONLY},
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/heartbeat",
        lambda c: {"json": {"lease": c.lease, "step": 1}},
        prepare=lambda c: c.make_running_job(),
    ),
    Row(
        "PUT",
        f"{J}/checkpoint",
        "upload checkpoint",
        {"user": WORKER_ONLY, "org": WORKER_ONLY},
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/checkpoint",
        lambda c: {"data": {"lease": c.lease, "step": "1"}, "files": {"file": ("c", b"ckpt")}},
        prepare=lambda c: c.make_running_job(),
    ),
    Row(
        "POST",
        f"{J}/complete",
        "complete",
        {"user": WORKER_ONLY, "org": WORKER_ONLY},
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/complete",
        lambda c: c.completion(),
        prepare=lambda c: c.make_running_job(),
    ),
    Row(
        "POST",
        f"{J}/fail",
        "fail",
        {"user": WORKER_ONLY, "org": WORKER_ONLY},
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/fail",
        lambda c: {"json": {"lease": c.lease, "error": "x", "retry": False}},
        prepare=lambda c: c.make_running_job(),
    ),
    Row(
        "POST",
        f"{J}/release",
        "release",
        {"user": WORKER_ONLY, "org": WORKER_ONLY},
        lambda c: f"/api/v1/training-jobs/{c.fresh_job}/release",
        lambda c: {"json": {"lease": c.lease}},
        prepare=lambda c: c.make_running_job(),
    ),
    Row(
        "POST",
        "/api/v1/workers/register",
        "register worker",
        {"-": "401 403 403 403 403 201 201 401 401"},
        lambda c: "/api/v1/workers/register",
        _json({"families": ["sdxl"]}),
    ),
    Row(
        "POST",
        "/api/v1/workers/{worker_id}/claim",
        "claim",
        {"-": "401 403 403 403 403 200|204 200|204 401 401"},
        lambda c: f"/api/v1/workers/{c.worker_id}/claim",
    ),
    # -- operations -------------------------------------------------------------------------
    Row("GET", "/healthz", "health", {"-": EVERYONE}, lambda c: "/healthz"),
    Row("GET", "/readyz", "readiness", {"-": EVERYONE}, lambda c: "/readyz"),
    Row("GET", "/metrics", "metrics", {"-": EVERYONE}, lambda c: "/metrics"),
]

ROWS = API_ROWS + WEB_ROWS


def cells() -> list[tuple[Row, str, str, str]]:
    """Every (row, resource, caller, expected answer)."""
    out = []
    for row in ROWS:
        for resource, answers in row.expect.items():
            for caller, expected in zip(CALLERS, answers.split(), strict=True):
                out.append((row, resource, caller, expected))
    return out
