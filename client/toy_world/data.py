"""The toy world's data: coloured shapes on plain grey backgrounds, with captions.

Every image is drawn from a :class:`Spec` (shape, colour, size, position, background) by
:func:`render`, supersampled 4x and box-filtered down so edges look like a real (antialiased)
picture. The same specs feed the pipeline's pre-training, the judge's accuracy check and the
quality benchmark, so the three agree on what "a red circle" looks like.

Held-out concepts (:data:`HELD_OUT`) are drawn in pre-training but captioned only "a shape": the
model can make them, but no words name them. Textual inversion has to find them. Their parts are
named elsewhere ("a green circle", "a yellow star"; "a striped square"), as a real text encoder
knows the words of a concept it was never shown: an embedding can only find what the model's
conditioning has some direction for (a pattern pre-training never named stays out of its reach,
docs/PERFORMANCE.md "Toy world").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

SIZE = 32  # pixels; the pipeline's native resolution
SUPERSAMPLE = 4
LATENT_CELL = 4  # image pixels per latent cell (the toy VAE downsamples twice)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 30),
    "purple": (150, 60, 200),
}
SHAPES = ("circle", "square", "triangle", "star", "ring")
# A two-colour fill: horizontal bands of these colours, laid on the shape from its centre line
# down and up. A band is one latent row and a striped shape's centre sits on a latent-row
# boundary: bands that straddle latent rows, or that stay put while the shape moves, come out of
# a model this small blended to orange or mottled (docs/PERFORMANCE.md "Toy world").
STRIPED = "striped"
STRIPE_COLOURS = ("red", "yellow")
STRIPE_PX = LATENT_CELL  # band height at the final size

GENERIC_CAPTION = "a shape"


@dataclass(frozen=True)
class Spec:
    """One picture: ``colour`` is a name in :data:`COLOURS` or :data:`STRIPED`."""

    shape: str
    colour: str
    radius: float = 10.0  # half the shape's extent, in final pixels
    cx: float = SIZE / 2
    cy: float = SIZE / 2
    background: int = 235  # grey level of the plain background

    @property
    def concept(self) -> tuple[str, str]:
        return (self.colour, self.shape)

    @property
    def caption(self) -> str:
        """What pre-training calls it: held-out concepts are only "a shape"."""
        if self.concept in HELD_OUT.values():
            return GENERIC_CAPTION
        return f"a {self.colour} {self.shape}"


# name -> (colour, shape). Never named in pre-training captions.
HELD_OUT: dict[str, tuple[str, str]] = {
    "green-star": ("green", "star"),
    "striped-circle": (STRIPED, "circle"),
}

SEEN: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in (*COLOURS, STRIPED) for s in SHAPES if (c, s) not in HELD_OUT.values()
)


STAR_INNER = 0.42  # inner radius of the star's points, in radii


def shape_polygon(
    shape: str, cx: float, cy: float, r: float, inner: float = STAR_INNER
) -> list[tuple[float, float]]:
    """Outline points of the polygonal shapes (square, triangle, star), upright."""
    if shape == "square":
        h = r * 0.85
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        # Equilateral, centred on its bounding box (not its centroid) so specs stay in frame.
        return [(cx, cy - r), (cx + r * 1.05, cy + r * 0.85), (cx - r * 1.05, cy + r * 0.85)]
    if shape == "star":
        points = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * inner
            a = -math.pi / 2 + k * math.pi / 5
            points.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return points
    raise ValueError(f"{shape!r} is not a polygon shape")


def shape_mask(
    shape: str, cx: float, cy: float, r: float, size: int = SIZE, inner: float = STAR_INNER
) -> np.ndarray:
    """Coverage in [0, 1] of the shape on a ``size`` x ``size`` grid (antialiased); ``inner``
    is a star's inner radius (the judge also tries fatter stars)."""
    s = SUPERSAMPLE
    canvas = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(canvas)
    x, y, rr = cx * s, cy * s, r * s
    if shape in ("circle", "ring"):
        draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=255)
        if shape == "ring":
            inner = rr * 0.55
            draw.ellipse((x - inner, y - inner, x + inner, y + inner), fill=0)
    else:
        points = shape_polygon(shape, cx, cy, r, inner)
        draw.polygon([(px * s, py * s) for px, py in points], fill=255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def fill_colours(spec: Spec, size: int = SIZE) -> np.ndarray:
    """The fill as an ``[size, size, 3]`` float image: one colour, or the stripes (the band
    starting at the shape's centre line in the first stripe colour)."""
    if spec.colour == STRIPED:
        a, b = (np.array(COLOURS[c], np.float32) for c in STRIPE_COLOURS)
        rows = (np.arange(size) + 0.5) * SIZE / size  # row centres, in final pixels
        first = np.floor((rows - spec.cy) / STRIPE_PX).astype(int) % 2 == 0
        colours = np.where(first[:, None], a, b)
        return np.broadcast_to(colours[:, None, :], (size, size, 3)).copy()
    return np.broadcast_to(np.array(COLOURS[spec.colour], np.float32), (size, size, 3)).copy()


def render(spec: Spec, size: int = SIZE) -> np.ndarray:
    """The picture of ``spec`` as uint8 ``[size, size, 3]``."""
    mask = shape_mask(spec.shape, spec.cx, spec.cy, spec.radius, size)[..., None]
    background = np.full((size, size, 3), float(spec.background), np.float32)
    image = mask * fill_colours(spec, size) + (1 - mask) * background
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def random_spec(rng: np.random.Generator, colour: str, shape: str) -> Spec:
    """Size 8-12 px radius, centre jittered so the shape stays inside the frame; a striped
    shape's centre line moved to the nearest latent-row boundary (see :data:`STRIPED`)."""
    r = float(rng.uniform(8.0, 12.0))
    margin = r + 1.5
    cx, cy = (float(rng.uniform(margin, SIZE - margin)) for _ in range(2))
    if colour == STRIPED:
        lowest = math.ceil(margin / LATENT_CELL) * LATENT_CELL
        highest = math.floor((SIZE - margin) / LATENT_CELL) * LATENT_CELL
        cy = float(min(max(LATENT_CELL * round(cy / LATENT_CELL), lowest), highest))
    return Spec(shape, colour, r, cx, cy, int(rng.integers(215, 250)))


def all_concepts() -> list[tuple[str, str]]:
    """Every (colour, shape) the generator draws: the seen ones and the held-out ones."""
    return [*SEEN, *HELD_OUT.values()]


def dataset(n: int, seed: int = 0) -> list[Spec]:
    """``n`` specs cycling over every concept (held-out ones included), seeded."""
    rng = np.random.default_rng(seed)
    concepts = all_concepts()
    order = rng.permutation(np.arange(n) % len(concepts))
    return [random_spec(rng, *concepts[i]) for i in order]


def concept_specs(concept: tuple[str, str], n: int, seed: int = 0) -> list[Spec]:
    rng = np.random.default_rng(seed)
    return [random_spec(rng, *concept) for _ in range(n)]


def images(specs: list[Spec]) -> list[Image.Image]:
    return [Image.fromarray(render(s)) for s in specs]


def with_colour(spec: Spec, colour: str) -> Spec:
    return replace(spec, colour=colour)
