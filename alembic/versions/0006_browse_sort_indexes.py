"""Indexes for the browse sorts (issue 12): (downloads|stars|trending|updated_at, id), so a
page of "ORDER BY key DESC, id DESC LIMIT n" reads n rows of an index instead of sorting the
whole embedding table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:30:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_embedding_downloads_id": ["downloads", "id"],
    "ix_embedding_stars_id": ["stars", "id"],
    "ix_embedding_trending_id": ["trending", "id"],
    "ix_embedding_updated_at_id": ["updated_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "embedding", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="embedding")
