"""``hub --help`` starts fast because it loads nothing it does not show: no numpy (formats), no
httpx (the registry API), no markdown parser (issue 12: 0.69 s before, over 0.25 s of it
these imports). Checked in a fresh interpreter; which modules load is what a user waits for."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "numpy",
    "httpx",
    "markdown_it",
    "torch",
    "safetensors",
    "huggingface_hub",
    "click",
    "rich",
)

PROBE = """
import json, sys
from client.cli.main import app
try:
    app(["--help"], prog_name="hub")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def test_hub_help_loads_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    help_text, _, loaded = out.rstrip().rpartition("\n")
    assert "push" in help_text and "pull" in help_text
    assert json.loads(loaded) == []
