"""outbox_workers: the heartbeat of each worker that sends from the outbox

Revision ID: b41e7d0c6a95
Revises: 9d3a6b2c4e17
Create Date: 2026-12-02 01:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b41e7d0c6a95"
down_revision: str | None = "9d3a6b2c4e17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_workers",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_outbox_workers")),
    )


def downgrade() -> None:
    op.drop_table("outbox_workers")
