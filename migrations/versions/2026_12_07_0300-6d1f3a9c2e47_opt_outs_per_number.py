"""opt-outs are kept per number of the line's: STOP to one number stops that number's texts

Carriers' rules: a STOP sent to one of the service's numbers stops texts from that number only;
STOPALL stops all of them (`number` is "*"). The rows kept so far were STOPs and STARTs sent
when the service had one number: they become "*" (every number), so nobody who stopped is
texted from a number added since.

Revision ID: 6d1f3a9c2e47
Revises: b8e4f2a6c913
Create Date: 2026-12-07 03:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6d1f3a9c2e47"
down_revision: str | None = "b8e4f2a6c913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("opt_outs", recreate="always") as batch_op:
        batch_op.add_column(
            sa.Column("number", sa.String(length=20), nullable=False, server_default="*")
        )
        batch_op.drop_constraint("pk_opt_outs", type_="primary")
        batch_op.create_primary_key("pk_opt_outs", ["phone", "number"])


def downgrade() -> None:
    # Back to one row a number: its newest change wins (a STOP to any number stops them all).
    op.execute(
        "DELETE FROM opt_outs WHERE EXISTS (SELECT 1 FROM opt_outs AS newer "
        "WHERE newer.phone = opt_outs.phone AND (newer.changed_at > opt_outs.changed_at "
        "OR (newer.changed_at = opt_outs.changed_at AND newer.number > opt_outs.number)))"
    )
    with op.batch_alter_table("opt_outs", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_opt_outs", type_="primary")
        batch_op.drop_column("number")
        batch_op.create_primary_key("pk_opt_outs", ["phone"])
