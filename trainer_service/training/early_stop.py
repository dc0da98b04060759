"""DVAR early stopping (Voronov et al., 2023, "Is This Loss Informative? Faster Text-to-Image
Customization by Tracking Objective Dynamics"): the training loss of textual inversion is too
noisy to watch, but the loss on a *fixed* batch (fixed images, noise, timesteps and prompts)
falls and then flattens. Stop when its recent window is flat compared with its whole history:
``var(last W values) < fraction * var(all values)``. The step cap still applies.

The window sets the time scale: an exponential decay with time constant ``tau`` evaluations
triggers at about ``2W`` once ``W >= 1.5 tau``, when ~95% of the drop is done. The window
follows the step cap (``TrainingParams.dvar_window``: 20 evaluations on a 2,000-step job, so a
loss flat by step ~120 stops near step 200 instead of at 600, the earliest a fixed 60 allowed).

A small window alone would stop a loss that is still falling: DVAR's ratio is scale-free, so a
straight descent fires after ``W / sqrt(fraction)`` values whatever its slope. So a second test
guards it: the drop across the window (least-squares slope x length) must be under
:data:`TREND_FRACTION` of the drop seen so far. A straight descent then runs for ``W / 0.05``
(20x the window) before stopping; an exponential stops once ~97% of its drop is done. Pure noise
around a plateau never triggers (the ratio stays near 1), so a run that learns nothing goes to
the cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

TREND_FRACTION = 0.05  # the window may still fall by at most 5% of the whole drop so far


@dataclass
class DvarRule:
    """``window`` recent evaluations against the whole history; needs ``2 * window`` values
    before it may fire (with fewer, the window *is* most of the history and the ratio says
    nothing). Feed it with :meth:`add`, one evaluation at a time (O(window) per call)."""

    window: int = 60
    fraction: float = 0.15
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sum = self._sumsq = 0.0
        self._lo, self._hi = float("inf"), float("-inf")
        for value in list(self.history):
            self._track(value)

    def _track(self, value: float) -> None:
        self._sum += value
        self._sumsq += value * value
        self._lo, self._hi = min(self._lo, value), max(self._hi, value)

    def add(self, value: float) -> bool:
        """Record one evaluation loss; True when training should stop now."""
        value = float(value)
        self.history.append(value)
        self._track(value)
        return self.should_stop()

    def should_stop(self) -> bool:
        n, w = len(self.history), self.window
        if n < 2 * w:
            return False
        mean = self._sum / n
        total = max(self._sumsq / n - mean * mean, 0.0)
        recent = np.asarray(self.history[-w:], dtype=np.float64)
        if total <= 1e-12 * max(mean * mean, 1e-30):
            return True  # perfectly flat: nothing left to learn
        if recent.var() >= self.fraction * total:
            return False
        slope = np.polyfit(np.arange(w, dtype=np.float64), recent, 1)[0]
        still_falling = max(0.0, -slope) * (w - 1)
        return bool(still_falling < TREND_FRACTION * (self._hi - self._lo))

    def first_stop(self, values: Sequence[float]) -> int | None:
        """Index of the value at which a run over ``values`` would stop (for tests/analysis)."""
        self.history = []
        self.__post_init__()
        for i, v in enumerate(values):
            if self.add(v):
                return i
        return None
