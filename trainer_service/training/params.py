"""Training parameters, validated on construction: a bad value raises
:class:`client.core.errors.BadRequest` naming the field, the value and the allowed range, so the
registry can refuse a job before it is queued and a worker never starts a run it cannot finish.

Initializer words: one or several. Vector ``i`` of the embedding starts from word
``i mod len(words)``; a word that the tokenizer splits into several tokens starts from the mean
of those tokens' vectors (the reference script refuses such words; averaging keeps
"teddy bear" usable).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from client.core.errors import BadRequest

from .templates import CONCEPT_TYPES, default_preview_prompts

MAX_VECTORS = 16
MAX_STEPS = 20_000
MAX_BATCH = 16
MAX_PREVIEWS = 8
TRIGGER_RE = re.compile(r"^[^\s{}]{1,64}$")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def _bad(name: str, value: Any, allowed: str) -> BadRequest:
    return BadRequest(f"training parameter {name!r} is {value!r}; allowed: {allowed}")


def _int_in(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(name, value, f"an integer from {lo} to {hi}")


def _words(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [w for w in re.split(r"[,\n]", value)]
    return tuple(str(w).strip() for w in value)


@dataclass(frozen=True)
class TrainingParams:
    """What a training job asks for. ``initializer`` accepts a string ("cat" or "cat, toy") or a
    sequence of words; it is stored as a tuple."""

    trigger: str
    initializer: tuple[str, ...] | str = ("object",)
    vectors: int = 1
    concept: str = "object"
    steps: int = 2000  # hard cap; early stopping usually ends sooner
    learning_rate: float = 5e-3
    batch_size: int = 1
    resolution: int = 512
    seed: int = 0
    preview_prompts: tuple[str, ...] = ()
    # DVAR early stopping: every `early_stop_every` steps the loss on a fixed batch is recorded;
    # once at least 2 x `early_stop_window` values exist, stop when the variance of the last
    # `early_stop_window` values is below `early_stop_fraction` x the variance of all of them.
    early_stop: bool = True
    early_stop_every: int = 5
    early_stop_window: int = 60  # x early_stop_every = 300 steps, as DVAR's paper
    early_stop_fraction: float = 0.15
    loss_every: int = 10  # read losses back to the host (and call `progress`) every N steps
    compile: bool = False  # torch.compile the UNet (CUDA only; ignored on CPU)
    device: str = "auto"
    extra: dict[str, str] = field(default_factory=dict)  # free-form, recorded with the version

    def __post_init__(self) -> None:
        if not isinstance(self.trigger, str) or not TRIGGER_RE.match(self.trigger):
            raise _bad(
                "trigger", self.trigger, "1-64 characters without spaces or braces, e.g. <my-cat>"
            )
        words = _words(self.initializer)
        if not 1 <= len(words) <= MAX_VECTORS or any(not w or len(w) > 64 for w in words):
            raise _bad("initializer", self.initializer, "1-16 non-empty words of up to 64 chars")
        object.__setattr__(self, "initializer", words)
        _int_in("vectors", self.vectors, 1, MAX_VECTORS)
        if self.concept not in CONCEPT_TYPES:
            raise _bad("concept", self.concept, " or ".join(CONCEPT_TYPES))
        _int_in("steps", self.steps, 1, MAX_STEPS)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= 1:
            raise _bad("learning_rate", lr, "a number in (0, 1], typically 5e-4 to 5e-3")
        _int_in("batch_size", self.batch_size, 1, MAX_BATCH)
        _int_in("resolution", self.resolution, 16, 2048)
        if self.resolution % 8:
            raise _bad("resolution", self.resolution, "a multiple of 8 from 16 to 2048")
        _int_in("seed", self.seed, 0, 2**63 - 1)
        prompts = tuple(self.preview_prompts or ())
        if len(prompts) > MAX_PREVIEWS or any(
            not isinstance(p, str) or not p.strip() or len(p) > 500 for p in prompts
        ):
            raise _bad(
                "preview_prompts", self.preview_prompts, f"0-{MAX_PREVIEWS} prompts of 1-500 chars"
            )
        object.__setattr__(self, "preview_prompts", prompts)
        if not isinstance(self.early_stop, bool):
            raise _bad("early_stop", self.early_stop, "true or false")
        _int_in("early_stop_every", self.early_stop_every, 1, 1000)
        _int_in("early_stop_window", self.early_stop_window, 2, 10_000)
        frac = self.early_stop_fraction
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
            raise _bad("early_stop_fraction", frac, "a number in (0, 1), e.g. 0.15")
        _int_in("loss_every", self.loss_every, 1, 10_000)
        if not isinstance(self.compile, bool):
            raise _bad("compile", self.compile, "true or false")
        if not isinstance(self.device, str) or not DEVICE_RE.match(self.device):
            raise _bad("device", self.device, "auto, cpu, cuda, cuda:N or mps")

    @property
    def previews(self) -> tuple[str, ...]:
        """The preview prompts, or two templates with the trigger when none were given."""
        return self.preview_prompts or default_preview_prompts(self.concept, self.trigger)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["initializer"] = list(self.initializer)
        out["preview_prompts"] = list(self.preview_prompts)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingParams:
        """Build from JSON; an unknown key is refused by name (a typo must not be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadRequest(
                f"unknown training parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "trigger" not in data:
            raise _bad("trigger", None, "a token such as <my-cat> (required)")
        return cls(**data)

    def fingerprint_fields(self) -> dict[str, Any]:
        """The fields that change the trajectory; a checkpoint only resumes a run that agrees."""
        d = self.to_dict()
        for k in ("steps", "preview_prompts", "loss_every", "compile", "device", "extra"):
            d.pop(k)
        return d
