"""Garbage collection of blobs no row points at (``lexicon-registry gc``), safe beside live
traffic.

Blobs are stored before their row commits (blob first, row second), so an unreferenced blob
may be a publish, a job submission or a checkpoint in flight. With no grace, gc looping beside
publishes deleted the files of versions answered 201 (issue 8). So a blob is collected only
when it is unreferenced *and* older than ``LEXICON_GC_MIN_AGE_SECONDS``, and ``put`` of a blob
that is already there makes it young again (a publish re-using an old orphan's bytes).

Order, each step guarding the one before: (1) list the blobs with their ages; (2) read what
rows reference (a row committed before this read protects its blob, however old); (3) delete
each old, unreferenced blob with the store's ``delete_if_older``, which judges the age again at
the moment of deleting (a ``put`` since the listing keeps the blob). See the stores' docstrings
for how each makes step 3 safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from registry.context import Registry
from registry.db import session_scope
from registry.embeddings.models import EmbeddingVersion
from registry.training.services import referenced_digests

TEMP_FILE_AGE = timedelta(hours=1)


@dataclass
class GcReport:
    orphans: list[str] = field(default_factory=list)  # deleted (or, dry run, would be)
    young: int = 0  # unreferenced but inside the grace period (or re-put meanwhile): kept
    malformed: list[str] = field(default_factory=list)  # rows whose stored JSON was skipped
    temp_files: int = 0  # partial writes of crashed puts, removed


def referenced(session: Session) -> tuple[set[str], list[str]]:
    """Every digest a row points at (version files; training images, checkpoints, previews),
    and the rows whose stored JSON could not be read."""
    digests = set(session.exec(select(EmbeddingVersion.digest)).all())
    training = referenced_digests(session)
    return digests | training.digests, training.malformed


def collect_garbage(
    registry: Registry, *, dry_run: bool = False, min_age_seconds: int | None = None
) -> GcReport:
    """Delete blobs that are unreferenced and older than the minimum age (the setting unless
    ``min_age_seconds``; 0 turns the grace off, for a registry nothing is writing to)."""
    min_age = registry.settings.gc_min_age_seconds if min_age_seconds is None else min_age_seconds
    listed = list(registry.store.iter_blobs())
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=min_age) if min_age > 0 else datetime.max.replace(tzinfo=UTC)
    with session_scope(registry.engine) as session:
        keep, malformed = referenced(session)
    report = GcReport(malformed=malformed)
    for blob in listed:
        if blob.digest in keep:
            continue
        if blob.modified >= cutoff:
            report.young += 1
        elif dry_run or registry.store.delete_if_older(blob.digest, cutoff):
            report.orphans.append(blob.digest)
        else:
            report.young += 1
    if not dry_run:
        # A temp file may be a put in progress: an hour at least, whatever the setting.
        report.temp_files = registry.store.sweep_temp_files(min(cutoff, now - TEMP_FILE_AGE))
    return report
