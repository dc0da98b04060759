"""Blob storage adapters: content-addressed, immutable blobs on a local disk or in S3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BlobStore
from .keys import blob_key
from .local import LocalBlobStore

if TYPE_CHECKING:
    from registry.settings import Settings

__all__ = ["BlobStore", "LocalBlobStore", "blob_key", "blob_store_from_settings"]


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The store ``LEXICON_STORAGE`` names; boto3 is imported only when S3 is chosen."""
    kind = settings.storage.strip().lower()
    if kind == "local":
        return LocalBlobStore(settings.resolved_blob_dir)
    if kind == "s3":
        from .s3 import S3BlobStore

        return S3BlobStore(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key_id,
            secret=settings.s3_secret_access_key,
            create_bucket=settings.s3_create_bucket,
            public_endpoint_url=settings.s3_public_endpoint_url,
        )
    # A configuration mistake, refused at start-up rather than on the first upload.
    raise ValueError(f"Unknown LEXICON_STORAGE={settings.storage!r}; set it to 'local' or 's3'.")
