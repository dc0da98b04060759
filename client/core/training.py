"""Training-job wire types shared by the registry, the trainer and ``hub train``: the
:class:`TrainingParams` a job asks for, the prompt templates its concept type chooses, and the
:class:`JobRequest` that ``POST /api/v1/training-jobs`` takes. No torch here: the registry
validates a job's parameters before queueing it, with the same rules the worker trains by.

``TrainingParams`` and the templates are copied verbatim from ``trainer_service/training``
(params.py, templates.py); the trainer is to import them from here.

Training parameters, validated on construction: a bad value raises
:class:`client.core.errors.BadRequest` naming the field, the value and the allowed range, so the
registry can refuse a job before it is queued and a worker never starts a run it cannot finish.

Initializer words: one or several. Vector ``i`` of the embedding starts from word
``i mod len(words)``; a word that the tokenizer splits into several tokens starts from the mean
of those tokens' vectors (the reference script refuses such words; averaging keeps
"teddy bear" usable).
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import BadRequest

# -- prompt templates (verbatim from trainer_service/training/templates.py) ---------------
OBJECT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)

STYLE_TEMPLATES: tuple[str, ...] = (
    "a painting in the style of {}",
    "a rendering in the style of {}",
    "a cropped painting in the style of {}",
    "the painting in the style of {}",
    "a clean painting in the style of {}",
    "a dirty painting in the style of {}",
    "a dark painting in the style of {}",
    "a picture in the style of {}",
    "a cool painting in the style of {}",
    "a close-up painting in the style of {}",
    "a bright painting in the style of {}",
    "a cropped painting in the style of {}",
    "a good painting in the style of {}",
    "a close-up painting in the style of {}",
    "a rendition in the style of {}",
    "a nice painting in the style of {}",
    "a small painting in the style of {}",
    "a weird painting in the style of {}",
    "a large painting in the style of {}",
)

CONCEPT_TYPES = ("object", "style")


def templates_for(concept: str) -> tuple[str, ...]:
    """The template set of a concept type ("object" or "style")."""
    return STYLE_TEMPLATES if concept == "style" else OBJECT_TEMPLATES


def default_preview_prompts(concept: str, trigger: str) -> tuple[str, ...]:
    """Two prompts with the trigger: the first two templates of the concept's set."""
    return tuple(t.format(trigger) for t in templates_for(concept)[:2])


# -- parameters (verbatim from trainer_service/training/params.py) ------------------------
MAX_VECTORS = 16
MAX_STEPS = 20_000
MAX_BATCH = 16
MAX_PREVIEWS = 8
# Whole-string matches (fullmatch: "$" would also match before a trailing newline); no control
# characters, since the trigger becomes a database column and a prompt token.
TRIGGER_RE = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,64}")
DEVICE_RE = re.compile(r"auto|cpu|cuda(:[0-9]+)?|mps")
BASE_MODEL_RE = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")  # a hub id or a fine-tune's name
# Initializer words, preview prompts and extra keys become prompt text or labels: one line of
# printable text, like the trigger (an escape sequence in a prompt reaches every log and page).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# A bad value is shown cut short: a 100,000-character initializer is named, not echoed back.
_SHOWN = reprlib.Repr()  # Python 3.11: limits are attributes, not arguments
_SHOWN.maxstring = _SHOWN.maxother = 60


def _bad(name: str, value: Any, allowed: str) -> BadRequest:
    try:
        shown = _SHOWN.repr(value)
    except ValueError:  # an int past Python's 4,300-digit str limit
        shown = "an integer too long to show"
    return BadRequest(f"training parameter {name!r} is {shown}; allowed: {allowed}")


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
    # The published vectors are an exponential moving average of the vectors over the steps
    # (bias-corrected, so early on it is the plain mean so far; time constant 1 / (1 - decay)
    # steps), not the last step's: the last point of a trajectory that has reached its concept can
    # sit anywhere on the wander around it (docs/PERFORMANCE.md "Toy world"). 0: the last step's.
    ema_decay: float = 0.99
    # None: up to DEFAULT_BATCH images per step (all of them if fewer), chosen by the worker and
    # recorded with the version (see trainer_service/training/model_defaults.py).
    batch_size: int | None = None
    # None: the base model's own size (sample_size x VAE scale: 512 SD1.5, 768 SD2-768, 1024
    # SDXL), chosen by the worker that loads it and recorded with the version.
    resolution: int | None = None
    seed: int = 0
    preview_prompts: tuple[str, ...] = ()
    # DVAR early stopping: every `early_stop_every` steps the loss on a fixed batch is recorded;
    # once at least 2 x `dvar_window` values exist, stop when the variance of the last
    # `dvar_window` values is below `early_stop_fraction` x the variance of all of them.
    early_stop: bool = True
    early_stop_every: int = 5
    early_stop_window: int | None = None  # None: follows the step cap (see dvar_window)
    early_stop_fraction: float = 0.15
    loss_every: int = 10  # read losses back to the host (and call `progress`) every N steps
    compile: bool = False  # torch.compile the UNet (CUDA only; ignored on CPU)
    device: str = "auto"
    extra: dict[str, str] = field(default_factory=dict)  # free-form, recorded with the version

    def __post_init__(self) -> None:
        if not isinstance(self.trigger, str) or not TRIGGER_RE.fullmatch(self.trigger):
            raise _bad(
                "trigger", self.trigger, "1-64 characters without spaces or braces, e.g. <my-cat>"
            )
        words = _words(self.initializer)
        if not 1 <= len(words) <= MAX_VECTORS or any(
            not w or len(w) > 64 or CONTROL_RE.search(w) for w in words
        ):
            raise _bad(
                "initializer",
                self.initializer,
                "1-16 non-empty words of up to 64 chars, no control characters",
            )
        object.__setattr__(self, "initializer", words)
        _int_in("vectors", self.vectors, 1, MAX_VECTORS)
        if self.concept not in CONCEPT_TYPES:
            raise _bad("concept", self.concept, " or ".join(CONCEPT_TYPES))
        _int_in("steps", self.steps, 1, MAX_STEPS)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= 1:
            raise _bad("learning_rate", lr, "a number in (0, 1], typically 5e-4 to 5e-3")
        decay = self.ema_decay
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay < 1:
            raise _bad("ema_decay", decay, "a number in [0, 1), e.g. 0.99; 0 turns averaging off")
        if self.batch_size is not None:
            _int_in("batch_size", self.batch_size, 1, MAX_BATCH)
        if self.resolution is not None:
            _int_in("resolution", self.resolution, 16, 2048)
            if self.resolution % 8:
                raise _bad("resolution", self.resolution, "a multiple of 8 from 16 to 2048")
        _int_in("seed", self.seed, 0, 2**63 - 1)
        prompts = tuple(self.preview_prompts or ())
        if len(prompts) > MAX_PREVIEWS or any(
            not isinstance(p, str) or not p.strip() or len(p) > 500 or CONTROL_RE.search(p)
            for p in prompts
        ):
            raise _bad(
                "preview_prompts",
                self.preview_prompts,
                f"0-{MAX_PREVIEWS} one-line prompts of 1-500 chars, no control characters",
            )
        object.__setattr__(self, "preview_prompts", prompts)
        if not isinstance(self.early_stop, bool):
            raise _bad("early_stop", self.early_stop, "true or false")
        _int_in("early_stop_every", self.early_stop_every, 1, 1000)
        if self.early_stop_window is not None:
            _int_in("early_stop_window", self.early_stop_window, 2, 10_000)
        frac = self.early_stop_fraction
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
            raise _bad("early_stop_fraction", frac, "a number in (0, 1), e.g. 0.15")
        _int_in("loss_every", self.loss_every, 1, 10_000)
        if not isinstance(self.compile, bool):
            raise _bad("compile", self.compile, "true or false")
        if not isinstance(self.device, str) or not DEVICE_RE.fullmatch(self.device):
            raise _bad("device", self.device, "auto, cpu, cuda, cuda:N or mps")
        extra = self.extra
        if (
            not isinstance(extra, dict)
            or len(extra) > 32
            or not all(
                isinstance(k, str)
                and isinstance(v, str)
                and len(k) <= 64
                and not CONTROL_RE.search(k)
                and len(v) <= 500
                for k, v in extra.items()
            )
        ):
            raise _bad(
                "extra",
                type(extra).__name__,
                "up to 32 text keys (64 chars, no control characters) and values (500 chars)",
            )

    @property
    def dvar_window(self) -> int:
        """The early-stopping window in evaluations: the job's, or a twentieth of the
        evaluations the step cap allows, within 10-60. A fixed 60 (DVAR's paper) could never
        stop before step 600; on a 2,000-step job this is 20 (earliest stop: step 200)."""
        if self.early_stop_window is not None:
            return self.early_stop_window
        return max(10, min(60, self.steps // self.early_stop_every // 20))

    @property
    def settle_steps(self) -> int:
        """Steps trained after early stopping fires, so that the published average is made of
        the plateau: three time constants of ``ema_decay`` leave e^-3 (5%) of its weight on the
        steps before (300 at 0.99; 0 without averaging). The trainer anneals the rate to 0 over
        the last settle steps of a run, whether DVAR or the step cap ends it."""
        return round(3 / (1 - self.ema_decay)) if self.ema_decay else 0

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


# -- training jobs (the registry's queue) -------------------------------------------------------
MAX_IMAGES = 50
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# Chosen by the worker that runs the job, not by the submitter.
WORKER_ONLY_PARAMS = frozenset({"device", "compile"})


@dataclass(frozen=True)
class JobRequest:
    """The ``params`` JSON of ``POST /api/v1/training-jobs``: where to publish, for which base
    model, and the :class:`TrainingParams` (flat, same keys; ``type`` is accepted for
    ``concept``). ``family`` comes from ``base_model`` when that is a known id, and they must
    agree. Neither is required: a job that names no family (``None`` here) trains for the one
    the registry's live workers serve, resolved when it is queued (:meth:`for_family`)."""

    target: str  # "namespace/name"
    family: str | None
    params: TrainingParams
    base_model: str | None = None
    visibility: str | None = None

    @property
    def namespace(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.target.split("/", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.params.to_dict().items() if k not in WORKER_ONLY_PARAMS}
        out.update(target=self.target, family=self.family, base_model=self.base_model)
        if self.visibility:
            out["visibility"] = self.visibility
        return out

    @classmethod
    def from_dict(cls, data: Any) -> JobRequest:
        from .families import FAMILIES, family_for_base_model
        from .names import validate_slug

        if not isinstance(data, dict):
            raise BadRequest("'params' must be a JSON object")
        data = dict(data)
        target = data.pop("target", None) or data.pop("name", None)
        if not isinstance(target, str) or target.count("/") != 1:
            raise _bad("target", target, "'namespace/name' of the embedding to publish")
        ns, name = target.split("/")
        validate_slug(ns, "namespace")
        validate_slug(name, "embedding name")
        if "type" in data:
            if "concept" in data:
                raise BadRequest("give 'type' or 'concept', not both (they are the same field)")
            data["concept"] = data.pop("type")
        base_model = data.pop("base_model", None) or None
        family = data.pop("family", None) or None
        if base_model is not None and (
            not isinstance(base_model, str) or not BASE_MODEL_RE.fullmatch(base_model)
        ):
            raise _bad("base_model", base_model, "a model id of 1-200 characters, no spaces")
        if family is not None and not isinstance(family, str):
            raise _bad("family", family, f"one of {', '.join(FAMILIES)}, as a string")
        known = family_for_base_model(base_model) if base_model else None
        if family is None and known is not None:
            family = known.name
        if family is not None and family not in FAMILIES:
            raise _bad(
                "family",
                family,
                f"{', '.join(FAMILIES)} (or a known base_model id, which implies it; or "
                "nothing, for the family the registry's workers serve)",
            )
        if known is not None and known.name != family:
            raise _bad("base_model", base_model, f"a {family} base model (it is {known.name})")
        visibility = data.pop("visibility", None)
        if visibility not in (None, "public", "private"):
            raise _bad("visibility", visibility, "public or private")
        for key in WORKER_ONLY_PARAMS & set(data):
            raise _bad(key, data[key], "nothing: the worker that runs the job chooses it")
        params = TrainingParams.from_dict(data)
        return cls(f"{ns}/{name}", family, params, base_model, visibility)

    def for_family(self, family: str) -> JobRequest:
        """This job, trained for ``family`` (the one its live workers serve, when it named
        none); refused when it already names another."""
        from .families import FAMILIES

        if family not in FAMILIES or self.family not in (None, family):
            raise _bad("family", family, f"{self.family or ', '.join(FAMILIES)}")
        return replace(self, family=family)
