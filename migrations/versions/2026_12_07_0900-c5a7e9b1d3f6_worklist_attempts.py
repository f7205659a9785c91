"""worklist: staff call attempts and the next try on an item, "could not reach", and each
account's last visits to the worklist

Revision ID: c5a7e9b1d3f6
Revises: b3e5a7c9d1f4
Create Date: 2026-12-07 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5a7e9b1d3f6"
down_revision: str | None = "b3e5a7c9d1f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OUTCOMES = (
    "outcome IS NULL OR outcome IN ('reached', 'left-voicemail', 'wrong-number', "
    "'no-longer-needed', 'reached-a-person')"
)
NEW_OUTCOMES = (
    "outcome IS NULL OR outcome IN ('reached', 'left-voicemail', 'wrong-number', "
    "'no-longer-needed', 'reached-a-person', 'could-not-reach')"
)


def upgrade() -> None:
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.add_column(
            sa.Column("staff_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_follow_ups_outcome"), type_="check")
        batch_op.create_check_constraint("outcome", NEW_OUTCOMES)
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.add_column(
            sa.Column("worklist_seen_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("worklist_seen_before", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    op.execute("UPDATE follow_ups SET outcome = 'no-longer-needed' WHERE outcome = 'could-not-reach'")
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_column("worklist_seen_before")
        batch_op.drop_column("worklist_seen_at")
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_outcome"), type_="check")
        batch_op.create_check_constraint("outcome", OLD_OUTCOMES)
        batch_op.drop_column("next_try_at")
        batch_op.drop_column("staff_attempts")
