"""DVAR early stopping on synthetic evaluation-loss curves: the window follows the step cap, so a
2,000-step job whose loss is flat by step ~120 stops long before step 600; a loss that is still
falling does not stop; a run that learns nothing goes to the cap. No torch needed."""

from __future__ import annotations

import numpy as np
import pytest

from client.core.training import TrainingParams
from trainer_service.training.early_stop import DvarRule


def curve(steps: int, every: int, fn, noise: float, seed: int = 0) -> list[float]:
    """The fixed-batch loss at every ``every``-th step up to ``steps``."""
    rng = np.random.default_rng(seed)
    at = np.arange(every, steps + 1, every)
    return (fn(at) + noise * rng.standard_normal(len(at))).tolist()


def stop_step(params: TrainingParams, values: list[float]) -> int | None:
    rule = DvarRule(params.dvar_window, params.early_stop_fraction)
    index = rule.first_stop(values)
    return None if index is None else (index + 1) * params.early_stop_every


def default_job(steps: int = 2000) -> TrainingParams:
    return TrainingParams(trigger="<t>", steps=steps)


def test_the_window_follows_the_step_cap() -> None:
    assert default_job(2000).dvar_window == 20  # 400 evaluations / 20
    assert default_job(100).dvar_window == 10  # never below 10
    assert default_job(20_000).dvar_window == 60  # never above 60 (DVAR's paper)
    explicit = TrainingParams(trigger="<t>", steps=2000, early_stop_window=60)
    assert explicit.dvar_window == 60  # a window the job names is kept


def test_a_loss_flat_by_step_120_stops_a_2000_step_job_well_before_600() -> None:
    """The issue's run: fixed-batch loss flat by step ~120 (time constant 30 steps)."""
    params = default_job(2000)
    values = curve(2000, 5, lambda s: 0.1 + 0.2 * np.exp(-s / 30), noise=0.002)
    stop = stop_step(params, values)
    assert stop is not None and 150 <= stop <= 300, stop
    # the old fixed window (60 evaluations) could not stop before step 600
    old = TrainingParams(trigger="<t>", steps=2000, early_stop_window=60)
    assert stop_step(old, values) == 600


@pytest.mark.parametrize("seed", range(5))
def test_a_loss_still_falling_does_not_stop(seed: int) -> None:
    """A straight descent over the whole cap, and a slow decay (time constant 1,000 steps):
    both still falling, with noise; neither may stop in the first 800 steps (the old rule with
    this small window stopped both near step 230)."""
    params = default_job(2000)
    straight = curve(1000, 5, lambda s: 1.0 - s / 4000, noise=0.005, seed=seed)
    slow = curve(800, 5, lambda s: 0.2 + np.exp(-s / 1000), noise=0.005, seed=seed)
    assert stop_step(params, straight) is None
    assert stop_step(params, slow) is None


@pytest.mark.parametrize("seed", range(5))
def test_a_run_that_learns_nothing_goes_to_the_cap(seed: int) -> None:
    params = default_job(2000)
    assert stop_step(params, curve(2000, 5, lambda s: 1.0 + 0 * s, 0.05, seed)) is None


def test_a_perfectly_flat_loss_stops_as_soon_as_the_window_is_full() -> None:
    assert DvarRule(window=3, fraction=0.15).first_stop([1.0] * 6) == 5
