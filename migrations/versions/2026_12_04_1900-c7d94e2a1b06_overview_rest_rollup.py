"""the overview rolls up texts and follow-ups too; rows say when they were written

The overview's rollup counted a day's calls; a range of a year still counted its texts, text
conversations, follow-ups (their waits too) and opt-outs live: over 100 ms with a million
calls. They
are now rolled up by day with the calls (`service.staff.rollup`). To know which rolled-up days
a late write changed (a text the spool replays after an outage, a follow-up closed, a
conversation's language, an opt-out), follow_ups, messages, conversations and opt_outs get
`stored_at`: when the row was last written, by the server's clock (NULL for rows written
before). A partial index counts
the follow-ups still open of a range from their few rows.

The rolled-up days lack the new measures: they are dropped, to be counted again (until then
they are counted live; the periodic job adds a month of days a run, `phoneline staff rollup`
all of them at once).

Revision ID: c7d94e2a1b06
Revises: b3f81c6d2a57
Create Date: 2026-12-04 19:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7d94e2a1b06"
down_revision: str | None = "b3f81c6d2a57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMPED = ("follow_ups", "messages", "conversations", "opt_outs")


def upgrade() -> None:
    for table in STAMPED:
        op.add_column(table, sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True))
        op.create_index(f"ix_{table}_stored_at", table, ["stored_at"])
    open_items = sa.text("open_phone IS NOT NULL")
    op.create_index(
        "ix_follow_ups_open_opened_at",
        "follow_ups",
        ["opened_at"],
        sqlite_where=open_items,
        postgresql_where=open_items,
        postgresql_include=["language"],
    )
    op.execute("DELETE FROM overview_day_counts")
    op.execute("DELETE FROM overview_rollups")


def downgrade() -> None:
    op.execute("DELETE FROM overview_day_counts")
    op.execute("DELETE FROM overview_rollups")
    op.drop_index("ix_follow_ups_open_opened_at", table_name="follow_ups")
    for table in STAMPED:
        op.drop_index(f"ix_{table}_stored_at", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("stored_at")
