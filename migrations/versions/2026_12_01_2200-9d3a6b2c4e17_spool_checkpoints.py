"""spool_checkpoints: how far each local spool segment has been written to the database

Revision ID: 9d3a6b2c4e17
Revises: 7c4e2a9f1b83
Create Date: 2026-12-01 22:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3a6b2c4e17"
down_revision: str | None = "7c4e2a9f1b83"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spool_checkpoints",
        sa.Column("segment", sa.String(length=160), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("segment", name=op.f("pk_spool_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("spool_checkpoints")
