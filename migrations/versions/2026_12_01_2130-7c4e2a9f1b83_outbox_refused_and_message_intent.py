"""outbox rows the outbound policy refused; what an inbound text asked for (messages.intent)

Revision ID: 7c4e2a9f1b83
Revises: 5b2f8c1d9e60
Create Date: 2026-12-01 21:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c4e2a9f1b83"
down_revision: str | None = "5b2f8c1d9e60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('pending', 'sending', 'sent', 'failed', 'suppressed')"
NEW = "status IN ('pending', 'sending', 'sent', 'failed', 'suppressed', 'refused')"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", NEW)
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("intent", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("intent")
    op.execute("UPDATE outbox SET status = 'failed' WHERE status = 'refused'")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", OLD)
