"""the overview's rolled-up callers as a roaring bitmap of numbers

A day's callers were kept as their numbers, one a line, and a range of a year joined about a
million strings into sets (over 100 ms). `member_ids` keeps the E.164 numbers' digits as a
serialized roaring bitmap (`service.staff.rollup.Callers`); `members` keeps only other callers
(a JSON list).
The rolled-up days are dropped, to be counted again in the new form: until then they are
counted live (the periodic job adds a month of days a run; `phoneline staff rollup` adds them
all at once). Rows of the old form would still be read correctly.

Revision ID: b3f81c6d2a57
Revises: e2b6c4d8f913
Create Date: 2026-12-03 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b3f81c6d2a57"
down_revision: str | None = "e2b6c4d8f913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("overview_day_counts", sa.Column("member_ids", sa.LargeBinary(), nullable=True))
    op.execute("DELETE FROM overview_day_counts")
    op.execute("DELETE FROM overview_rollups")


def downgrade() -> None:
    # The rolled-up days in the new form lack the numbers the old form reads: count them again.
    op.execute("DELETE FROM overview_day_counts")
    op.execute("DELETE FROM overview_rollups")
    with op.batch_alter_table("overview_day_counts") as batch:
        batch.drop_column("member_ids")
