"""the overview at a million calls: the calls' time index covers what the overview counts,
and the keys pressed have an index of their own

On PostgreSQL `ix_calls_started_at_id` INCLUDEs the columns the overview and its headline
numbers group and count by, so they are index-only scans of the range; SQLite keeps the plain
index. `ix_call_events_key_at` holds the keys pressed by time (the "options chosen" chart read
every call event of the last 30 days).

Revision ID: a7d2c91e4b58
Revises: f3b9d2a6c810
Create Date: 2026-12-02 04:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7d2c91e4b58"
down_revision: str | None = "f3b9d2a6c810"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = ["language", "outcome", "caller", "last_node", "transferred_contact", "dial_outcome"]
KEY = "kind = 'key'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_calls_started_at_id", table_name="calls")
        op.create_index(
            "ix_calls_started_at_id", "calls", ["started_at", "id"], postgresql_include=COUNTED
        )
    op.create_index(
        "ix_call_events_key_at",
        "call_events",
        ["at"],
        postgresql_include=["node", "detail"],
        sqlite_where=sa.text(KEY),
        postgresql_where=sa.text(KEY),
    )


def downgrade() -> None:
    op.drop_index("ix_call_events_key_at", table_name="call_events")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_calls_started_at_id", table_name="calls")
        op.create_index("ix_calls_started_at_id", "calls", ["started_at", "id"])
