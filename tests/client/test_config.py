import json
import stat
from pathlib import Path

import pytest

from client.config import (
    ClientConfig,
    ConfigError,
    delete_credentials,
    load_credentials,
    save_credentials,
)


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    return tmp_path / "config" / "credentials.json"


def test_arguments_beat_environment(creds: Path, tmp_path: Path) -> None:
    env = {"LEXICON_URL": "http://env:1", "LEXICON_TOKEN": "env-token", "LEXICON_CACHE": "/env"}
    cfg = ClientConfig.resolve(
        "http://arg:2/", "arg-token", tmp_path, offline=False, environ=env, credentials_path=creds
    )
    assert cfg == ClientConfig("http://arg:2", "arg-token", tmp_path, False)


def test_environment(creds: Path) -> None:
    env = {
        "LEXICON_URL": "https://hub.example/",
        "LEXICON_TOKEN": "t",
        "LEXICON_CACHE": "/var/cache/lex",
        "LEXICON_OFFLINE": "1",
    }
    cfg = ClientConfig.resolve(environ=env, credentials_path=creds)
    assert cfg == ClientConfig("https://hub.example", "t", Path("/var/cache/lex"), True)


def test_defaults(creds: Path) -> None:
    cfg = ClientConfig.resolve(environ={}, credentials_path=creds)
    assert cfg.token is None and cfg.offline is False
    assert "lexicon-hub" in str(cfg.cache_dir)
    assert cfg.url.startswith("http")


def test_environment_is_read_when_resolving_not_at_import(
    creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEXICON_URL", "http://later:9")
    monkeypatch.setenv("LEXICON_OFFLINE", "true")
    cfg = ClientConfig.resolve(credentials_path=creds)
    assert (cfg.url, cfg.offline) == ("http://later:9", True)


def test_credentials_file_round_trip_and_mode(creds: Path) -> None:
    assert load_credentials(creds) is None
    save_credentials("http://hub:8000/", "tok", creds)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text()) == {"url": "http://hub:8000", "token": "tok"}
    saved = load_credentials(creds)
    assert (saved.url, saved.token) == ("http://hub:8000", "tok")
    save_credentials("http://hub:8000", "tok2", creds)  # `hub login` again replaces it
    assert load_credentials(creds).token == "tok2"
    assert [p.name for p in creds.parent.iterdir()] == ["credentials.json"]
    assert delete_credentials(creds) and not delete_credentials(creds)


def test_saved_login_is_used(creds: Path) -> None:
    save_credentials("http://hub:8000", "saved", creds)
    cfg = ClientConfig.resolve(environ={}, credentials_path=creds)
    assert (cfg.url, cfg.token) == ("http://hub:8000", "saved")
    env_token = ClientConfig.resolve(environ={"LEXICON_TOKEN": "env"}, credentials_path=creds)
    assert env_token.token == "env"


def test_saved_token_never_goes_to_another_server(creds: Path) -> None:
    save_credentials("http://hub:8000", "saved", creds)
    cfg = ClientConfig.resolve(environ={"LEXICON_URL": "http://evil:8000"}, credentials_path=creds)
    assert (cfg.url, cfg.token) == ("http://evil:8000", None)


def test_damaged_credentials_are_a_clear_error(creds: Path) -> None:
    creds.parent.mkdir(parents=True)
    creds.write_text("{oops")
    with pytest.raises(ConfigError, match="hub login"):
        ClientConfig.resolve(environ={}, credentials_path=creds)
    creds.write_text('{"url": "http://x"}')
    with pytest.raises(ConfigError, match="lacks"):
        load_credentials(creds)


def test_bad_url_is_refused(creds: Path) -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        ClientConfig.resolve(environ={"LEXICON_URL": "hub.example"}, credentials_path=creds)
