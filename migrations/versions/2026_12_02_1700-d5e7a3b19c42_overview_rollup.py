"""the overview's counts by the clinic's day, and an index of calls by when they changed

`overview_day_counts` keeps, per zone and day, what the overview and its headline numbers count
of calls and their keys pressed; `overview_rollups` says how far they are known current.
`ix_calls_updated_at` finds the calls changed since then, whose days are counted again.

Revision ID: d5e7a3b19c42
Revises: a7d2c91e4b58
Create Date: 2026-12-02 17:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "d5e7a3b19c42"
down_revision: str | None = "a7d2c91e4b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overview_day_counts",
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("members", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "zone", "day", "measure", "key", "detail", name="pk_overview_day_counts"
        ),
    )
    op.create_table(
        "overview_rollups",
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("checked_through", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone", name="pk_overview_rollups"),
    )
    op.create_index("ix_calls_updated_at", "calls", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_updated_at", table_name="calls")
    op.drop_table("overview_rollups")
    op.drop_table("overview_day_counts")
