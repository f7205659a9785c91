"""follow-ups: the reason `asked-after-hours` (a call back asked for while the contact was closed)

Revision ID: 9e4a6c8b1d52
Revises: 8d3f5b7a2c41
Create Date: 2026-12-07 07:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9e4a6c8b1d52"
down_revision: str | None = "8d3f5b7a2c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed', 'crisis', 'emergency')"
)
NEW_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed', 'crisis', 'emergency', 'asked-after-hours')"
)


def upgrade() -> None:
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", NEW_REASONS)


def downgrade() -> None:
    for table in ("follow_ups", "follow_up_sources"):
        op.execute(
            f"UPDATE {table} SET reason = 'call-back-asked' WHERE reason = 'asked-after-hours'"
        )
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", OLD_REASONS)
