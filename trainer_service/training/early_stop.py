"""DVAR early stopping (Voronov et al., 2023, "Is This Loss Informative? Faster Text-to-Image
Customization by Tracking Objective Dynamics"): the training loss of textual inversion is too
noisy to watch, but the loss on a *fixed* batch (fixed images, noise, timesteps and prompts)
falls and then flattens. Stop when its recent window is flat compared with its whole history:
``var(last W values) < fraction * var(all values)``. The step cap still applies.

The window sets the time scale: an exponential decay with time constant ``tau`` evaluations
triggers at about ``2W`` once ``W >= 1.5 tau``, when ~95% of the drop is done; a straight
descent triggers after ``W / sqrt(fraction)`` (~2.6W) values. Pure noise around a plateau
never triggers (the ratio stays near 1), so a run that learns nothing goes to the cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def _variance(values: Sequence[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / n


@dataclass
class DvarRule:
    """``window`` recent evaluations against the whole history; needs ``2 * window`` values
    before it may fire (with fewer, the window *is* most of the history and the ratio says
    nothing)."""

    window: int = 60
    fraction: float = 0.15
    history: list[float] = field(default_factory=list)

    def add(self, value: float) -> bool:
        """Record one evaluation loss; True when training should stop now."""
        self.history.append(float(value))
        return self.should_stop()

    def should_stop(self) -> bool:
        if len(self.history) < 2 * self.window:
            return False
        total = _variance(self.history)
        if total == 0.0:
            return True  # perfectly flat: nothing left to learn
        return _variance(self.history[-self.window :]) < self.fraction * total

    def first_stop(self, values: Sequence[float]) -> int | None:
        """Index of the value at which a run over ``values`` would stop (for tests/analysis)."""
        self.history = []
        for i, v in enumerate(values):
            if self.add(v):
                return i
        return None
