"""Every cell of the access matrix (``tests/attack/access_matrix.py``) on both backends: one test
per backend runs all cells and reports every wrong one at once. The table must name every route
the app serves, so a new route cannot ship without its row."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.db import session_scope
from tests.attack.access_matrix import ROWS, cells
from tests.attack.access_vocabulary import CALLERS, JOB_NAMESPACES, RESOURCES, Row
from tests.registry.helpers import Hub, auth, embedding_bytes
from tests.training.conftest import job_params, png

_counter = itertools.count()


class World:
    """The callers, resources, jobs and worker of one registry (see the table's docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.tokens: dict[str, str | None] = {"anon": None}
        for caller, user in (
            ("outsider", "oscar"),
            ("member", "rita"),
            ("maint", "max"),
            ("owner", "olivia"),
        ):
            self.tokens[caller] = hub.user(user)
        hub.user("temp")
        self.tokens["admin"] = hub.user("root", admin=True, scopes=["read", "write", "admin"])
        self.tokens["worker"] = hub.user("trainer", scopes=["worker"])
        hub.org("acme", "olivia", {"rita": "reader", "max": "maintainer"})
        self.tokens["revoked"] = hub.token("olivia")
        self.tokens["expired"] = hub.token("olivia", expires_in_days=30)
        with session_scope(hub.engine) as session:
            tokens = session.exec(select(ApiToken).where(ApiToken.name == "extra")).all()
            tokens[0].revoked_at = datetime.now(UTC)
            tokens[1].expires_at = datetime.now(UTC) - timedelta(minutes=1)
            session.add_all(tokens)
        self.own_ns = {
            "anon": "olivia",
            "outsider": "oscar",
            "member": "rita",
            "maint": "max",
            "owner": "olivia",
            "admin": "root",
            "worker": "trainer",
            "revoked": "olivia",
            "expired": "olivia",
        }
        r = self.call("POST", "/api/v1/workers/register", "worker", json={"families": ["sd1"]})
        self.worker_id = r.json()["id"]
        self.versions: dict[str, dict[str, Any]] = {}
        for key, ref in RESOURCES.items():
            visibility = "public" if key == "pub" else "private"
            job = self.submit(ref, "sd1", visibility)
            lease = self.claim(job)
            done = self.call(
                "POST",
                f"/api/v1/training-jobs/{job}/complete",
                "worker",
                **self.completion_parts(lease),
            )
            assert done.status_code == 200, done.text
            self.call("PUT", f"/api/v1/embeddings/{ref}/tags/stable", "owner", json={"version": 1})
            self.versions[key] = self.call(
                "GET", f"/api/v1/embeddings/{ref}/versions/1", "owner"
            ).json()
        self.jobs = {k: self.submit(f"{ns}/standing", "sd2") for k, ns in JOB_NAMESPACES.items()}
        self._images: dict[str, str] = {}

    def job_image(self, job: str) -> str:
        """The first training image's digest of ``job`` (asked once per job, not per cell)."""
        if job not in self._images:
            shown = self.call("GET", f"/api/v1/training-jobs/{job}", "owner").json()
            self._images[job] = shown["images"][0]["digest"]
        return self._images[job]

    def call(self, method: str, path: str, caller: str, **kw: Any) -> Any:
        return self.hub.client.request(method, path, headers=auth(self.tokens[caller]), **kw)

    def submit(self, target: str, family: str, visibility: str | None = None) -> str:
        params = job_params(target=target, family=family)
        if visibility:
            params["visibility"] = visibility
        files = [("params", (None, json.dumps(params)))]
        files += [("images", (f"{i}.png", png(seed=i))) for i in range(2)]
        r = self.call("POST", "/api/v1/training-jobs", "owner", files=files)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def claim(self, job: str) -> str:
        """Claim ``job``: first, jobs earlier cells handed back are taken off the queue."""
        from sqlalchemy import update

        from registry.training.models import TrainingJob

        with session_scope(self.hub.engine) as session:
            session.execute(
                update(TrainingJob)
                .where(TrainingJob.status == "queued", TrainingJob.id != job)
                .where(TrainingJob.family == "sd1")
                .values(status="cancelled")
            )
        r = self.call("POST", f"/api/v1/workers/{self.worker_id}/claim", "worker")
        assert r.status_code == 200 and r.json()["job"]["id"] == job, r.text
        return str(r.json()["lease"])

    def completion_parts(self, lease: str) -> dict[str, Any]:
        return {
            "data": {"lease": lease, "idempotency_key": f"key-{next(_counter):06d}"},
            "files": [
                ("file", ("e.safetensors", embedding_bytes(token="<toy>"))),
                ("previews", ("p.png", png(16, 16, seed=next(_counter)), "image/png")),
            ],
        }


class Cell:
    """What a row's builders see: the resource, the caller, and things made for this cell."""

    def __init__(self, world: World, resource: str, caller: str) -> None:
        self.world, self.resource, self.caller = world, resource, caller
        self.ref = RESOURCES.get(resource, "acme/pub")
        self.ns = self.ref.split("/")[0]
        self.base = f"/api/v1/embeddings/{self.ref}"
        version = world.versions.get(resource, world.versions["pub"])
        self.digest = version["digest"]
        self.preview = version["training"]["previews"][0]["digest"]
        self.own_ns = world.own_ns[caller]
        self.job = world.jobs.get(resource, "")
        self.job_ns = JOB_NAMESPACES.get(resource, "olivia")
        self.image = world.job_image(self.job) if self.job else ""
        self.worker_id = world.worker_id
        self.fresh_job = self.lease = self.disposable = self.spare_token = ""

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(_counter)}"

    def fresh_file(self) -> bytes:
        return embedding_bytes()

    def make_tag(self, tag: str) -> None:
        self.world.call("PUT", f"{self.base}/tags/{tag}", "owner", json={"version": 1})

    def make_disposable(self) -> None:
        ns = self.ns
        name = self.unique("doomed")
        meta = {"visibility": "public" if self.resource == "pub" else "private"}
        r = self.world.hub.publish(ns, name, self.world.tokens["owner"], meta=meta)
        assert r.status_code == 201, r.text
        self.disposable = f"/api/v1/embeddings/{ns}/{name}"

    def make_spare_token(self) -> None:
        self.spare_token = self.world.call(
            "POST", "/api/v1/tokens", "owner", json={"name": "spare"}
        ).json()["id"]

    def make_member(self, username: str) -> None:
        with session_scope(self.world.hub.engine) as session:
            org = accounts.get_org(session, "acme")
            accounts.set_membership(session, org, accounts.get_user(session, username), "reader")

    def submission(self) -> dict[str, Any]:
        params = job_params(target=f"{self.job_ns}/{self.unique('job')}", family="sd2")
        files = [("params", (None, json.dumps(params)))]
        return {"files": files + [("images", (f"{i}.png", png(seed=i))) for i in range(2)]}

    def make_job(self) -> None:
        self.fresh_job = self.world.submit(f"{self.job_ns}/{self.unique('job')}", "sd2")

    def make_running_job(self, checkpoint: bool = False) -> None:
        self.fresh_job = self.world.submit(f"{self.job_ns}/{self.unique('run')}", "sd1")
        self.lease = self.world.claim(self.fresh_job)
        if checkpoint:
            r = self.world.call(
                "PUT",
                f"/api/v1/training-jobs/{self.fresh_job}/checkpoint",
                "worker",
                data={"lease": self.lease, "step": "1"},
                files={"file": ("c", b"checkpoint")},
            )
            assert r.status_code == 200, r.text

    def completion(self) -> dict[str, Any]:
        return self.world.completion_parts(self.lease)


def _answer(row: Row, cell: Cell, response: Any) -> str:
    if row.expect.get(cell.resource, "").split()[0] in ("L", "H"):
        if response.status_code != 200:
            return str(response.status_code)
        refs = {i.get("ref", "").split("@")[0] for i in response.json()["items"]}
        refs |= {f"{i.get('namespace')}/{i.get('name')}" for i in response.json()["items"]}
        return "L" if cell.ref in refs else "H"
    return str(response.status_code)


def _declared_routes(app: Any) -> set[tuple[str, str]]:
    import re

    found = set()
    for route in app.routes:
        path = re.sub(r":[a-z]+}", "}", route.path)
        if path.startswith("/schema"):
            continue
        for method in getattr(route, "methods", ()):
            if method not in ("OPTIONS",) and not (
                method == "HEAD" and path != "/api/v1/blobs/{digest}"
            ):
                found.add((method, path.rstrip("/") or "/"))
    return found


def test_access_matrix(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    # Rate limits are another suite's subject; here every cell must reach the access rule.
    generous = {
        f"rate_limit_{k}": 1_000_000
        for k in (
            "signin_per_minute",
            "failed_auth_per_minute",
            "token_per_second",
            "anonymous_per_second",
        )
    }
    hub = make_hub(backend, **generous)
    world = World(hub)
    covered = {(r.method, r.template.rstrip("/") or "/") for r in ROWS}
    missing = sorted(_declared_routes(hub.app) - covered)
    wrong = [f"route without a row in the access matrix: {m} {p}" for m, p in missing]
    all_cells = cells()
    for row, resource, caller, expected in all_cells:
        cell = Cell(world, resource, caller)
        if row.prepare is not None:
            row.prepare(cell)
        response = world.call(
            row.method, row.path(cell), caller, follow_redirects=False, **row.body(cell)
        )
        got = _answer(row, cell, response)
        if got not in expected.split("|"):
            detail = response.headers.get("x-error-code") or response.text[:80]
            wrong.append(
                f"{row.method} {row.label} [{resource}] as {caller}: expected {expected}, "
                f"got {got} ({detail})"
            )
    assert not wrong, f"{len(wrong)} of {len(all_cells)} cells wrong on {backend}:\n" + "\n".join(
        wrong
    )


def test_the_matrix_has_every_caller_and_resource() -> None:
    assert len(CALLERS) == 9
    labels = {r.label for r in ROWS}
    for bytes_route in (
        "file (bytes by digest)",
        "preview (bytes by digest)",
        "head blob (bytes by digest)",
        "publish by digest (bytes by digest)",
        "job image (bytes by digest)",
        "job checkpoint (bytes by digest)",
    ):
        assert bytes_route in labels
