"""Blobs in S3-compatible storage (AWS, MinIO, moto, Swift's s3api) through boto3.

botocore's exceptions stop here: 404s become NotFound, everything else that means "the store
cannot serve us" becomes Unavailable naming the cause.

A blob's age (for gc's grace period) is its ``LastModified``. ``put`` always PUTs, also when the
key exists: a PUT is atomic and the bytes are the same (content-addressed), and the new
``LastModified`` keeps a re-published old orphan from gc. S3 has no conditional delete on age,
so ``delete_if_older`` reads the age with a HEAD just before the DELETE: a put landing in that
one round trip, while its row also commits after gc read the references, is the window left
(the local store has none). S3 reports whole seconds and its own clock: ages are rounded up,
and a grace period of minutes (the default is an hour) dwarfs any sane clock skew."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from client.core.errors import NotFound, Unavailable

from .base import CHUNK, BlobStore, StoredBlob, verify_digest
from .keys import KEY_PREFIX, blob_key, digest_from_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _raise(exc: Exception, what: str) -> NoReturn:
    """Translate a botocore error into the typed errors callers handle."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise NotFound(f"{what} is not in the store.") from None
        raise Unavailable(f"S3 refused {what}: {code or exc}. Check the bucket and credentials.")
    raise Unavailable(f"S3 unreachable for {what}: {exc}. Check LEXICON_S3_ENDPOINT_URL.") from exc


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 form for other names."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3BlobStore(BlobStore):
    """Path-style SigV4 client: the one addressing mode every S3 clone accepts."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret: str | None = None,
        create_bucket: bool = False,
        public_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.create_bucket = create_bucket
        self._bucket_ready = not create_bucket
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            # Newer botocore adds CRC checksums by default, which older S3 clones reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()

        def client(endpoint: str | None) -> Any:
            return session.client(
                "s3",
                endpoint_url=endpoint,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret,
                config=config,
            )

        self.client: Any = client(endpoint_url)
        # Presigned URLs are signed for the host the *downloader* uses (e.g. MinIO's public
        # address while the registry talks to it over a private network); signing needs no
        # request, so this client never connects anywhere.
        self.presign_client: Any = (
            client(public_endpoint_url) if public_endpoint_url else self.client
        )

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in {"404", "NoSuchBucket"}:
                _raise(exc, f"bucket {self.bucket}")
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as cexc:
                code = cexc.response.get("Error", {}).get("Code")
                if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    _raise(cexc, f"creating bucket {self.bucket}")
        except BotoCoreError as exc:
            _raise(exc, f"bucket {self.bucket}")
        self._bucket_ready = True

    def put(self, digest: str, data: bytes) -> None:
        key = blob_key(digest)
        verify_digest(digest, data)  # a PUT is atomic, so a mismatch never reaches the bucket
        self._ensure_bucket()
        try:  # also when it exists: same bytes, a fresh LastModified for gc (module docstring)
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, f"writing blob {digest}")

    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=blob_key(digest))
        except (ClientError, BotoCoreError) as exc:
            with contextlib.suppress(NotFound):
                _raise(exc, f"blob {digest}")
            return False
        return True

    def _get_body(self, digest: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=blob_key(digest))["Body"]
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, f"Blob {digest}")

    def get(self, digest: str) -> bytes:
        body = self._get_body(digest)
        try:
            with contextlib.closing(body):
                return body.read()
        except BotoCoreError as exc:
            _raise(exc, f"reading blob {digest}")

    def open_stream(self, digest: str) -> Iterator[bytes]:
        body = self._get_body(digest)  # NotFound now, not at the first next()

        def chunks() -> Iterator[bytes]:
            try:
                with contextlib.closing(body):
                    yield from body.iter_chunks(CHUNK)
            except BotoCoreError as exc:
                _raise(exc, f"reading blob {digest}")

        return chunks()

    def size(self, digest: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=blob_key(digest))
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, f"Blob {digest}")
        return int(head["ContentLength"])

    def delete(self, digest: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=blob_key(digest))
        except (ClientError, BotoCoreError) as exc:
            with contextlib.suppress(NotFound):
                _raise(exc, f"deleting blob {digest}")

    def delete_if_older(self, digest: str, cutoff: datetime) -> bool:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=blob_key(digest))
        except (ClientError, BotoCoreError) as exc:
            with contextlib.suppress(NotFound):
                _raise(exc, f"blob {digest}")
            return False
        if _rounded_up(head["LastModified"]) >= cutoff:
            return False
        self.delete(digest)
        return True

    def iter_blobs(self) -> Iterator[StoredBlob]:
        pages = self.client.get_paginator("list_objects_v2")
        try:
            for page in pages.paginate(Bucket=self.bucket, Prefix=KEY_PREFIX):
                for obj in page.get("Contents", []):
                    digest = digest_from_key(obj["Key"])
                    if digest is not None:
                        yield StoredBlob(digest, _rounded_up(obj["LastModified"]))
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, f"listing bucket {self.bucket}")

    def presigned_url(self, digest: str, *, filename: str | None, expires_s: int) -> str | None:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": blob_key(digest)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return str(
            self.presign_client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_s
            )
        )

    def check(self) -> None:
        if self.create_bucket:
            self._bucket_ready = False
            self._ensure_bucket()
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            try:
                _raise(exc, f"bucket {self.bucket}")
            except NotFound as missing:  # readiness: a missing bucket means not ready
                raise Unavailable(
                    f"{missing} Create it or set LEXICON_S3_CREATE_BUCKET=1."
                ) from None


def _rounded_up(modified: datetime) -> datetime:
    """S3 drops the fraction of a second: count the blob as written at the end of that second,
    so it never looks older than it is."""
    return modified + timedelta(seconds=1) if modified.microsecond == 0 else modified
