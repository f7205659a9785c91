"""outbox: indexes the outbound policy counts by (per number per day, per kind per hour)

Revision ID: c3f8a1e5d207
Revises: b41e7d0c6a95
Create Date: 2026-12-02 02:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c3f8a1e5d207"
down_revision: str | None = "b41e7d0c6a95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_to_number_created_at", "outbox", ["to_number", "created_at"])
    op.create_index("ix_outbox_kind_created_at", "outbox", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_kind_created_at", table_name="outbox")
    op.drop_index("ix_outbox_to_number_created_at", table_name="outbox")
