"""``lexicon-trainer``: a GPU worker that claims training jobs from the registry."""

from __future__ import annotations

import sys


def main() -> None:
    print(
        "lexicon-trainer: the worker protocol is not available in this build yet; "
        "see the trainer issue.",
        file=sys.stderr,
    )
    sys.exit(1)
