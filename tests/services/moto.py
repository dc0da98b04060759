"""moto's standalone S3 server as a subprocess over HTTP on a loopback port: the same boto3
code path as production (signing, HTTP, XML), never an in-process mock."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import IO

import httpx

from . import free_port, wait_until


@dataclass
class S3Endpoint:
    """An S3-compatible server the tests may use; ``new_bucket()`` gives each test its own."""

    url: str
    access_key: str
    secret: str
    region: str = "us-east-1"
    _buckets: list[str] = field(default_factory=list, repr=False)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def new_bucket(self, prefix: str = "lexicon-test") -> str:
        """Create an empty bucket with a random name and return the name."""
        name = f"{prefix}-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        self._buckets.append(name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """``LEXICON_*`` variables pointing the registry's settings at this endpoint."""
        return {
            "LEXICON_STORAGE": "s3",
            "LEXICON_S3_ENDPOINT_URL": self.url,
            "LEXICON_S3_BUCKET": bucket,
            "LEXICON_S3_REGION": self.region,
            "LEXICON_S3_ACCESS_KEY_ID": self.access_key,
            "LEXICON_S3_SECRET_ACCESS_KEY": self.secret,
        }


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.endpoint = S3Endpoint(
            url=f"http://127.0.0.1:{self.port}", access_key="testing", secret="testing"
        )
        try:
            wait_until(self._answers, timeout=60, what="moto server")
        except RuntimeError:
            self.stop()
            raise

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"moto server exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.endpoint.url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def log_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self._log.close()
