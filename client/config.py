"""The client's one settings object, resolved when asked for (never at import time).

Precedence per field: explicit argument, then environment (``LEXICON_URL``, ``LEXICON_TOKEN``,
``LEXICON_CACHE``, ``LEXICON_OFFLINE=1``), then the credentials file ``hub login`` writes
(``<user_config_dir("lexicon-hub")>/credentials.json``, mode 600), then defaults.

A token from the credentials file is used only for the URL it was saved for, so pointing
``LEXICON_URL`` at another server never sends it your token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from client.core.errors import LexiconError

from .core.files import atomic_write

APP_NAME = "lexicon-hub"
DEFAULT_URL = "http://127.0.0.1:8000"
_TRUE = {"1", "true", "yes", "on"}


class ConfigError(LexiconError):
    """The client's own configuration (credentials file, environment) is unusable."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None
    cache_dir: Path
    offline: bool = False

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        token: str | None = None,
        cache_dir: Path | str | None = None,
        offline: bool | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        credentials_path: Path | None = None,
    ) -> ClientConfig:
        """Build the config from arguments, environment and saved credentials (see module doc).
        ``environ`` and ``credentials_path`` exist so tests need no global patching."""
        env = os.environ if environ is None else environ
        creds = load_credentials(credentials_path)
        resolved_url = normalize_url(
            url or env.get("LEXICON_URL") or (creds.url if creds else None) or DEFAULT_URL
        )
        resolved_token = token or env.get("LEXICON_TOKEN") or None
        if resolved_token is None and creds and normalize_url(creds.url) == resolved_url:
            resolved_token = creds.token
        cache = cache_dir or env.get("LEXICON_CACHE") or platformdirs.user_cache_dir(APP_NAME)
        if offline is None:
            offline = env.get("LEXICON_OFFLINE", "").strip().lower() in _TRUE
        return cls(resolved_url, resolved_token, Path(cache).expanduser(), offline)


def normalize_url(url: str) -> str:
    """Compare and join URLs without trailing-slash surprises; refuse non-HTTP schemes early."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"registry URL {url!r} must start with http:// or https://; "
            "set LEXICON_URL or pass --url"
        )
    return url


def credentials_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "credentials.json"


def save_credentials(url: str, token: str, path: Path | None = None) -> Path:
    """Store url+token for ``hub login``; the file is created mode 600 (before any byte of the
    token is written) in a directory only the user can list."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"url": normalize_url(url), "token": token}, indent=2) + "\n"
    atomic_write(path, body.encode(), mode=0o600)
    return path


def load_credentials(path: Path | None = None) -> Credentials | None:
    """Saved credentials, or None when there are none; a damaged file is a clear error."""
    path = path or credentials_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"credentials file {path} is unreadable ({exc}); run `hub login` again or delete it"
        ) from None
    if not (
        isinstance(raw, dict)
        and isinstance(raw.get("url"), str)
        and isinstance(raw.get("token"), str)
    ):
        raise ConfigError(
            f"credentials file {path} lacks 'url' and 'token'; run `hub login` again or delete it"
        )
    return Credentials(raw["url"], raw["token"])


def delete_credentials(path: Path | None = None) -> bool:
    """Forget saved credentials (``hub logout``); True if there were any."""
    path = path or credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
