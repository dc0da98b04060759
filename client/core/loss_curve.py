"""A training run's loss curve, bounded: ``[[step, loss], ...]`` with at most ``MAX_POINTS``
points over the *whole* run, however long (a job used to keep only its last 100 losses).

Each point is the mean loss over a bucket of ``width`` consecutive steps, labelled with the last
step it holds; buckets are aligned (bucket ``k`` holds steps ``k*width+1 .. (k+1)*width``) and
``width`` doubles (neighbours merge) whenever the curve would pass ``MAX_POINTS``. Only the last
point may be a partly filled bucket. The width is read back from the points themselves, so the
registry can store the curve as plain JSON and extend it heartbeat by heartbeat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_POINTS = 512


def _points(raw: Any) -> list[list[float]]:
    """The well-formed ``[step, loss]`` pairs of stored JSON (older rows held bare floats)."""
    out: list[list[float]] = []
    for p in raw or []:
        if (
            isinstance(p, list | tuple)
            and len(p) == 2
            and isinstance(p[0], int)
            and not isinstance(p[0], bool)
            and isinstance(p[1], int | float)
            and (not out or p[0] > out[-1][0])
        ):
            out.append([int(p[0]), float(p[1])])
    return out


def _width(points: list[list[float]]) -> int:
    if len(points) < 2:
        return 1
    gap = int(points[1][0] - points[0][0])
    return gap if gap > 0 and gap & (gap - 1) == 0 else 1


def _count(step: int, width: int) -> int:
    """Steps a point labelled ``step`` holds (all of its bucket up to ``step``)."""
    return step - ((step - 1) // width) * width


def _merge(points: list[list[float]], width: int) -> list[list[float]]:
    """Re-bucket ``points`` (of width ``width // 2``) into buckets of ``width``."""
    old = width // 2
    merged: list[list[float]] = []
    weights: list[int] = []
    for step, loss in points:
        n = _count(int(step), old)
        if merged and (merged[-1][0] - 1) // width == (step - 1) // width:
            total = weights[-1] + n
            merged[-1] = [step, (merged[-1][1] * weights[-1] + loss * n) / total]
            weights[-1] = total
        else:
            merged.append([step, loss])
            weights.append(n)
    return merged


def extend_curve(
    points: Any, last_step: int, losses: Sequence[float], max_points: int = MAX_POINTS
) -> list[list[float]]:
    """``points`` with ``losses`` appended, the losses of steps ``last_step - len + 1 ..
    last_step``. Points at or after the first new step are dropped first: a run resumed from an
    earlier checkpoint redoes those steps."""
    first = last_step - len(losses) + 1
    curve = [p for p in _points(points) if p[0] < first]
    width = _width(curve)
    for i, loss in enumerate(losses):
        step = first + i
        if step < 1 or not math.isfinite(loss):
            continue
        if curve and (curve[-1][0] - 1) // width == (step - 1) // width:
            n = _count(int(curve[-1][0]), width)
            curve[-1] = [step, (curve[-1][1] * n + loss) / (n + 1)]
        else:
            curve.append([step, float(loss)])
        if len(curve) > max_points:
            width *= 2
            curve = _merge(curve, width)
    return [[int(s), float(f"{v:.6g}")] for s, v in curve]


def downsample(values: Sequence[float], every: int = 1, max_points: int = MAX_POINTS):
    """The curve of a whole run's values, the ``i``-th taken at step ``(i + 1) * every``
    (training losses: every 1; early-stopping evaluations: every ``early_stop_every``)."""
    curve = extend_curve([], len(values), [float(v) for v in values], max_points)
    return [[s * every, v] for s, v in curve]
