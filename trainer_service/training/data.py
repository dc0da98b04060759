"""Training images: decoded once, resized (shortest side) and centre-cropped to the training
resolution, normalised to [-1, 1]; then VAE-encoded once per image and per horizontal flip, the
latent distribution (mean, std) cached on the device. Each step draws from the cache and samples
``mean + std * noise`` as the reference's ``latent_dist.sample()`` does, without running the VAE.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from client.core.errors import BadRequest

MAX_IMAGES = 50
MAX_PIXELS = 40_000_000  # decompression-bomb guard (Pillow's own limit is ~89 Mpx)


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray  # float32 [3, res, res] in [-1, 1]
    original_size: tuple[int, int]  # (height, width) before resizing, for SDXL time ids
    crop_top_left: tuple[int, int]  # (top, left) of the crop in the resized image
    digest: str  # sha256 of the input bytes (or of the RGB pixels for a PIL image)


def _open(item: Any, index: int) -> tuple[Image.Image, str]:
    if isinstance(item, Image.Image):
        image = item
        digest = hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()
    elif isinstance(item, bytes | bytearray | memoryview):
        raw = bytes(item)
        digest = hashlib.sha256(raw).hexdigest()
        try:
            image = Image.open(io.BytesIO(raw))
            if image.width * image.height > MAX_PIXELS:
                raise BadRequest(
                    f"image {index} is {image.width}x{image.height} pixels, over the "
                    f"{MAX_PIXELS:,}-pixel limit; downscale it"
                )
            image.load()
        except BadRequest:
            raise
        except Exception as exc:  # Pillow raises many types for bad files
            raise BadRequest(
                f"image {index} cannot be decoded ({exc}); give PNG, JPEG or WebP"
            ) from None
    else:
        raise BadRequest(f"image {index} is a {type(item).__name__}; give PIL images or bytes")
    return ImageOps.exif_transpose(image).convert("RGB"), f"sha256:{digest}"


def prepare_image(item: Any, resolution: int, index: int = 0) -> PreparedImage:
    """Decode, resize the shortest side to ``resolution`` (bicubic), centre-crop a square."""
    image, digest = _open(item, index)
    w, h = image.size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    image = image.resize((nw, nh), resample=Image.Resampling.BICUBIC)
    top, left = (nh - resolution) // 2, (nw - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return PreparedImage(np.ascontiguousarray(arr.transpose(2, 0, 1)), (h, w), (top, left), digest)


def prepare_images(items: list[Any], resolution: int) -> list[PreparedImage]:
    if not 1 <= len(items) <= MAX_IMAGES:
        raise BadRequest(f"{len(items)} images given; a training job takes 1-{MAX_IMAGES}")
    return [prepare_image(item, resolution, i) for i, item in enumerate(items)]


@dataclass
class LatentCache:
    """Per image and flip (index ``2*i`` is image i, ``2*i+1`` its mirror): the VAE latent
    distribution's mean and std, already multiplied by the VAE scaling factor, and SDXL's
    time ids ``(orig_h, orig_w, crop_top, crop_left, target_h, target_w)``."""

    mean: Any  # torch.Tensor [2N, C, h, w]
    std: Any
    time_ids: Any  # torch.Tensor [2N, 6]

    def __len__(self) -> int:
        return int(self.mean.shape[0])


def encode_latents(vae: Any, images: list[PreparedImage], device: Any, *, batch: int = 4) -> Any:
    """Run the VAE encoder once over every image and its flip; returns a :class:`LatentCache`."""
    import torch

    pixels = []
    time_ids = []
    for img in images:
        t = torch.from_numpy(img.pixels)
        pixels += [t, torch.flip(t, dims=[2])]
        res = img.pixels.shape[1]
        ids = [*img.original_size, *img.crop_top_left, res, res]
        time_ids += [ids, ids]
    stacked = torch.stack(pixels)
    vae_dtype = next(vae.parameters()).dtype
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    means, stds = [], []
    with torch.no_grad():
        for chunk in stacked.split(batch):
            dist = vae.encode(chunk.to(device=device, dtype=vae_dtype)).latent_dist
            means.append((dist.mean.float() - shift) * scale)
            stds.append(dist.std.float() * scale)
    return LatentCache(
        torch.cat(means),
        torch.cat(stds),
        torch.tensor(time_ids, dtype=torch.float32, device=device),
    )
