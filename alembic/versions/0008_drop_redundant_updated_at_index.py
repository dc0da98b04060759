"""Drop ``ix_embedding_updated_at``: ``ix_embedding_updated_at_id`` (0006) serves everything it
did, and two indexes that serve "ORDER BY updated_at DESC, id DESC" equally well left SQLite's
planner to pick by their order in the schema, which migration 0007's table rebuild makes
arbitrary (tests/registry/test_search_plans.py saw either, run to run).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:15:00
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_embedding_updated_at", table_name="embedding")


def downgrade() -> None:
    op.create_index("ix_embedding_updated_at", "embedding", ["updated_at"])
