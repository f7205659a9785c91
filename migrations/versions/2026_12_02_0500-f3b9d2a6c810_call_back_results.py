"""outbox: what became of a call-back (call_status: did the texter answer; dial_status: did the
person it connected them to)

Revision ID: f3b9d2a6c810
Revises: 8df280d6d933
Create Date: 2026-12-02 05:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3b9d2a6c810"
down_revision: str | None = "8df280d6d933"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("call_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("dial_status", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dial_status")
        batch.drop_column("call_status")
