"""The one settings object: every knob is a ``LEXICON_*`` environment variable with a documented
default. Built once (``Settings()``) and passed in; nothing reads the environment at import time."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEXICON_", extra="ignore")

    data_dir: Path = Field(
        Path("./lexicon-data"),
        description="Where the embedded defaults live: SQLite database and local blob directory.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
        "Default: sqlite:///<data_dir>/registry.db.",
    )
    # Blob storage: "local" (default, <data_dir>/blobs) or "s3".
    storage: str = Field("local", description="local | s3")
    blob_dir: Path | None = Field(
        None, description="Local blob directory (default <data_dir>/blobs)."
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto); None = AWS.")
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint that presigned download URLs name (default: s3_endpoint_url)."
    )
    s3_bucket: str = Field("lexicon", description="S3 bucket holding blobs.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key (else boto3's chain).")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    s3_create_bucket: bool = Field(True, description="Create the bucket at start-up if missing.")
    presign_seconds: int = Field(300, description="Lifetime of presigned download URLs.")

    max_upload_bytes: int = Field(2 * 1024 * 1024, description="Largest accepted embedding file.")
    open_signup: bool = Field(False, description="Allow anyone to create an account.")
    public_url: str | None = Field(None, description="External base URL of the registry.")
    log_level: str = Field("INFO", description="Python log level.")

    # Training jobs (registry/training): the worker lease and the image limits.
    training_lease_seconds: int = Field(
        120, description="A worker's lease on a job; a heartbeat extends it, expiry requeues."
    )
    training_max_attempts: int = Field(3, description="Claims of one job before it fails.")
    training_max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest training image.")
    training_max_image_pixels: int = Field(
        40_000_000, description="Most pixels (from the header) of a training image."
    )
    training_max_checkpoint_bytes: int = Field(
        16 * 1024 * 1024, description="Largest training checkpoint a worker may upload."
    )
    gc_min_age_seconds: int = Field(
        3600,
        ge=0,
        description="`lexicon-registry gc` deletes an unreferenced blob only once it is this old, "
        "so a publish in flight (blob stored, row not yet committed) keeps its file. "
        "0 turns the grace off: only while nothing publishes.",
    )

    # Request limits (registry/limits.py, registry/serving.py): bodies are checked against the
    # route's cap and the caller authenticated before any body byte is read; slow clients are cut.
    max_json_body_bytes: int = Field(
        64 * 1024, description="Largest body of a JSON route (uploads have their own caps)."
    )
    request_header_timeout_seconds: float = Field(
        10.0, description="A request's line and headers must arrive within this; else closed."
    )
    request_body_grace_seconds: float = Field(
        20.0, description="Time any body may take before the minimum rate applies."
    )
    request_body_min_rate: int = Field(
        4096, description="Bytes/s a body must average past the grace time; slower gets 408."
    )
    keep_alive_timeout_seconds: int = Field(
        5, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        1000, description="Open connections per worker; past it new requests get 503."
    )
    max_header_bytes: int = Field(
        64 * 1024, description="Largest request line + headers; larger gets 431."
    )
    # Rate limits, per worker process; 0 turns one off. Sign-in (token creation, sign-up) and
    # failed authentication count per client address; authenticated traffic per token.
    rate_limit_signin_per_minute: int = Field(
        20, description="Token creations and sign-ups per client address per minute."
    )
    rate_limit_failed_auth_per_minute: int = Field(
        30, description="Requests with an unknown, revoked or expired token per address/minute."
    )
    rate_limit_token_per_second: int = Field(200, description="Requests per API token per second.")
    rate_limit_anonymous_per_second: int = Field(
        200, description="Requests without a token per client address per second."
    )

    # Similar embeddings (registry/similarity): a publish reports visible embeddings at least
    # this close (cosine of the summary vectors) as near-duplicates.
    near_duplicate_cosine: float = Field(
        0.99, ge=0.0, le=1.0, description="Cosine at which a publish reports a near-duplicate."
    )

    # Web pages (registry/web): the key that signs session and CSRF cookies. The default is
    # random per process (sessions end on restart and do not cross workers); a registry served
    # over https refuses to start without one (see the validator below).
    session_secret: str = Field(
        default_factory=lambda: secrets.token_hex(32),
        min_length=32,
        description="Secret (32+ characters) for session and CSRF cookies; set it in production.",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if (self.public_url or "").startswith("https://") and (
            "session_secret" not in self.model_fields_set
        ):
            raise ValueError(
                "LEXICON_SESSION_SECRET must be set when LEXICON_PUBLIC_URL is https (a random "
                "per-process key would sign people out on every restart and differ per worker); "
                "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"
