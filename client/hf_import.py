"""Read an sd-concepts-library-style repository from the Hugging Face Hub: ``learned_embeds.bin``
(diffusers ``{token: [768]}``), ``token_identifier.txt`` and ``type_of_concept.txt``.

Files come through ``huggingface_hub.hf_hub_download``, so ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``,
``HF_TOKEN`` and the HF cache (``HF_HUB_CACHE``, ``HF_HOME``) behave as in every HF tool. The
pickle is read by :mod:`client.core.unpickler` like any other: no pickled code runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from client.core.embedding import Embedding
from client.core.errors import InvalidEmbedding, NotFound, Unavailable

EMBEDS = ("learned_embeds.bin", "learned_embeds.safetensors")
TYPES = {"object": "object", "style": "style", "subject": "subject", "negative": "negative"}


@dataclass(frozen=True)
class HFConcept:
    repo_id: str
    embedding: Embedding
    trigger: str | None
    type: str | None
    files: dict[str, Path]


def _download(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """The file's local path, or None when the repository has no such file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        # HF_HUB_CACHE is re-read here: huggingface_hub reads it once, at import.
        return Path(
            hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=os.environ.get("HF_HUB_CACHE")
            )
        )
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise NotFound(f"Hugging Face repository {repo_id!r} not found ({exc})") from None
    except OSError as exc:  # HTTP and connection errors from requests/httpx
        raise Unavailable(
            f"could not fetch {filename} from Hugging Face repository {repo_id!r} ({exc}); check "
            "HF_ENDPOINT and your connection, or populate the HF cache and set HF_HUB_OFFLINE=1"
        ) from None


def _text(path: Path | None) -> str | None:
    if path is None:
        return None
    value = path.read_text(encoding="utf-8", errors="replace").strip()
    return value or None


def fetch_concept(repo_id: str, *, revision: str | None = None) -> HFConcept:
    """Download (or find in the HF cache) and read an sd-concepts-library repository."""
    from client.core.formats import read_embedding

    files: dict[str, Path] = {}
    for name in EMBEDS:
        path = _download(repo_id, name, revision)
        if path is not None:
            files[name] = path
            break
    if not files:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        where = " in the local HF cache (HF_HUB_OFFLINE=1)" if offline else ""
        raise InvalidEmbedding(
            f"{repo_id} has no {' or '.join(EMBEDS)}{where}; is it an sd-concepts-library-style "
            "textual-inversion repository?"
        )
    (embeds,) = files.values()
    embedding = read_embedding(embeds)
    for name in ("token_identifier.txt", "type_of_concept.txt"):
        path = _download(repo_id, name, revision)
        if path is not None:
            files[name] = path
    trigger = _text(files.get("token_identifier.txt")) or embedding.token
    concept = (_text(files.get("type_of_concept.txt")) or "").lower()
    return HFConcept(repo_id, embedding.with_token(trigger), trigger, TYPES.get(concept), files)
