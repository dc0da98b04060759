"""Training checkpoints, serialised without pickle: tensors (vectors, their running average,
AdamW moments over the new vectors only, the RNG state as uint8) in safetensors, everything
else as JSON in its header. A few KB for SD1 (``4 x n x 768`` floats), so a worker can upload
one every few hundred steps and the next worker resumes exactly where the last one stopped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from client.core.errors import BadRequest

FORMAT = "lexicon-trainer-checkpoint/1"
META_KEY = "lexicon.checkpoint"
# The per-encoder tensor groups, stored as "<group>.<encoder>" (``average`` may be empty).
GROUPS = ("vectors", "exp_avg", "exp_avg_sq", "average")


@dataclass
class Checkpoint:
    step: int  # steps completed
    vectors: dict[str, np.ndarray]  # canonical encoder name -> float32 [n, d]
    exp_avg: dict[str, np.ndarray]  # AdamW first moments, same keys/shapes
    exp_avg_sq: dict[str, np.ndarray]  # AdamW second moments
    adam_step: float
    rng_state: np.ndarray  # uint8, torch.Generator.get_state() of the run's generator
    fingerprint: str  # sha256 of the params that shape the trajectory + the images' digests
    device: str  # resuming is exact only on the same kind of device
    losses: list[float] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    # The published vectors (``TrainingParams.ema_decay``'s average), same keys/shapes; a
    # checkpoint written before averaging existed has none and resumes averaging from its vectors.
    average: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def published(self) -> dict[str, np.ndarray]:
        """The vectors an embedding made from this checkpoint would hold."""
        return self.average or self.vectors

    def to_bytes(self) -> bytes:
        tensors: dict[str, np.ndarray] = {"rng_state": np.asarray(self.rng_state, np.uint8)}
        for prefix in GROUPS:
            for name, arr in getattr(self, prefix).items():
                tensors[f"{prefix}.{name}"] = np.ascontiguousarray(arr, dtype=np.float32)
        meta = {
            "format": FORMAT,
            "step": self.step,
            "adam_step": self.adam_step,
            "fingerprint": self.fingerprint,
            "device": self.device,
            "losses": self.losses,
            "eval_losses": self.eval_losses,
            "elapsed_s": self.elapsed_s,
        }
        return st_save(tensors, metadata={META_KEY: json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            tensors = st_load(data)

            n = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + n])
            meta = json.loads(header["__metadata__"][META_KEY])
        except Exception as exc:
            raise BadRequest(
                f"not a trainer checkpoint ({exc}); upload the worker's bytes"
            ) from None
        if meta.get("format") != FORMAT:
            raise BadRequest(f"checkpoint format {meta.get('format')!r}; expected {FORMAT}")
        groups: dict[str, dict[str, np.ndarray]] = {prefix: {} for prefix in GROUPS}
        for key, arr in tensors.items():
            prefix, _, name = key.partition(".")
            if prefix in groups:
                groups[prefix][name] = arr
        return cls(
            step=int(meta["step"]),
            vectors=groups["vectors"],
            exp_avg=groups["exp_avg"],
            exp_avg_sq=groups["exp_avg_sq"],
            adam_step=float(meta["adam_step"]),
            rng_state=tensors["rng_state"],
            fingerprint=str(meta["fingerprint"]),
            device=str(meta["device"]),
            losses=[float(x) for x in meta["losses"]],
            eval_losses=[float(x) for x in meta["eval_losses"]],
            elapsed_s=float(meta["elapsed_s"]),
            average=groups["average"],
        )
