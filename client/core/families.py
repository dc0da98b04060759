"""Base-model families: the one table of which text encoders each family has, how wide they are,
and which base-model ids belong to it. The family of an embedding is inferred from its tensors;
a declared base model must agree."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadShape, IncompatibleEmbedding

MAX_VECTORS = 75  # a 77-token CLIP context minus the start and end tokens


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    # encoder name (as stored in canonical files) -> width of that text encoder's input embeddings
    encoders: dict[str, int]
    base_models: tuple[str, ...]

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.encoders.values())

    def describe(self) -> str:
        return f"{self.name} ({' + '.join(str(w) for w in self.widths)})"


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "sd1",
            "Stable Diffusion 1.x",
            {"emb_params": 768},
            (
                "runwayml/stable-diffusion-v1-5",
                "stable-diffusion-v1-5/stable-diffusion-v1-5",
                "CompVis/stable-diffusion-v1-4",
                "CompVis/stable-diffusion-v1-3",
                "CompVis/stable-diffusion-v1-2",
                "CompVis/stable-diffusion-v1-1",
            ),
        ),
        Family(
            "sd2",
            "Stable Diffusion 2.x",
            {"emb_params": 1024},
            (
                "stabilityai/stable-diffusion-2-1",
                "stabilityai/stable-diffusion-2-1-base",
                "stabilityai/stable-diffusion-2",
                "stabilityai/stable-diffusion-2-base",
            ),
        ),
        Family(
            "sdxl",
            "Stable Diffusion XL",
            {"clip_l": 768, "clip_g": 1280},
            (
                "stabilityai/stable-diffusion-xl-base-1.0",
                "stabilityai/stable-diffusion-xl-refiner-1.0",
                "stabilityai/sdxl-turbo",
            ),
        ),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise IncompatibleEmbedding(f"unknown family {name!r}; known families: {known}") from None


def family_for_base_model(base_model: str) -> Family | None:
    """The family of a known base-model id (None for ids we do not know, e.g. fine-tunes)."""
    for family in FAMILIES.values():
        if base_model in family.base_models:
            return family
    return None


def family_for_widths(widths: dict[str, int]) -> Family:
    """The family whose encoders match ``widths`` (encoder name -> width) exactly."""
    for family in FAMILIES.values():
        if family.encoders == widths:
            return family
    shown = ", ".join(f"{k}={v}" for k, v in widths.items())
    raise BadShape(
        f"vector widths {shown} fit no known text encoder "
        "(768 for SD 1.x, 1024 for SD 2.x, clip_l=768 + clip_g=1280 for SDXL)"
    )


def check_base_model(family: Family, base_model: str | None) -> None:
    """Refuse a declared base model of another family (unknown ids are accepted as fine-tunes)."""
    if not base_model:
        return
    declared = family_for_base_model(base_model)
    if declared is not None and declared.name != family.name:
        raise IncompatibleEmbedding(
            f"the vectors are {family.describe()} but base model {base_model!r} is "
            f"{declared.describe()}; declare a {family.title} base model instead"
        )
