"""Preview images for a trained embedding, rendered with the same splice as training (no
tokenizer or table changes left behind in the shared pipeline). On tiny test pipelines pass a
tiny ``steps`` and size."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import torch

from client.core.embedding import Embedding
from client.core.errors import BadRequest
from client.core.previews import PREVIEW_DEFAULTS
from client.core.training import default_preview_prompts

from . import text


def render_previews(
    pipe: Any,
    embedding: Embedding,
    prompts: Sequence[str] | None = None,
    seed: int = 0,
    *,
    steps: int = int(PREVIEW_DEFAULTS["num_inference_steps"]),
    guidance_scale: float = float(PREVIEW_DEFAULTS["guidance_scale"]),
    height: int | None = None,
    width: int | None = None,
    concept: str = "object",
) -> list[bytes]:
    """PNG bytes, one per prompt; the embedding's ``token`` in a prompt stands for its vectors.
    Default prompts: the concept's first two templates with the token."""
    trigger = embedding.token
    if not trigger:
        raise BadRequest("the embedding has no token; give it one before rendering previews")
    prompts = list(prompts or default_preview_prompts(concept, trigger))
    slots = text.encoder_slots(pipe)
    if [s.name for s in slots] != list(embedding.vectors):
        raise BadRequest(
            f"embedding for {embedding.family.describe()} does not fit this pipeline's encoders"
        )
    device = pipe.unet.device
    n = embedding.num_vectors
    vectors = [
        torch.from_numpy(embedding.vectors[s.name].astype("float32")).to(device, s.table.dtype)
        for s in slots
    ]
    out: list[bytes] = []
    with torch.no_grad(), text.spliced(slots, vectors):
        for i, prompt in enumerate(prompts):

            def ids(p: str) -> list[torch.Tensor]:
                return [
                    torch.tensor([text.prompt_ids(s, p, trigger, n)], device=device) for s in slots
                ]

            hidden, pooled = text.encode(slots, ids(prompt))
            neg_hidden, neg_pooled = text.encode(slots, ids(""))
            kwargs: dict[str, Any] = {
                "prompt_embeds": hidden,
                "negative_prompt_embeds": neg_hidden,
            }
            if pooled is not None:
                kwargs["pooled_prompt_embeds"] = pooled
                kwargs["negative_pooled_prompt_embeds"] = neg_pooled
            generator = torch.Generator(device).manual_seed(seed + i)
            image = pipe(
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                height=height,
                width=width,
                generator=generator,
                **kwargs,
            ).images[0]
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            out.append(buf.getvalue())
    return out
