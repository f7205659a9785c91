"""indexes for the staff's lists of one line (`?line=SLUG`)

Each list is read newest first by its keyset; filtered by a line, it reads the same keyset
within that line's rows.

Revision ID: 9b2d4e6f8a13
Revises: 6d1f3a9c2e47
Create Date: 2026-12-07 03:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9b2d4e6f8a13"
down_revision: str | None = "6d1f3a9c2e47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_calls_line_id_started_at_id": ("calls", ["line_id", "started_at", "id"]),
    "ix_conversations_line_id_last_activity_at_id": (
        "conversations",
        ["line_id", "last_activity_at", "id"],
    ),
    "ix_messages_line_id_created_at_id": ("messages", ["line_id", "created_at", "id"]),
    "ix_follow_ups_line_id": ("follow_ups", ["line_id"]),
    "ix_outbox_line_id_id": ("outbox", ["line_id", "id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
