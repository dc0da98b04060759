"""embedding and embedding_version ids are never handed out twice on SQLite either: the tables
are rebuilt with AUTOINCREMENT. Without it SQLite gives a new row the id of a deleted highest
row, and the running registry's similarity index (rows remembered by version and embedding id)
left such a version out of "similar" until a restart. PostgreSQL's sequences never reuse an id:
nothing to do there.

The rebuild copies every row with its id, which sets sqlite_sequence to the highest id kept;
an id deleted above it before this migration can come back once (the in-memory index starts
empty with the process that migrates, so it holds no row for it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 21:50:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Parent first; the rebuild keeps every column, index, constraint and row.
TABLES = ("embedding", "embedding_version")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
