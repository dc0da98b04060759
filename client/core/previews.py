"""How a base model's previews are drawn: its folder may hold :data:`PREVIEW_SETTINGS_FILE`
(written by ``hub dev toy-world``, read by the worker; the worker's flags override it)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import BadRequest
from .training import _bad

# A base-model folder may say how its previews are drawn: the classifier-free guidance and
# denoising steps it was made for (the toy world draws at 4.0 and 20; at SD's usual 7.5 its
# green star comes out yellow). The worker reads it; its flags override it.
PREVIEW_SETTINGS_FILE = "lexicon_preview.json"
PREVIEW_DEFAULTS = {"guidance_scale": 7.5, "num_inference_steps": 25}


def preview_settings(folder: str | Path) -> dict[str, float | int]:
    """The folder's preview settings over :data:`PREVIEW_DEFAULTS`; a malformed file is a
    BadRequest naming the file and the key, not a silent default."""
    settings: dict[str, float | int] = dict(PREVIEW_DEFAULTS)
    path = Path(folder) / PREVIEW_SETTINGS_FILE
    if not path.is_file():
        return settings
    try:
        given = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"{path} is not JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise BadRequest(f"{path} must hold an object")
    for key, value in given.items():
        if key == "guidance_scale":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and 1 <= value <= 30
        elif key == "num_inference_steps":
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 200
        else:
            raise BadRequest(f"{path}: unknown key {key!r} (guidance_scale, num_inference_steps)")
        if not ok:
            raise _bad(key, value, "guidance_scale 1-30, num_inference_steps 1-200")
        settings[key] = value
    return settings
