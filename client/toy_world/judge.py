"""The toy world's judge: what colour and shape a picture shows, computed from its pixels.

No learned weights, so it cannot share a blind spot with the model it grades. Foreground = the
saturated pixels (every fill colour is saturated; backgrounds are grey). Colour = the palette
colour most foreground pixels are nearest to, or "striped" when the two stripe colours each hold
a quarter of them *in bands*: rows that each hold mostly one of them, alternating down the shape
(a circle mottled red and yellow holds both colours but no bands). Shape = the shape whose own
rendering, fitted to the foreground's bounding box, overlaps the foreground best (intersection
over union), so a ring's hole and a star's points count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import COLOURS, SHAPES, SIZE, STRIPE_COLOURS, STRIPED, shape_mask

NONE = "none"
CHROMA_MIN = 60  # max(rgb) - min(rgb) of a foreground pixel; greys are ~0, fills >= 150
MIN_PIXELS = 12  # fewer saturated pixels: nothing was drawn
MAX_COVER = 0.6  # the largest shape covers ~45% of the frame; more is no plain background
MIN_IOU = 0.4  # a best fit worse than this is a mess, not a shape
BAND_PURITY = 0.8  # share of stripe-coloured pixels that agree with their row's majority
BAND_CHANGES = 2  # times the row majority must switch colour top to bottom (renders: 3 or more)

# Extent of each shape's bounding box in units of its radius (width, height), and where the
# shape's centre sits below the box's centre (in radii): see data.shape_polygon.
_EXTENT = {
    "circle": (2.0, 2.0, 0.0),
    "ring": (2.0, 2.0, 0.0),
    "square": (1.7, 1.7, 0.0),
    "triangle": (2.1, 1.85, 0.075),
    "star": (1.902, 1.809, 0.0955),
}
_SEARCH = [
    (s, dx, dy) for s in (0.9, 1.0, 1.1) for dx, dy in ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))
]
# Generated stars come with fatter points than drawn ones; try those too.
_INNER = {"star": (0.42, 0.55)}
_PALETTE = np.array(list(COLOURS.values()), np.float32)
_NAMES = list(COLOURS)


@dataclass(frozen=True)
class Verdict:
    colour: str
    shape: str
    iou: float  # how well the best shape fits (1.0 = exactly a rendered shape)

    @property
    def concept(self) -> tuple[str, str]:
        return (self.colour, self.shape)


def foreground(image: np.ndarray) -> np.ndarray:
    """Boolean mask of saturated pixels of an RGB uint8 image."""
    rgb = image.astype(np.int16)
    return (rgb.max(-1) - rgb.min(-1)) >= CHROMA_MIN


def banded(nearest: np.ndarray, a: int, b: int) -> bool:
    """Whether palette labels ``nearest`` (-1 off the shape) show horizontal bands of ``a``
    and ``b``: each row mostly one of them, the row majority switching often enough."""
    rows = [(int((row == a).sum()), int((row == b).sum())) for row in nearest]
    rows = [(na, nb) for na, nb in rows if na + nb >= 3]  # rows that cross the shape
    if not rows:
        return False
    agree = sum(max(na, nb) for na, nb in rows) / sum(na + nb for na, nb in rows)
    majority = [na >= nb for na, nb in rows]
    changes = sum(x != y for x, y in zip(majority, majority[1:], strict=False))
    return agree >= BAND_PURITY and changes >= BAND_CHANGES


def judge_colour(image: np.ndarray, mask: np.ndarray) -> str:
    pixels = image[mask].astype(np.float32)
    nearest = ((pixels[:, None, :] - _PALETTE[None]) ** 2).sum(-1).argmin(1)
    shares = np.bincount(nearest, minlength=len(_NAMES)) / len(pixels)
    a, b = (_NAMES.index(c) for c in STRIPE_COLOURS)
    if shares[a] >= 0.25 and shares[b] >= 0.25:
        labels = np.full(mask.shape, -1)
        labels[mask] = nearest
        if banded(labels, a, b):
            return STRIPED
    return _NAMES[int(shares.argmax())]


def judge_shape(mask: np.ndarray) -> tuple[str, float]:
    rows, cols = np.nonzero(mask)
    top, bottom = rows.min(), rows.max() + 1
    left, right = cols.min(), cols.max() + 1
    w, h = right - left, bottom - top
    bx, by = (left + right) / 2, (top + bottom) / 2
    target = mask.astype(np.float32)
    best, best_iou = NONE, -1.0
    for shape in SHAPES:
        kw, kh, drop = _EXTENT[shape]
        r0 = (w / kw + h / kh) / 2
        # A small search around the box's fit: generated shapes have blunt corners and soft
        # edges, and a star judged at its box alone loses to the circle around it.
        fits = [(s, dx, dy, i) for s, dx, dy in _SEARCH for i in _INNER.get(shape, (0.42,))]
        for scale, dx, dy, inner in fits:
            r = r0 * scale
            if r < 1.0:
                continue
            cover = shape_mask(shape, bx + dx, by + drop * r + dy, r, mask.shape[0], inner) >= 0.5
            inter = float((cover * target).sum())
            union = float(np.maximum(cover, target).sum())
            iou = inter / union if union else 0.0
            if iou > best_iou:
                best, best_iou = shape, iou
    return best, best_iou


def judge(image: np.ndarray | object) -> Verdict:
    """Colour and shape of one picture (a PIL image or an RGB uint8 array, any size)."""
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.shape[0] != SIZE:
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).resize((SIZE, SIZE), Image.Resampling.BOX))
    mask = foreground(arr)
    if mask.sum() < MIN_PIXELS or mask.mean() > MAX_COVER:
        return Verdict(NONE, NONE, 0.0)
    shape, iou = judge_shape(mask)
    if iou < MIN_IOU:
        shape = NONE
    return Verdict(judge_colour(arr, mask), shape, iou)


def accuracy(images: list[object], concept: tuple[str, str]) -> float:
    """Share of ``images`` the judge calls ``concept`` (colour, shape)."""
    if not images:
        return 0.0
    return sum(judge(im).concept == concept for im in images) / len(images)
