"""The loss curve as an inline SVG chart (no script: drawn on the server, styled by CSS)."""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT, PAD = 600, 200, 30


def loss_chart(points: list[Any]) -> dict[str, Any] | None:
    """SVG geometry for a loss curve of bare losses or ``[step, loss]`` points; None when there
    are fewer than two finite points."""
    pairs = []
    for i, point in enumerate(points):
        step, loss = (point if isinstance(point, list | tuple) else (i, point))[:2]
        if isinstance(loss, int | float) and math.isfinite(loss):
            pairs.append((float(step), float(loss)))
    if len(pairs) < 2:
        return None
    x0, x1 = pairs[0][0], pairs[-1][0]
    lo, hi = min(p[1] for p in pairs), max(p[1] for p in pairs)
    span_x, span_y = (x1 - x0) or 1.0, (hi - lo) or 1.0

    def xy(step: float, loss: float) -> str:
        x = PAD + (step - x0) / span_x * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (loss - lo) / span_y * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "points": " ".join(xy(s, v) for s, v in pairs),
        "first_step": int(x0),
        "last_step": int(x1),
        "low": f"{lo:.4g}",
        "high": f"{hi:.4g}",
        "count": len(pairs),
    }
