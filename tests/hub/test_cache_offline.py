"""The verified cache against a live registry: no-request pulls, corruption, offline mode,
lockfiles, and servers that answer HTML error pages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from client.core.errors import DigestMismatch
from client.hub import Hub, NotInCache
from client.transport import UnexpectedResponse
from tests.hub.helpers import blob_files, closed_url, digest_of, random_embedding


def _published(live, tmp_path: Path, name: str, n: int = 1) -> list:
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "pusher") as hub:
        return [hub.push(random_embedding(token=f"<{name}>"), f"alice/{name}") for _ in range(n)]


def test_cached_digest_and_number_pulls_make_no_request(live, tmp_path: Path) -> None:
    name = live.unique("nocall")
    (v1,) = _published(live, tmp_path, name)
    cache = tmp_path / "cache"
    with Hub(live.url, live.tokens["alice"], cache_dir=cache) as hub:
        first = hub.pull(f"alice/{name}@{v1.digest}")
        hub.pull(f"alice/{name}@1")
    # Nothing listens at this URL: any request would fail with a connection error.
    with Hub(closed_url(), "x", cache_dir=cache, retries=0) as hub:
        again = hub.pull(f"alice/{name}@{v1.digest}", format="diffusers")
        assert digest_of(again) == digest_of(first) == v1.digest
        assert hub.load(f"alice/{name}@1").token == f"<{name}>"  # the trigger, from the cache
        assert hub._transport is None, "a request was attempted"


def test_a_corrupted_cache_entry_is_detected_and_fetched_again(live, tmp_path: Path) -> None:
    name = live.unique("corrupt")
    (v1,) = _published(live, tmp_path, name)
    cache = tmp_path / "cache"
    with Hub(live.url, live.tokens["alice"], cache_dir=cache) as hub:
        hub.pull(f"alice/{name}@1")
        (blob,) = blob_files(cache)
        good = blob.read_bytes()
        blob.write_bytes(good[:-4] + b"\0\0\0\0")  # same size, wrong bytes
        requests: list[str] = []
        hub.transport._client.event_hooks["request"].append(lambda r: requests.append(r.url.path))
        out = hub.pull(f"alice/{name}@1", out=tmp_path / "out.safetensors")
    assert any(p.endswith(f"/versions/{v1.digest}/file") for p in requests), requests
    assert digest_of(out) == v1.digest and blob.read_bytes() == good
    # Offline, a corrupted blob is a miss with a clear message, never served.
    blob.write_bytes(b"garbage")
    with Hub(closed_url(), cache_dir=cache, offline=True) as hub, pytest.raises(NotInCache) as exc:
        hub.pull(f"alice/{name}@1")
    assert f"alice/{name}@1" in str(exc.value) and "LEXICON_OFFLINE" in str(exc.value)


def test_offline_serves_stale_tags_and_names_what_is_missing(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("offline")
    _published(live, tmp_path, name)
    assert hub_cli("pull", f"alice/{name}").exit_code == 0
    offline = {"LEXICON_OFFLINE": "1", "LEXICON_URL": closed_url()}
    ok = hub_cli("pull", f"alice/{name}", env=offline)
    assert ok.exit_code == 0, ok.output
    missing = hub_cli("pull", f"alice/{name}:nope", env=offline)
    assert missing.exit_code == 5, missing.output
    assert f"alice/{name}:nope is not in the cache" in missing.stderr
    assert "Traceback" not in missing.output


def test_lockfile_round_trip_and_offline_sync(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("locked")
    (v1,) = _published(live, tmp_path, name)
    lockfile = tmp_path / "project" / "lexicon.lock"
    lockfile.parent.mkdir()
    locked = hub_cli("lock", f"alice/{name}", "-f", lockfile)
    assert locked.exit_code == 0, locked.output
    text = lockfile.read_text()
    assert f'["alice/{name}:latest"]' in text and v1.digest in text and 'family = "sd1"' in text

    (v2,) = _published(live, tmp_path, name)
    fresh = {"LEXICON_CACHE": str(tmp_path / "other-machine")}
    synced = hub_cli("sync", "-f", lockfile, env=fresh)
    assert synced.exit_code == 0, synced.output
    ref, digest, path = synced.stdout.split()
    assert (ref, digest) == (f"alice/{name}:latest", v1.digest)  # the pin, not the new latest
    assert digest_of(Path(path)) == v1.digest

    kept = hub_cli("lock", f"alice/{name}", "-f", lockfile)
    assert "kept @1" in kept.stdout and v1.digest in lockfile.read_text()
    updated = hub_cli("lock", "--update", "-f", lockfile)
    assert updated.exit_code == 0 and "(was @1)" in updated.stdout, updated.output
    assert v2.digest in lockfile.read_text() and v1.digest not in lockfile.read_text()

    # Offline, with the registry unreachable: sync serves the pinned bytes from the cache.
    offline = {"LEXICON_OFFLINE": "1", "LEXICON_URL": closed_url()}
    webui = tmp_path / "webui"
    again = hub_cli("sync", "-f", lockfile, "--to-webui", webui, env=offline)
    assert again.exit_code == 0, again.output
    assert digest_of(webui / f"{name}.safetensors") == v2.digest
    # ... and an empty cache is a clear error naming the missing pin.
    empty = hub_cli("sync", "-f", lockfile, env={**offline, "LEXICON_CACHE": str(tmp_path / "e")})
    assert empty.exit_code == 5 and v2.digest in empty.stderr, empty.output


class _HtmlErrors(BaseHTTPRequestHandler):
    status = 502

    def _reply(self) -> None:
        body = b"<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[502, 200])
def html_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    handler = type("Handler", (_HtmlErrors,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", request.param
    server.shutdown()
    server.server_close()


def test_an_html_error_page_is_a_clear_error_and_nothing_is_cached(
    html_server: tuple[str, int], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from client.cli.main import app

    url, status = html_server
    cache = tmp_path / "cache"
    env = {
        "LEXICON_URL": url,
        "LEXICON_CACHE": str(cache),
        "LEXICON_TOKEN": "t",
        "LEXICON_OFFLINE": "0",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    # The CLI retries 5xx a few times with backoff, then gives up with one clear line.
    result = CliRunner().invoke(app, ["pull", "acme/brand"], env=env)
    assert result.exit_code == (5 if status == 502 else 1)
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert "text/html" in result.stderr or "non-JSON" in result.stderr, result.stderr
    # Number and digest refs (the download path too) fail the same way, typed.
    digest = "sha256:" + "ab" * 32
    with Hub(url, "t", cache_dir=cache, retries=0, offline=False) as hub:
        for ref in ("acme/brand@1", f"acme/brand@{digest}"):
            with pytest.raises(UnexpectedResponse):
                hub.pull(ref)
        with pytest.raises((UnexpectedResponse, DigestMismatch)):
            hub.transport.download(f"/api/v1/embeddings/acme/brand/versions/{digest}/file", digest)
    assert blob_files(cache) == []
    assert not (cache / "refs").exists() and not (cache / "versions").exists()
