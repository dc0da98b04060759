"""The training loop of the trainer service: textual inversion with only the new vectors
trainable. Import torch-heavy pieces from here; ``client`` never imports this package."""

from __future__ import annotations

from client.core.training import TrainingParams

from .checkpoint import Checkpoint
from .early_stop import DvarRule
from .loop import train_embedding
from .model_defaults import fit_to_model, native_resolution
from .previews import render_previews
from .results import Progress, TrainingResult
from .trainer import Trainer

__all__ = [
    "Checkpoint",
    "DvarRule",
    "Progress",
    "Trainer",
    "TrainingParams",
    "TrainingResult",
    "fit_to_model",
    "native_resolution",
    "render_previews",
    "train_embedding",
]
