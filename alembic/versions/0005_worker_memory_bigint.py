"""training_worker.memory_bytes as a 64-bit integer (issue 8: a worker reporting 80 GiB got a
500 on PostgreSQL, whose INTEGER is 32-bit)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_worker") as batch_op:
        batch_op.alter_column(
            "memory_bytes",
            existing_type=sa.Integer(),
            type_=sa.BigInteger(),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("training_worker") as batch_op:
        batch_op.alter_column(
            "memory_bytes",
            existing_type=sa.BigInteger(),
            type_=sa.Integer(),
            existing_nullable=True,
        )
