"""accounts limited to some lines (`staff_lines`; none: every line)

Revision ID: 5e7a1c3b9d24
Revises: 9b2d4e6f8a13
Create Date: 2026-12-07 06:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e7a1c3b9d24"
down_revision: str | None = "9b2d4e6f8a13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_lines",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_staff_lines_user_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_staff_lines_line_id_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "line_id", name=op.f("pk_staff_lines")),
    )


def downgrade() -> None:
    op.drop_table("staff_lines")
