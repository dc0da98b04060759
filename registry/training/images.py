"""Training images, checked without trusting them before anything is stored.

Order of checks, cheapest first, each refusal naming the file: the count (1-50); the byte size;
the format from the file's own signature (PNG, JPEG or WebP only, whatever its name says);
the pixel count from the header *before* decoding (a 50 KB PNG can claim 100k x 100k pixels and
decompress to 30 GB: the classic decompression bomb); ``verify()`` (chunk CRCs, truncation);
then one full decode, bounded by the pixel limit we just checked, which catches truncated
JPEG/WebP data that ``verify()`` does not look at.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from client.core.errors import BadRequest, TooLarge, UnsupportedFormat
from client.core.training import MAX_IMAGES

FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True)
class CheckedImage:
    filename: str
    data: bytes
    digest: str
    format: str
    width: int
    height: int

    def record(self) -> dict[str, object]:
        """What the job row keeps: the blob digest and what a person needs to recognise it."""
        return {
            "digest": self.digest,
            "filename": self.filename,
            "size": len(self.data),
            "format": self.format,
            "width": self.width,
            "height": self.height,
        }


def _label(filename: str | None, index: int) -> str:
    name = (filename or "").replace("\n", " ").strip()[:200]
    return f"image {index + 1} ({name!r})" if name else f"image {index + 1}"


def check_image(
    filename: str | None, data: bytes, index: int, *, max_bytes: int, max_pixels: int
) -> CheckedImage:
    label = _label(filename, index)
    if len(data) > max_bytes:
        raise TooLarge(
            f"{label} is {len(data):,} bytes, over the {max_bytes:,}-byte limit for training "
            "images; downscale or recompress it"
        )
    if not data:
        raise BadRequest(f"{label} is empty; give a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns (or raises) by its global limit; ours is below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"{label} claims too many pixels ({exc}); downscale it") from None
    except Exception:
        raise UnsupportedFormat(
            f"{label} is not a PNG, JPEG or WebP image (judged by its content, not its name); "
            "convert it to PNG or JPEG"
        ) from None
    width, height, fmt = image.width, image.height, str(image.format)
    if width * height > max_pixels:
        raise TooLarge(
            f"{label} is {width}x{height} = {width * height:,} pixels, over the "
            f"{max_pixels:,}-pixel limit; downscale it (training uses 512-1024 px anyway)"
        )
    try:
        image.verify()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.open(io.BytesIO(data), formats=FORMATS).load()
    except Exception as exc:
        raise BadRequest(
            f"{label} is a damaged or truncated {fmt} ({exc}); export it again"
        ) from None
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return CheckedImage(filename or f"image-{index + 1}", data, digest, fmt, width, height)


def check_images(
    files: list[tuple[str | None, bytes]], *, max_bytes: int, max_pixels: int
) -> list[CheckedImage]:
    """Every image checked, or a refusal naming the first bad one; nothing is stored here."""
    if not 1 <= len(files) <= MAX_IMAGES:
        raise BadRequest(
            f"{len(files)} images sent; a training job takes 1-{MAX_IMAGES} images in the "
            "multipart field 'images'"
        )
    return [
        check_image(name, data, i, max_bytes=max_bytes, max_pixels=max_pixels)
        for i, (name, data) in enumerate(files)
    ]
