"""Training jobs and the workers that run them.

A job is a row in a queue: ``queued`` -> ``running`` (a worker holds a lease) -> ``succeeded``
| ``failed`` | ``cancelled``. A lease is a random ``lease_id`` with an expiry; every worker call
names its lease, so a worker whose lease expired (and whose job another worker now holds)
cannot report progress or publish. Images, checkpoints and previews are content-addressed
blobs; the job records their digests.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from registry.accounts.models import utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TrainingWorker(SQLModel, table=True):
    """A registered worker process; ``user_id`` is the identity its worker token belongs to."""

    __tablename__ = "training_worker"

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    families: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    base_models: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    device: str = Field(default="", max_length=100)
    # 64-bit: a GPU worker reports e.g. 80 GiB, past PostgreSQL's 32-bit INTEGER.
    memory_bytes: int | None = Field(default=None, sa_type=BigInteger)
    registered_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class TrainingJob(SQLModel, table=True):
    __tablename__ = "training_job"
    # The claim query: oldest queued job of a family.
    __table_args__ = (Index("ix_training_job_queue", "status", "family", "created_at"),)

    id: str = Field(primary_key=True, max_length=32)
    created_by: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    namespace: str = Field(foreign_key="namespace.name", max_length=64, index=True)
    name: str = Field(max_length=64)
    family: str = Field(max_length=8)
    base_model: str | None = Field(default=None, max_length=200)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"digest", "filename", "size", "format", "width", "height"}]
    images: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=JobStatus.QUEUED, max_length=16)
    step: int = 0
    total_steps: int = 0
    losses: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    eta_s: float | None = None
    attempts: int = 0
    max_attempts: int = 3
    worker_id: str | None = Field(
        default=None, foreign_key="training_worker.id", max_length=32, ondelete="SET NULL"
    )
    lease_id: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = None
    checkpoint_digest: str | None = Field(default=None, max_length=71)
    checkpoint_step: int | None = None
    idempotency_key: str | None = Field(default=None, max_length=100)
    result_number: int | None = None
    result_digest: str | None = Field(default=None, max_length=71)
    error: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
