"""Every malformed request gets a 4xx naming the field, stores no blob, and leaves the server
answering (issue 8, defect 4). One table of probes, run on both backends in one test each so
every wrong probe is reported at once."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from tests.registry.helpers import Hub, auth, embedding_bytes

LONG = "x" * 10_001
DEEP = "[" * 100 + "]" * 100
HUGE_NUMBER = "9" * 5000
BIG = 2**70  # past 64 bits
MAX_DETAIL = 1000  # a problem's detail names the field; it does not echo a huge value back


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@dataclass
class Probe:
    """One malformed request: who sends it, what comes back (any of ``status``) and the words
    the problem's ``detail`` must contain (the field it names)."""

    label: str
    method: str
    path: str
    status: tuple[int, ...]
    names: str | None = None
    who: str = "alice"
    json: Any = None
    raw_json: str | None = None
    meta: Any = None  # publish: the metadata part (a dict, or raw text)
    files: list[tuple[str, Any]] | None = None  # multipart parts, sent as-is
    form: dict[str, Any] = field(default_factory=dict)


PUBLISH = "/api/v1/embeddings/alice/fresh/versions"
CAT = "/api/v1/embeddings/alice/cat"


def _publish(label: str, meta: Any, names: str, status: tuple[int, ...] = (400,)) -> Probe:
    return Probe(label, "POST", PUBLISH, status, names, meta=meta)


def _patch(label: str, body: Any, names: str) -> Probe:
    raw = body if isinstance(body, str) else None
    return Probe(label, "PATCH", CAT + "/", (400,), names, json=None if raw else body, raw_json=raw)


def _job(label: str, params: Any, names: str) -> Probe:
    raw = params if isinstance(params, str) else json.dumps(params)
    return Probe(
        label, "POST", "/api/v1/training-jobs", (400,), names, files=[("params", (None, raw))]
    )


PROBES: list[Probe] = [
    # over-long text (PostgreSQL's column limits; SQLite would store them)
    _publish("publish long description", {"description": LONG}, "description"),
    _publish("publish long trigger", {"trigger": "<" + "t" * 100 + ">"}, "trigger"),
    _publish("publish long license", {"license": "l" * 101}, "license"),
    _publish("publish long base_model", {"base_model": "b" * 201}, "base_model"),
    _publish("publish long notes", {"notes": LONG}, "notes"),
    _patch("patch long description", {"description": LONG}, "description"),
    _patch("patch long trigger", {"trigger": "t" * 101}, "trigger"),
    _patch("patch long license", {"license": "l" * 101}, "license"),
    # wrong JSON types
    _publish("publish trigger int", {"trigger": 5}, "trigger"),
    _publish("publish description list", {"description": ["a"]}, "description"),
    _publish("publish tags int", {"tags": 5}, "tags"),
    _publish("publish tags string", {"tags": "anime"}, "tags"),
    _publish("publish visibility list", {"visibility": ["public"]}, "visibility"),
    _publish("publish type list", {"type": ["style"]}, "type"),
    _publish("publish training list", {"training": [1]}, "training"),
    _patch("patch trigger int", {"trigger": 5}, "trigger"),
    _patch("patch description list", {"description": ["a"]}, "description"),
    _patch("patch tags int", {"tags": 5}, "tags"),
    _patch("patch visibility list", {"visibility": ["public"]}, "visibility"),
    # NUL bytes in fields
    _publish("publish NUL description", {"description": "a\x00b"}, "description"),
    _publish("publish NUL trigger", {"trigger": "<a\x00>"}, "trigger"),
    _publish("publish NUL notes", {"notes": "\x00"}, "notes"),
    _publish("publish NUL in training", {"training": {"note": "a\x00"}}, "training"),
    _patch("patch NUL description", {"description": "a\x00b"}, "description"),
    _patch("patch NUL license", {"license": "\x00"}, "license"),
    # NaN, deep nesting and 5,000-digit numbers in JSON
    _publish("publish NaN", '{"training": {"loss": NaN}}', "metadata"),
    _publish("publish Infinity", '{"training": {"loss": 1e400}}', "metadata"),
    _publish("publish deep metadata", '{"training": {"a": ' + DEEP + "}}", "metadata"),
    _publish("publish very deep metadata", "[" * 100_000 + "]" * 100_000, "metadata"),
    _publish("publish 5000 digits", '{"training": {"n": ' + HUGE_NUMBER + "}}", "metadata"),
    _publish("publish 2**70 in training", {"training": {"n": BIG}}, "metadata"),
    _patch("patch NaN", '{"description": NaN}', "body"),
    _patch("patch deep", '{"description": "x", "extra": ' + DEEP + "}", "extra"),
    _patch("patch very deep", "[" * 20_000 + "]" * 20_000, "body"),
    _patch("patch 5000 digits", '{"description": "x", "n": ' + HUGE_NUMBER + "}", "body"),
    # training job parameters (the params part of POST /training-jobs)
    _job("job params NaN", '{"target": "alice/toy", "trigger": "<t>", "family": "sd1", '
         '"learning_rate": NaN}', "params"),
    _job("job params deep", '{"target": "alice/toy", "trigger": "<t>", "family": "sd1", '
         '"extra": {"a": ' + DEEP + "}}", "params"),
    _job("job params very deep", "[" * 100_000 + "]" * 100_000, "params"),
    _job("job params 5000 digits", '{"target": "alice/toy", "trigger": "<t>", "family": "sd1", '
         '"seed": ' + HUGE_NUMBER + "}", "params"),
    _job("job trigger newline", {"target": "alice/toy", "trigger": "<t>\n", "family": "sd1"},
         "trigger"),
    _job("job extra not text", {"target": "alice/toy", "trigger": "<t>", "family": "sd1",
                                "extra": {"a": [1]}}, "extra"),
    _job("job ema_decay 1", {"target": "alice/toy", "trigger": "<t>", "family": "sd1",
                             "ema_decay": 1}, "ema_decay"),
    _publish("publish training ema_decay 1.5", {"training": {"ema_decay": 1.5}}, "ema_decay"),
    # a huge bad value is named, not echoed back whole
    _job("job initializer 100k", {"target": "alice/toy", "trigger": "<t>", "family": "sd1",
                                  "initializer": "i" * 100_000}, "initializer"),
    _job("job concept 100k", {"target": "alice/toy", "trigger": "<t>", "family": "sd1",
                              "concept": "c" * 100_000}, "concept"),
    _publish("publish training ema_decay 100k", {"training": {"ema_decay": "9" * 100_000}},
             "ema_decay"),
    # control characters in words that become prompt text (the trigger's rule)
    _job("job initializer control char", {"target": "alice/toy", "trigger": "<t>",
                                          "family": "sd1", "initializer": "cat\x01"},
         "initializer"),
    _job("job preview prompt escape", {"target": "alice/toy", "trigger": "<t>", "family": "sd1",
                                       "preview_prompts": ["a <t>\x1b[2J"]}, "preview_prompts"),
    _job("job extra key control char", {"target": "alice/toy", "trigger": "<t>",
                                        "family": "sd1", "extra": {"k\x07": "v"}}, "extra"),
    # the file part
    Probe("file as text", "POST", PUBLISH, (400,), "file", files=[("file", (None, "hello"))]),
    Probe(
        "binary file as text",
        "POST",
        PUBLISH,
        (400,),
        "file",
        files=[("file", (None, b"\xff\xfe\x00" + embedding_bytes(seed=1)))],
    ),
    Probe(
        "metadata not UTF-8",
        "POST",
        PUBLISH,
        (400,),
        "metadata",
        files=[("metadata", (None, b'{"description": "\xff"}'))],
    ),
    Probe(
        "file twice",
        "POST",
        PUBLISH,
        (400,),
        "file",
        files=[("file", ("a.safetensors", b"x")), ("file", ("b.safetensors", b"y"))],
    ),
    Probe("digest garbage", "POST", PUBLISH, (400,), "digest", form={"digest": "nope"}),
    # NUL and odd characters in paths and queries
    Probe("NUL in embedding path", "GET", "/api/v1/embeddings/alice/ca%00t", (400, 404)),
    Probe("NUL in publish path", "POST", "/api/v1/embeddings/alice/ca%00t/versions", (400, 422)),
    Probe("NUL in user path", "GET", "/api/v1/users/al%00ice", (400, 404)),
    Probe("NUL in org path", "GET", "/api/v1/orgs/ac%00me/members", (400, 404)),
    Probe("NUL in tag ref", "GET", CAT + "/versions/st%00able", (400, 404)),
    Probe("NUL in tag delete", "DELETE", CAT + "/tags/st%00able", (400, 404)),
    Probe("NUL in blob digest", "HEAD", "/api/v1/blobs/sha256%3A%00", (400, 404)),
    Probe("NUL in job path", "GET", "/api/v1/training-jobs/jb%00", (400, 404)),
    Probe("NUL in job heartbeat", "POST", "/api/v1/training-jobs/jb%00/heartbeat", (400, 404),
          who="worker", json={"lease": "x"}),
    Probe("NUL in search q", "GET", "/api/v1/embeddings?q=c%00t", (400,), "q"),
    Probe("NUL in search tag", "GET", "/api/v1/embeddings?tag=a%00", (400,), "tag"),
    Probe("NUL in search author", "GET", "/api/v1/embeddings?author=a%00", (400,), "author"),
    # version references that pass str.isdigit() or int() but are not plain decimals
    Probe("superscript two ref", "GET", CAT + "/versions/%C2%B2", (400, 404)),
    Probe("arabic-indic one ref", "GET", CAT + "/versions/%D9%A1", (400, 404)),
    Probe("superscript ref file", "GET", CAT + "/versions/%C2%B2/file", (400, 404)),
    Probe("arabic-indic yank", "POST", CAT + "/versions/%D9%A1/yank", (400, 404)),
    Probe("underscore yank", "POST", CAT + "/versions/1_0/yank", (400, 404)),
    # integers past 64 bits
    Probe("huge version ref", "GET", CAT + f"/versions/{BIG}", (400, 404)),
    Probe("huge yank", "POST", CAT + f"/versions/{BIG}/yank", (400, 404)),
    Probe("huge unyank", "POST", CAT + f"/versions/{BIG}/unyank", (400, 404)),
    Probe("huge tag target", "PUT", CAT + "/tags/stable", (400, 404), json={"version": BIG}),
    Probe("bool tag target", "PUT", CAT + "/tags/stable", (400,), "version",
          json={"version": True}),
    Probe("huge token id", "DELETE", f"/api/v1/tokens/{BIG}", (400, 404)),
    Probe(
        "huge worker memory",
        "POST",
        "/api/v1/workers/register",
        (400,),
        "memory_bytes",
        who="worker",
        json={"families": ["sd1"], "memory_bytes": BIG},
    ),
    Probe(
        "NUL worker name",
        "POST",
        "/api/v1/workers/register",
        (400,),
        "name",
        who="worker",
        json={"families": ["sd1"], "name": "w\x00"},
    ),
    # tampered cursors
    Probe("cursor string key", "GET", f"/api/v1/embeddings?cursor={_cursor(['x', 1])}", (400,)),
    Probe("cursor huge id", "GET", f"/api/v1/embeddings?cursor={_cursor([1, BIG])}", (400,)),
    Probe("cursor list key", "GET", f"/api/v1/embeddings?cursor={_cursor([[1], 1])}", (400,)),
    Probe("cursor huge key", "GET", f"/api/v1/embeddings?cursor={_cursor([BIG, 1])}", (400,)),
    Probe(
        "recent cursor without offset",
        "GET",
        f"/api/v1/embeddings?sort=recent&cursor={_cursor(['2024-01-01T00:00:00', 1])}",
        (400,),
        "cursor",
    ),
    Probe(
        "trending cursor string",
        "GET",
        f"/api/v1/embeddings?sort=trending&cursor={_cursor(['hot', 1])}",
        (400,),
        "cursor",
    ),
    # tokens
    Probe("expires_in_days string", "POST", "/api/v1/tokens", (400,), "expires_in_days",
          json={"expires_in_days": "5"}),
    Probe("expires_in_days 1e300", "POST", "/api/v1/tokens", (400,), "expires_in_days",
          json={"expires_in_days": 1e300}),
    Probe("expires_in_days huge", "POST", "/api/v1/tokens", (400,), "expires_in_days",
          json={"expires_in_days": BIG}),
    Probe("token scopes int", "POST", "/api/v1/tokens", (400,), "scopes", json={"scopes": 5}),
    Probe("token name NUL", "POST", "/api/v1/tokens", (400,), "name", json={"name": "a\x00"}),
    # users and orgs
    Probe("password int", "POST", "/api/v1/users", (400,), "password", who="admin",
          json={"username": "bob1", "password": 5}),
    Probe("email long", "POST", "/api/v1/users", (400,), "email", who="admin",
          json={"username": "bob2", "email": "e" * 321}),
    Probe("email int", "POST", "/api/v1/users", (400,), "email", who="admin",
          json={"username": "bob3", "email": 5}),
    Probe("email NUL", "POST", "/api/v1/users", (400,), "email", who="admin",
          json={"username": "bob4", "email": "a\x00@b"}),
    Probe("username NUL", "POST", "/api/v1/users", (422,), "username", who="admin",
          json={"username": "b\x00b"}),
    Probe("org description long", "POST", "/api/v1/orgs", (400,), "description",
          json={"name": "acme2", "description": "d" * 2001}),
    Probe("org description list", "POST", "/api/v1/orgs", (400,), "description",
          json={"name": "acme3", "description": ["d"]}),
    Probe("org name int", "POST", "/api/v1/orgs", (400, 422), "name", json={"name": 5}),
]  # fmt: skip


def _send(hub: Hub, probe: Probe, tokens: dict[str, str]) -> Any:
    headers = auth(tokens.get(probe.who))
    if probe.method == "POST" and probe.path.endswith("/versions"):
        if probe.files is not None:
            files: Any = probe.files
        else:
            files = [("file", ("e.safetensors", embedding_bytes(), "application/octet-stream"))]
        if probe.meta is not None:
            raw = probe.meta if isinstance(probe.meta, str) else json.dumps(probe.meta)
            files = [*files, ("metadata", (None, raw))]
        if probe.form:
            files = [*[(k, (None, v)) for k, v in probe.form.items()]]
        return hub.client.post(probe.path, files=files, headers=headers)
    if probe.files is not None:
        return hub.client.post(probe.path, files=probe.files, headers=headers)
    if probe.raw_json is not None:
        headers = {**headers, "Content-Type": "application/json"}
        return hub.client.request(probe.method, probe.path, content=probe.raw_json, headers=headers)
    return hub.client.request(probe.method, probe.path, json=probe.json, headers=headers)


def _world(hub: Hub) -> dict[str, str]:
    tokens = {
        "alice": hub.user("alice"),
        "admin": hub.user("root", admin=True, scopes=["read", "write", "admin"]),
        "worker": hub.user("worker", scopes=["worker"]),
    }
    hub.org("acme", "alice")
    hub.published("alice", "cat", tokens["alice"])
    hub.published("alice", "dog", tokens["alice"])  # so cursors have a next page
    return tokens


def test_every_malformed_request_is_a_4xx_naming_the_field(hub: Hub) -> None:
    tokens = _world(hub)
    before = set(hub.store.iter_digests())
    wrong: list[str] = []
    for probe in PROBES:
        response = _send(hub, probe, tokens)
        stored = set(hub.store.iter_digests()) - before
        if stored:
            wrong.append(f"{probe.label}: stored blobs {sorted(stored)}")
            before |= stored
        if response.status_code not in probe.status:
            wrong.append(f"{probe.label}: {response.status_code} {response.text[:200]}")
            continue
        if probe.method != "HEAD":
            body = response.json()
            if body.get("status") != response.status_code or not body.get("code"):
                wrong.append(f"{probe.label}: not a problem+json body: {body}")
            elif probe.names and probe.names not in body.get("detail", ""):
                wrong.append(f"{probe.label}: detail does not name {probe.names!r}: {body}")
            elif len(body.get("detail", "")) > MAX_DETAIL:
                wrong.append(f"{probe.label}: a {len(body['detail'])}-character detail")
    assert not wrong, f"{len(wrong)} of {len(PROBES)} probes wrong:\n" + "\n".join(wrong)
    assert hub.get("/healthz").status_code == 200
    assert hub.get(CAT, tokens["alice"]).json()["versions"][0]["yanked"] is False
