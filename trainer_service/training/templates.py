"""Prompt templates for textual inversion, as in diffusers' ``examples/textual_inversion`` (the
"imagenet small" sets from the original paper): object concepts are described as a thing in a
photo, style concepts as the style of a painting. ``{}`` is where the trigger goes."""

from __future__ import annotations

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
