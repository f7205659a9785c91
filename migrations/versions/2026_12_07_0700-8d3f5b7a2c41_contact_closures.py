"""closures of a line's contacts (a holiday, an early closing, a snow day), kept by staff

Revision ID: 8d3f5b7a2c41
Revises: 7c2e9a4f1b36
Create Date: 2026-12-07 07:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d3f5b7a2c41"
down_revision: str | None = "7c2e9a4f1b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("contact", sa.String(length=64), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("month", sa.Integer(), nullable=True),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("nth", sa.Integer(), nullable=True),
        sa.Column("closes_at", sa.String(length=5), nullable=True),
        sa.Column("message_en", sa.Text(), nullable=True),
        sa.Column("message_es", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_contact_closures_line_id_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_closures")),
    )
    op.create_index("ix_contact_closures_line_id", "contact_closures", ["line_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_closures_line_id", table_name="contact_closures")
    op.drop_table("contact_closures")
