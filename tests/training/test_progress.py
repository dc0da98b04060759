"""A job's stored progress as a user sees it (``hub job``, ``hub train --wait``): the whole loss
curve with step numbers (bounded), the total that shrinks when early stopping ends the run, and
no ETA once the job has finished."""

from __future__ import annotations

from client.core.loss_curve import MAX_POINTS
from tests.registry.helpers import auth
from tests.training.conftest import TrainingHub
from tests.training.test_protocol import complete


def running_job(hub: TrainingHub, **kw):  # type: ignore[no-untyped-def]
    alice, wtoken = hub.user("alice"), hub.worker_token()
    job = hub.submitted(alice, **kw)
    lease = hub.claim(wtoken, hub.register(wtoken, ["sd1"])).json()["lease"]

    def beat(**body):  # type: ignore[no-untyped-def]
        r = hub.client.post(
            f"/api/v1/training-jobs/{job['id']}/heartbeat",
            json={"lease": lease, **body},
            headers=auth(wtoken),
        )
        assert r.status_code == 200, r.text

    def shown():  # type: ignore[no-untyped-def]
        return hub.get(f"/api/v1/training-jobs/{job['id']}", alice).json()

    return job, alice, wtoken, lease, beat, shown


def test_the_whole_loss_curve_is_kept_with_step_numbers(thub: TrainingHub) -> None:
    _, _, _, _, beat, shown = running_job(thub, steps=5000)
    for end in range(250, 5001, 250):
        beat(step=end, losses=[1.0 - s / 5000 for s in range(end - 249, end + 1)], eta_s=9.0)
    losses = shown()["losses"]
    assert MAX_POINTS // 2 <= len(losses) <= MAX_POINTS
    assert losses[0][0] <= 16 and losses[-1][0] == 5000  # from the start, not the last 100
    assert abs(losses[0][1] - 1.0) < 0.01 and abs(losses[-1][1]) < 0.01


def test_early_stopping_shrinks_the_total_and_a_finished_job_has_no_eta(thub) -> None:
    job, _, wtoken, lease, beat, shown = running_job(thub, steps=2000)
    beat(step=590, losses=[0.5] * 10, eta_s=144.0)
    assert (shown()["total_steps"], shown()["eta_s"]) == (2000, 144.0)
    beat(step=600, losses=[0.5] * 10, eta_s=0.0, total_steps=600)  # DVAR stopped at 600
    assert (shown()["step"], shown()["total_steps"]) == (600, 600)
    beat(step=600, total_steps=5000)  # a total can only shrink, never past the cap
    beat(step=600, total_steps=10)  # nor below the step reached
    assert shown()["total_steps"] == 600
    r = complete(thub, wtoken, job["id"], lease, "key-123456")
    assert r.status_code == 200, r.text
    done = shown()
    assert done["status"] == "succeeded" and done["eta_s"] is None
    assert done["total_steps"] == 600


def test_a_cancelled_job_has_no_eta(thub: TrainingHub) -> None:
    job, alice, _, _, beat, shown = running_job(thub)
    beat(step=5, losses=[0.5] * 5, eta_s=30.0)
    r = thub.client.post(f"/api/v1/training-jobs/{job['id']}/cancel", headers=auth(alice))
    assert r.status_code == 200, r.text
    assert (shown()["status"], shown()["eta_s"]) == ("cancelled", None)
