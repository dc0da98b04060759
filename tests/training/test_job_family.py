"""A job that names neither ``family`` nor ``base_model`` (``hub train`` without --family or
--base-model) trains for the family the registry's live workers serve: the README's toy-world
example needs no --family when its worker serves the toy pipeline. With no live worker, or
live workers of several families, the refusal says which families are served and what to
pass; a job that names its family is queued as before, worker or not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from client.cli.main import app as hub_app
from registry.db import session_scope
from registry.training.models import TrainingJob, TrainingWorker
from tests.registry.helpers import assert_problem, auth
from tests.training.conftest import LiveRegistry, TrainingHub, job_params, png

IMAGES = [("a.png", png(seed=1)), ("b.png", png(seed=2))]


def unnamed(**kw: object) -> dict:
    """Job params without a family (and without a base model unless given)."""
    params = {k: v for k, v in job_params(**kw).items() if k != "family"}
    return {k: v for k, v in params.items() if v is not None}


def last_seen(hub: TrainingHub, worker_id: str, ago_s: float) -> None:
    with session_scope(hub.engine) as session:
        worker = session.get(TrainingWorker, worker_id)
        worker.last_seen_at = datetime.now(UTC) - timedelta(seconds=ago_s)
        session.add(worker)


def test_the_family_of_the_one_live_worker_is_the_jobs(thub: TrainingHub) -> None:
    alice, wtoken = thub.user("alice"), thub.worker_token()
    worker = thub.register(wtoken, ["sd1"])
    r = thub.submit(alice, unnamed(), IMAGES)
    assert r.status_code == 201, r.text
    assert r.json()["family"] == "sd1"
    (row,) = thub.rows(TrainingJob)
    assert (row.family, row.params["family"], row.base_model) == ("sd1", "sd1", None)
    claim = thub.claim(wtoken, worker)
    assert claim.status_code == 200 and claim.json()["job"]["id"] == r.json()["id"]


def test_with_no_live_worker_the_refusal_says_to_pass_family_or_base_model(
    thub: TrainingHub,
) -> None:
    alice = thub.user("alice")
    body = assert_problem(thub.submit(alice, unnamed(), IMAGES), 400, "bad_request")
    assert "no training worker" in body["detail"], body
    assert "--family" in body["detail"] and "--base-model" in body["detail"], body
    assert thub.rows(TrainingJob) == []
    # A worker last seen longer ago than a lease is gone: it does not choose the family.
    stale = thub.register(thub.worker_token(), ["sd1"])
    last_seen(thub, stale, thub.settings.training_lease_seconds + 5)
    body = assert_problem(thub.submit(alice, unnamed(), IMAGES), 400, "bad_request")
    assert "no training worker" in body["detail"], body
    # Naming the family still queues the job for a worker yet to come.
    assert thub.submit(alice, job_params(family="sd2"), IMAGES).status_code == 201


def test_live_workers_of_two_families_are_both_named(thub: TrainingHub) -> None:
    alice = thub.user("alice")
    thub.register(thub.worker_token("w1"), ["sd1"])
    thub.register(thub.worker_token("w2"), ["sdxl"])
    thub.register(thub.worker_token("w3"), ["sdxl"])
    body = assert_problem(thub.submit(alice, unnamed(), IMAGES), 400, "bad_request")
    assert "sd1, sdxl" in body["detail"], body
    assert "--family" in body["detail"] and "--base-model" in body["detail"], body
    assert thub.rows(TrainingJob) == []


def test_a_busy_worker_counts_and_a_gone_one_does_not(thub: TrainingHub) -> None:
    """A worker training a long job claims nothing for hours, but its lease shows it is alive."""
    alice = thub.user("alice")
    busy_token = thub.worker_token("busy")
    busy = thub.register(busy_token, ["sdxl"])
    thub.submitted(alice, family="sdxl")
    assert thub.claim(busy_token, busy).status_code == 200
    last_seen(thub, busy, 3600)
    gone = thub.register(thub.worker_token("gone"), ["sd1"])
    last_seen(thub, gone, 3600)
    r = thub.submit(alice, unnamed(target="alice/second"), IMAGES)
    assert r.status_code == 201, r.text
    assert r.json()["family"] == "sdxl"


def test_an_unknown_base_model_takes_the_family_of_the_workers_that_serve_it(
    thub: TrainingHub,
) -> None:
    alice = thub.user("alice")
    thub.register(thub.worker_token("w1"), ["sd1"])
    thub.register(thub.worker_token("w2"), ["sd2"], ["someone/sd2-finetune"])
    r = thub.submit(alice, unnamed(base_model="someone/sd2-finetune"), IMAGES)
    assert r.status_code == 201, r.text
    assert (r.json()["family"], r.json()["base_model"]) == ("sd2", "someone/sd2-finetune")
    body = assert_problem(
        thub.submit(alice, unnamed(base_model="someone/other-model"), IMAGES), 400, "bad_request"
    )
    assert "someone/other-model" in body["detail"] and "--family" in body["detail"], body


# -- hub train ----------------------------------------------------------------------------------
def _train(reg: LiveRegistry, token: str, tmp: Path) -> tuple[int, str]:
    image = tmp / "a.png"
    image.write_bytes(png(seed=1))
    args = ["train", str(image), "--name", "alice/toy", "--trigger", "<toy>", "--init", "shape"]
    env = {"LEXICON_URL": reg.url, "LEXICON_TOKEN": token, "LEXICON_CACHE": str(tmp / "cache")}
    result = CliRunner().invoke(hub_app, [*args, "--json"], env=env)
    return result.exit_code, result.output


def test_hub_train_without_family_uses_the_workers(
    live_registry: LiveRegistry, tmp_path: Path
) -> None:
    reg = live_registry
    alice = reg.user("alice")
    code, output = _train(reg, alice, tmp_path)
    assert code != 0 and "no training worker" in output and "--family" in output, output
    r = httpx.post(
        f"{reg.url}/api/v1/workers/register",
        json={"name": "toy", "families": ["sd1"]},
        headers=auth(reg.worker_token("toy")),
    )
    assert r.status_code == 201, r.text
    code, output = _train(reg, alice, tmp_path)
    assert code == 0, output
    assert json.loads(output)["family"] == "sd1"


def test_a_family_or_base_model_of_the_wrong_shape_is_a_400_naming_the_field(
    thub: TrainingHub,
) -> None:
    """A list or object where a family name goes, or a NUL in a base-model id, is the caller's
    mistake: 400 naming the field, nothing queued (a list crashed the check, a NUL reached the
    database)."""
    alice = thub.user("alice")
    for field, value in [
        ("family", ["sd1"]),
        ("family", {"name": "sd1"}),
        ("base_model", "org/model\x00x"),
        ("base_model", ["org/model"]),
    ]:
        r = thub.submit(alice, {**unnamed(), "family": "sd1", field: value}, IMAGES)
        body = assert_problem(r, 400, "bad_request")
        assert field in body["detail"], body
    assert thub.rows(TrainingJob) == []
