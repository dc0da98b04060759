"""Entry point of the ``hub`` console script: imports every command module so they register."""

# Command modules register themselves on ``app`` when imported.
from . import formats_cmds  # noqa: E402,F401  (hub inspect, hub convert)
from .app import app

__all__ = ["app"]
