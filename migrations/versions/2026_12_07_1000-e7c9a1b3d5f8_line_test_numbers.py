"""lines: staff phones that hear a line's draft (its test numbers)

Revision ID: e7c9a1b3d5f8
Revises: d6b8f0a2c4e7
Create Date: 2026-12-07 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7c9a1b3d5f8"
down_revision: str | None = "d6b8f0a2c4e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "line_test_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_line_test_numbers_line_id_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_test_numbers")),
        sa.UniqueConstraint("line_id", "number", name=op.f("uq_line_test_numbers_line_id_number")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("line_test_numbers")
