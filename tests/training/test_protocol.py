"""The worker protocol over HTTP (in-process registry, SQLite): claims only what a worker can
run, leases that expire and requeue, a lost lease that cannot report or publish, publishing
exactly once, the retry policy, cancel, and who may see a job."""

from __future__ import annotations

import time

import pytest

from client.core.canonical import canonical_bytes
from registry.db import session_scope
from registry.training.models import TrainingJob
from tests.registry.helpers import assert_problem, auth, random_vectors
from tests.training.conftest import TrainingHub, png


def result_bytes(family: str = "sd1", seed: int = 1) -> bytes:
    return canonical_bytes(random_vectors(family, 1, token="<toy>", seed=seed))


def complete(hub: TrainingHub, wtoken: str, job_id: str, lease: str, key: str, **kw):
    files = [("file", ("toy.safetensors", kw.pop("data", None) or result_bytes()))]
    files += [
        ("previews", (f"p{i}.png", p, "image/png")) for i, p in enumerate(kw.pop("previews", []))
    ]
    return hub.client.post(
        f"/api/v1/training-jobs/{job_id}/complete",
        data={"lease": lease, "idempotency_key": key, "metadata": '{"steps": 30}'},
        files=files,
        headers=auth(wtoken),
    )


def test_a_worker_claims_only_jobs_of_its_family_and_base_model(thub: TrainingHub) -> None:
    alice = thub.user("alice")
    wtoken = thub.worker_token()
    sdxl = thub.submitted(alice, family="sdxl")
    sd2_tuned = thub.submitted(alice, family="sd2", base_model="someone/sd2-finetune")
    sd2 = thub.submitted(alice, family="sd2")
    worker = thub.register(wtoken, ["sd2"], ["stabilityai/stable-diffusion-2-1"])
    r = thub.claim(wtoken, worker)
    assert r.status_code == 200, r.text
    assert r.json()["job"]["id"] == sd2["id"]  # not the older sdxl job, not the fine-tune's
    assert thub.claim(wtoken, worker).status_code == 204
    for job in (sdxl, sd2_tuned):
        assert thub.get(f"/api/v1/training-jobs/{job['id']}", alice).json()["status"] == "queued"


def test_heartbeat_extends_the_lease_and_an_expired_lease_requeues(make_training_hub) -> None:
    hub = make_training_hub(training_lease_seconds=1, training_max_attempts=2)
    alice, w1, w2 = hub.user("alice"), hub.worker_token("w1"), hub.worker_token("w2")
    job = hub.submitted(alice)
    k1, k2 = hub.register(w1, ["sd1"]), hub.register(w2, ["sd1"])
    claim = hub.claim(w1, k1).json()
    lease = claim["lease"]
    beat = hub.client.post(
        f"/api/v1/training-jobs/{job['id']}/heartbeat",
        json={"lease": lease, "step": 5, "losses": [0.5, 0.4], "eta_s": 3.0},
        headers=auth(w1),
    )
    assert beat.status_code == 200 and beat.json()["cancel"] is False
    shown = hub.get(f"/api/v1/training-jobs/{job['id']}", alice).json()
    assert (shown["status"], shown["step"]) == ("running", 5)
    assert shown["losses"] == [[4, 0.5], [5, 0.4]]  # [step, loss]
    assert shown["worker"]["id"] == k1 and shown["attempts"] == 1
    assert hub.claim(w2, k2).status_code == 204  # held
    time.sleep(1.2)
    second = hub.claim(w2, k2)
    assert second.status_code == 200 and second.json()["job"]["attempts"] == 2
    # The first worker lost its lease: no progress, no publishing.
    late = hub.client.post(
        f"/api/v1/training-jobs/{job['id']}/heartbeat", json={"lease": lease}, headers=auth(w1)
    )
    assert_problem(late, 409, "conflict")
    assert_problem(complete(hub, w1, job["id"], lease, "key-of-w1"), 409, "conflict")
    time.sleep(1.2)  # the second lease expires too: the last allowed attempt is used up
    assert hub.claim(w1, k1).status_code == 204
    shown = hub.get(f"/api/v1/training-jobs/{job['id']}", alice).json()
    assert shown["status"] == "failed" and "lease expired" in shown["error"]


def test_complete_publishes_exactly_once_with_previews(thub: TrainingHub) -> None:
    alice, wtoken = thub.user("alice"), thub.worker_token()
    job = thub.submitted(alice)
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    preview = png(16, 16, seed=9)
    first = complete(thub, wtoken, job["id"], lease, "key-123456", previews=[preview])
    assert first.status_code == 200, first.text
    again = complete(thub, wtoken, job["id"], lease, "key-123456", previews=[preview])
    assert again.status_code == 200 and again.json()["result"] == first.json()["result"]
    other = complete(thub, wtoken, job["id"], lease, "another-key", data=result_bytes(seed=2))
    assert_problem(other, 409, "conflict")
    assert first.json()["result"]["ref"] == "alice/toy@1"
    versions = thub.get("/api/v1/embeddings/alice/toy/versions", alice).json()["items"]
    assert len(versions) == 1
    training = versions[0]["training"]
    assert training["job"] == job["id"] and training["params"]["trigger"] == "<toy>"
    assert training["dataset"] == [i["digest"] for i in job["images"]]
    digest = training["previews"][0]["digest"]
    got = thub.get(f"/api/v1/embeddings/alice/toy/versions/1/previews/{digest}", alice)
    assert got.status_code == 200 and got.content == preview


def test_a_complete_cut_short_after_publishing_is_not_published_twice(thub: TrainingHub) -> None:
    """The registry dies between publishing the version and marking the job done; the job goes
    back to the queue and the next worker (whose vectors differ) completes: still one version."""
    alice, wtoken = thub.user("alice"), thub.worker_token()
    job = thub.submitted(alice)
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    first = complete(thub, wtoken, job["id"], lease, "key-first-1")
    assert first.status_code == 200, first.text
    with session_scope(thub.engine) as session:  # undo what the lost final update wrote
        row = session.get(TrainingJob, job["id"])
        row.status, row.idempotency_key, row.result_number = "queued", None, None
        row.lease_id = row.lease_expires_at = None
        session.add(row)
    lease = thub.claim(wtoken, worker).json()["lease"]
    second = complete(thub, wtoken, job["id"], lease, "key-second", data=result_bytes(seed=7))
    assert second.status_code == 200, second.text
    assert second.json()["result"] == first.json()["result"]
    versions = thub.get("/api/v1/embeddings/alice/toy/versions", alice).json()["items"]
    assert [v["number"] for v in versions] == [1]


def test_previews_of_a_private_embedding_are_404_to_outsiders(thub: TrainingHub) -> None:
    alice, bob, wtoken = thub.user("alice"), thub.user("bob"), thub.worker_token()
    job = thub.submitted(alice, visibility="private")
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    done = complete(thub, wtoken, job["id"], lease, "key-123456", previews=[png(16, 16)])
    assert done.status_code == 200, done.text
    version = thub.get("/api/v1/embeddings/alice/toy/versions/1", alice).json()
    digest = version["training"]["previews"][0]["digest"]
    path = f"/api/v1/embeddings/alice/toy/versions/1/previews/{digest}"
    assert thub.get(path, alice).status_code == 200
    assert_problem(thub.get(path, bob), 404, "not_found")
    assert_problem(thub.get(path), 404, "not_found")


def test_fail_requeues_until_max_attempts_and_release_does_not_count(make_training_hub) -> None:
    hub = make_training_hub(training_max_attempts=2)
    alice, wtoken = hub.user("alice"), hub.worker_token()
    job = hub.submitted(alice)
    worker = hub.register(wtoken, ["sd1"])
    path = f"/api/v1/training-jobs/{job['id']}"

    def claim() -> str:
        return hub.claim(wtoken, worker).json()["lease"]

    r = hub.client.post(f"{path}/release", json={"lease": claim()}, headers=auth(wtoken))
    assert r.json()["status"] == "queued" and r.json()["attempts"] == 0
    r = hub.client.post(
        f"{path}/fail", json={"lease": claim(), "error": "oom"}, headers=auth(wtoken)
    )
    assert (r.json()["status"], r.json()["attempts"]) == ("queued", 1)
    r = hub.client.post(
        f"{path}/fail", json={"lease": claim(), "error": "oom"}, headers=auth(wtoken)
    )
    assert (r.json()["status"], r.json()["error"]) == ("failed", "oom")
    assert hub.claim(wtoken, worker).status_code == 204


def test_a_bad_input_failure_is_not_retried(thub: TrainingHub) -> None:
    alice, wtoken = thub.user("alice"), thub.worker_token()
    job = thub.submitted(alice)
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    r = thub.client.post(
        f"/api/v1/training-jobs/{job['id']}/fail",
        json={"lease": lease, "error": "bad", "retry": False},
        headers=auth(wtoken),
    )
    assert r.json()["status"] == "failed"


def test_cancel_answers_the_next_heartbeat_and_stops_publishing(thub: TrainingHub) -> None:
    alice, wtoken = thub.user("alice"), thub.worker_token()
    job = thub.submitted(alice)
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    r = thub.client.post(f"/api/v1/training-jobs/{job['id']}/cancel", headers=auth(alice))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    beat = thub.client.post(
        f"/api/v1/training-jobs/{job['id']}/heartbeat", json={"lease": lease}, headers=auth(wtoken)
    )
    assert beat.status_code == 200 and beat.json()["cancel"] is True
    assert_problem(complete(thub, wtoken, job["id"], lease, "key-123456"), 409, "conflict")
    assert_problem(thub.get("/api/v1/embeddings/alice/toy", alice), 404, "not_found")


def test_a_job_is_visible_to_its_creator_the_namespace_and_admins_only(thub: TrainingHub) -> None:
    alice, bob, carol = thub.user("alice"), thub.user("bob"), thub.user("carol")
    admin = thub.user("root", admin=True, scopes=["read", "write", "admin"])
    thub.org("acme", "alice", {"bob": "reader"})
    job = thub.submitted(alice, target="acme/logo")
    path = f"/api/v1/training-jobs/{job['id']}"
    for token in (alice, bob, admin):
        assert thub.get(path, token).status_code == 200
    for token in (carol, None):
        assert_problem(thub.get(path, token), 404, "not_found")
        assert_problem(
            thub.get(f"{path}/images/{job['images'][0]['digest']}", token), 404, "not_found"
        )
    assert_problem(thub.client.post(f"{path}/cancel", headers=auth(carol)), 404, "not_found")
    assert [j["id"] for j in thub.get("/api/v1/training-jobs", bob).json()["items"]] == [job["id"]]
    assert thub.get("/api/v1/training-jobs", carol).json()["items"] == []
    image = thub.get(f"{path}/images/{job['images'][0]['digest']}", bob)
    assert image.status_code == 200 and image.content == png(seed=1)


def test_submitting_needs_write_access_to_the_target(thub: TrainingHub) -> None:
    alice, bob = thub.user("alice"), thub.user("bob")
    thub.org("acme", "alice", {"bob": "reader"})
    r = thub.submit(bob, {**_params(), "target": "acme/logo"}, [("a.png", png())])
    assert_problem(r, 403, "forbidden")
    assert_problem(thub.submit(None, _params(), [("a.png", png())]), 401, "unauthorized")
    assert thub.rows(TrainingJob) == []
    assert (
        thub.submit(alice, {**_params(), "target": "acme/logo"}, [("a.png", png())]).status_code
        == 201
    )


def _params() -> dict:
    from tests.training.conftest import job_params

    return job_params()


def test_a_worker_token_is_needed_for_the_worker_protocol(thub: TrainingHub) -> None:
    alice = thub.user("alice")
    r = thub.client.post(
        "/api/v1/workers/register", json={"families": ["sd1"]}, headers=auth(alice)
    )
    assert_problem(r, 403, "forbidden")


def test_create_worker_token_prints_a_token_that_can_register_a_worker(tmp_path) -> None:
    from litestar.testing import TestClient
    from typer.testing import CliRunner

    from registry.app import create_app
    from registry.cli import app as registry_cli
    from registry.settings import Settings

    out = CliRunner().invoke(
        registry_cli, ["create-worker-token", "gpu-1", "--data-dir", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        r = client.post(
            "/api/v1/workers/register", json={"families": ["sdxl"]}, headers=auth(token)
        )
        assert r.status_code == 201, r.text
        # A worker token cannot publish or submit jobs.
        sub = client.post(
            "/api/v1/embeddings/gpu-1/x/versions",
            files={"file": ("x.safetensors", result_bytes(), "application/octet-stream")},
            headers=auth(token),
        )
        assert_problem(sub, 403, "forbidden")


def test_gc_keeps_training_images_checkpoints_and_previews(thub: TrainingHub) -> None:
    from typer.testing import CliRunner

    from registry.cli import app as registry_cli

    alice, wtoken = thub.user("alice"), thub.worker_token()
    job = thub.submitted(alice)
    worker = thub.register(wtoken, ["sd1"])
    lease = thub.claim(wtoken, worker).json()["lease"]
    done = complete(thub, wtoken, job["id"], lease, "key-123456", previews=[png(16, 16)])
    assert done.status_code == 200, done.text
    before = set(thub.store.iter_digests())
    env = {"LEXICON_DATABASE_URL": thub.settings.resolved_database_url}
    out = CliRunner().invoke(
        registry_cli, ["gc", "--data-dir", str(thub.settings.data_dir)], env=env
    )
    assert out.exit_code == 0 and "0 orphan blob(s)" in out.output, out.output
    assert set(thub.store.iter_digests()) == before and len(before) == 4  # 2 images, preview, file


def _register_big_workers(thub: TrainingHub) -> None:
    """A GPU worker's memory does not fit PostgreSQL's 32-bit INTEGER (it answered 500)."""
    wtoken = thub.worker_token()
    body = {"name": "big", "families": ["sd1"], "memory_bytes": 80 * 2**30}
    r = thub.client.post("/api/v1/workers/register", json=body, headers=auth(wtoken))
    assert r.status_code == 201, r.text
    assert r.json()["memory_bytes"] == 80 * 2**30
    body["memory_bytes"] = 2**64
    r = thub.client.post("/api/v1/workers/register", json=body, headers=auth(wtoken))
    assert r.status_code == 400, r.text
    assert "memory_bytes" in r.json()["detail"]


def test_a_worker_with_80_gib_registers_and_past_64_bits_is_refused(thub: TrainingHub) -> None:
    _register_big_workers(thub)


@pytest.mark.postgres
def test_a_worker_with_80_gib_registers_on_postgres(make_training_hub, new_postgres_database):
    _register_big_workers(make_training_hub(new_postgres_database()))
