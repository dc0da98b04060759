"""The bounded loss curve a job keeps: the whole run in at most 512 ``[step, loss]`` points,
extended heartbeat by heartbeat, redone steps of a resumed run replaced."""

from __future__ import annotations

import numpy as np

from client.core.loss_curve import MAX_POINTS, downsample, extend_curve


def test_a_short_run_keeps_every_step() -> None:
    curve = extend_curve([], 3, [0.5, 0.4, 0.3])
    curve = extend_curve(curve, 5, [0.2, 0.1])
    assert curve == [[1, 0.5], [2, 0.4], [3, 0.3], [4, 0.2], [5, 0.1]]


def test_a_long_run_is_bounded_and_covers_the_whole_run() -> None:
    losses = np.linspace(1.0, 0.0, 20_000)
    curve: list = []
    for end in range(50, 20_001, 50):  # one heartbeat per 50 steps
        curve = extend_curve(curve, end, losses[end - 50 : end].tolist())
    steps = [s for s, _ in curve]
    assert MAX_POINTS // 2 <= len(curve) <= MAX_POINTS
    assert steps[0] <= 64 and steps[-1] == 20_000  # from the start, not only the last 100
    assert steps == sorted(steps)
    # each point is the mean of its bucket: on a straight line, the line at the bucket's middle
    width = steps[1] - steps[0]
    for step, loss in curve[1:-1]:
        middle = step - (width - 1) / 2
        assert abs(loss - (1.0 - (middle - 1) / 19_999)) < 1e-5


def test_the_same_curve_whatever_the_heartbeat_sizes() -> None:
    losses = np.random.default_rng(0).random(3000).tolist()
    one_go = extend_curve([], 3000, losses)
    curve: list = []
    end = 0
    for size in [7, 1, 30, 123] * 40:
        if end >= 3000:
            break
        size = min(size, 3000 - end)
        curve = extend_curve(curve, end + size, losses[end : end + size])
        end += size
    assert np.allclose(np.asarray(curve), np.asarray(one_go), rtol=1e-5)
    assert one_go == downsample(losses)


def test_a_resumed_run_replaces_the_steps_it_redoes() -> None:
    curve = extend_curve([], 50, [1.0] * 50)
    curve = extend_curve(curve, 45, [2.0] * 5)  # resumed from a checkpoint at step 40
    assert curve[-1] == [45, 2.0] and len(curve) == 45 and curve[39] == [40, 1.0]


def test_old_rows_of_bare_floats_are_ignored_and_evaluations_carry_their_steps() -> None:
    assert extend_curve([0.5, 0.4], 1, [0.3]) == [[1, 0.3]]
    assert downsample([0.9, 0.8, 0.7], every=5) == [[5, 0.9], [10, 0.8], [15, 0.7]]
