"""OpenStack Swift with its s3api middleware: a real S3 that checks SigV4 signatures and
presigned-URL expiry (moto does not). A Python port of ``shared/tools/swift_s3.sh``; Swift lives
in its own venv (``.venv-swift``, ``pip install swift``) because its pins clash with ours."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from . import REPO_ROOT, free_port, port_is_free, wait_until
from .moto import S3Endpoint

SERVERS = ("account", "container", "object", "proxy")
PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging listing_formats s3api tempauth copy slo "
    "dlo proxy-logging proxy-server"
)
PROXY_FILTERS = """
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
""" + "".join(
    f"\n[filter:{name}]\nuse = egg:swift#{egg}\n"
    for name, egg in [
        ("catch_errors", "catch_errors"),
        ("gatekeeper", "gatekeeper"),
        ("healthcheck", "healthcheck"),
        ("proxy-logging", "proxy_logging"),
        ("listing_formats", "listing_formats"),
        ("copy", "copy"),
        ("slo", "slo"),
        ("dlo", "dlo"),
    ]
)


def swift_venv() -> Path:
    return Path(os.environ.get("LEXICON_SWIFT_VENV", REPO_ROOT / ".venv-swift"))


def swift_missing_reason() -> str | None:
    """Why Swift cannot run here, or None when it can."""
    if not (swift_venv() / "bin" / "swift-proxy-server").exists():
        return (
            f"OpenStack Swift is not installed in {swift_venv()}: run `bash scripts/test.sh` "
            "(or `python3 -m venv .venv-swift && .venv-swift/bin/pip install swift`)"
        )
    return None


def _xattr_dir() -> Path:
    """A parent directory whose filesystem keeps user xattrs (Swift's object server needs them)."""
    for parent in (Path(tempfile.gettempdir()), REPO_ROOT / ".test-services"):
        parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkstemp(dir=parent)[1])
        try:
            os.setxattr(probe, "user.lexicon", b"1")
            return parent
        except OSError:
            continue
        finally:
            probe.unlink()
    raise RuntimeError("No filesystem with user xattrs for Swift (tried $TMPDIR, .test-services/)")


def _four_free_ports() -> int:
    """A proxy port P with P+1..P+3 free too (container, account, object servers)."""
    for _ in range(50):
        port = free_port()
        if port < 65000 and all(port_is_free(port + i) for i in range(1, 4)):
            return port
    raise RuntimeError("No run of four free loopback ports for Swift")


class SwiftServer:
    def __init__(self) -> None:
        self.bin = swift_venv() / "bin"
        self.base = Path(tempfile.mkdtemp(prefix="lexicon-swift-", dir=_xattr_dir()))
        self.port = _four_free_ports()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.endpoint = S3Endpoint(
            url=f"http://127.0.0.1:{self.port}", access_key="test:tester", secret="testing"
        )
        try:
            self._configure()
            for name in SERVERS:
                log = (self.base / "run" / f"{name}.log").open("wb")
                conf = str(self.base / "etc" / f"{name}-server.conf")
                self.procs.append(
                    subprocess.Popen(
                        [str(self.bin / f"swift-{name}-server"), conf],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
                log.close()
            wait_until(self._answers, timeout=60, what="Swift proxy")
        except BaseException:
            self.stop()
            raise

    def _configure(self) -> None:
        etc, dev = self.base / "etc", self.base / "node"
        for d in (etc, dev / "d1", self.base / "run"):
            d.mkdir(parents=True, exist_ok=True)
        (etc / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_suffix = lexicon-suffix\n"
            "swift_hash_path_prefix = lexicon-prefix\n"
            "[storage-policy:0]\nname = default\ndefault = yes\n"
        )
        ports = {"proxy": self.port, "container": self.port + 1}
        ports |= {"account": self.port + 2, "object": self.port + 3}
        for name, port in ports.items():
            common = (
                f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\n"
                f"user = {getpass.getuser()}\nswift_dir = {etc}\ndevices = {dev}\n"
                "mount_check = false\nlog_level = WARNING\nlog_address = /nonexistent-dev-log\n"
            )
            if name == "proxy":
                body = f"\n[pipeline:main]\npipeline = {PROXY_PIPELINE}\n{PROXY_FILTERS}"
            else:
                body = (
                    f"\n[pipeline:main]\npipeline = {name}-server\n\n"
                    f"[app:{name}-server]\nuse = egg:swift#{name}\n"
                )
            (etc / f"{name}-server.conf").write_text(common + body)
            if name == "proxy":
                continue
            ring = str(self.bin / "swift-ring-builder")
            builder = f"{name}.builder"
            for args in (
                ["create", "6", "1", "1"],
                ["add", f"r1z1-127.0.0.1:{port}/d1", "1"],
                ["rebalance"],
            ):
                # rebalance exits 1 with a warning on a one-device ring; the ring is still written
                subprocess.run([ring, builder, *args], cwd=etc, capture_output=True, check=False)
        if not (etc / "object.ring.gz").exists():
            raise RuntimeError(f"swift-ring-builder wrote no rings in {etc}")

    def _answers(self) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"A Swift server exited ({proc.returncode}):\n{self.logs()}")
        try:
            return httpx.get(f"{self.endpoint.url}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        run = self.base / "run"
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in run.glob("*.log")
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.base)
