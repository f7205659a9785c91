"""staff accounts given a temporary password choose their own: staff_users.must_change_password

Revision ID: 8df280d6d933
Revises: e8f14a2c7d35
Create Date: 2026-12-02 04:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8df280d6d933"
down_revision: str | None = "e8f14a2c7d35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_column("must_change_password")
