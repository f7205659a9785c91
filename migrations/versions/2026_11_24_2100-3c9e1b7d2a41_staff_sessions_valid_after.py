"""staff sessions can be ended on the server: staff_users.sessions_valid_after

Revision ID: 3c9e1b7d2a41
Revises: fef2e58f6ee7
Create Date: 2026-11-24 21:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c9e1b7d2a41"
down_revision: str | None = "fef2e58f6ee7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.add_column(
            sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_column("sessions_valid_after")
