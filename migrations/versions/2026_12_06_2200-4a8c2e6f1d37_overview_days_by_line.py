"""the overview's rollup: one row a day and line, every chart in it; opt-outs unstamped

`overview_day_counts` (a day's headline numbers in one row, a row for each count of the
charts) becomes `overview_days`: one row for each day and line of the clinic
(`service.staff.rollup`), holding every number the overview shows of it, so that every chart
follows the range chosen and a number can be read for one line. The rolled-up days are not
carried over: they are counted again (live until then; the periodic job adds a month of days
a run, `phoneline staff rollup` all of them at once).

`opt_outs.stored_at` goes: the overview no longer rolls up the numbers opted out (it counts
the STOPs received, from the texts, and the numbers opted out at the end of a range, live).

Revision ID: 4a8c2e6f1d37
Revises: 4a8c2e6f1d39
Create Date: 2026-12-06 20:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4a8c2e6f1d37"
down_revision: str | None = "4a8c2e6f1d39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("overview_day_counts")
    op.create_table(
        "overview_days",
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("line", sa.String(20), nullable=False),
        sa.Column("written", sa.String(32), nullable=False),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("sets", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", "line", name="pk_overview_days"),
    )
    op.execute("DELETE FROM overview_rollups")
    op.drop_index("ix_opt_outs_stored_at", table_name="opt_outs")
    with op.batch_alter_table("opt_outs") as batch:
        batch.drop_column("stored_at")


def downgrade() -> None:
    op.add_column("opt_outs", sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_opt_outs_stored_at", "opt_outs", ["stored_at"])
    op.drop_table("overview_days")
    op.execute("DELETE FROM overview_rollups")
    op.create_table(
        "overview_day_counts",
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("members", sa.Text(), nullable=True),
        sa.Column("member_ids", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint(
            "zone", "day", "measure", "key", "detail", name="pk_overview_day_counts"
        ),
    )
