"""calls are retold from their facts: honest outcomes, last_seen_at, updated_at, settled_at,
checked_at, and the index of calls not settled yet

Outcomes become what staff need to know: transferred -> reached; abandoned/completed -> not-answered
(a transfer was tried), listened (the caller went past the first menu) or hung-up; a dial
event's detail carries the number dialed.

Revision ID: 5b2f8c1d9e60
Revises: 3c9e1b7d2a41
Create Date: 2026-12-01 21:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b2f8c1d9e60"
down_revision: str | None = "3c9e1b7d2a41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "outcome IN ('in-progress', 'transferred', 'completed', 'abandoned', 'failed')"
NEW = (
    "outcome IN ('in-progress', 'reached', 'not-answered', 'listened', 'hung-up', 'failed', "
    "'unknown')"
)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_constraint(op.f("ck_calls_outcome"), type_="check")
        for name in ("last_seen_at", "updated_at", "settled_at", "checked_at"):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        UPDATE calls SET outcome = CASE
            WHEN outcome = 'transferred' THEN 'reached'
            WHEN outcome IN ('completed', 'abandoned') AND transferred_contact IS NOT NULL
                THEN 'not-answered'
            WHEN outcome IN ('completed', 'abandoned') AND path LIKE '%>%' THEN 'listened'
            WHEN outcome IN ('completed', 'abandoned') THEN 'hung-up'
            ELSE outcome END,
        last_seen_at = COALESCE(ended_at, started_at),
        updated_at = COALESCE(ended_at, started_at)
        """
    )
    # Calls that had settled were counted already.
    op.execute("UPDATE calls SET settled_at = updated_at WHERE outcome <> 'in-progress'")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.create_check_constraint("outcome", NEW)
        batch_op.create_index(
            "ix_calls_unsettled_updated_at",
            ["updated_at"],
            unique=False,
            sqlite_where=sa.text("settled_at IS NULL"),
            postgresql_where=sa.text("settled_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_unsettled_updated_at")
        batch_op.drop_constraint(op.f("ck_calls_outcome"), type_="check")
    op.execute(
        """
        UPDATE calls SET outcome = CASE
            WHEN outcome = 'reached' THEN 'transferred'
            WHEN outcome IN ('not-answered', 'hung-up', 'unknown') THEN 'abandoned'
            WHEN outcome = 'listened' THEN 'completed'
            ELSE outcome END
        """
    )
    with op.batch_alter_table("calls") as batch_op:
        batch_op.create_check_constraint("outcome", OLD)
        for name in ("checked_at", "settled_at", "updated_at", "last_seen_at"):
            batch_op.drop_column(name)
