"""Entry point of the ``hub`` console script: imports every command module so they register
themselves on ``app``."""

from . import dev_cmds, formats_cmds, hub_cmds, import_cmds, lock_cmds, train_cmds  # noqa: F401
from .app import app

__all__ = ["app"]
