"""spool fences: each spool directory says whether its opt-outs are in the database

Hosts (or containers) that share the database but not var/ cannot read each other's spool.
Each spool directory keeps a row beaten by its live processes (`service.spool.fence`); replies
and texts wait while another directory's row is stale or not clear.

Revision ID: f1a2e5c3d7b4
Revises: c7d94e2a1b06
Create Date: 2026-12-06 20:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1a2e5c3d7b4"
down_revision: str | None = "c7d94e2a1b06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spool_fences",
        sa.Column("directory", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("clear", sa.Boolean(), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("directory", name=op.f("pk_spool_fences")),
    )


def downgrade() -> None:
    op.drop_table("spool_fences")
