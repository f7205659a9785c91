"""what the overview still counts live, each from an index of its own

On PostgreSQL the follow-ups' time indexes INCLUDE the language (and, for closing, the first
attempt), so that a range is counted from the index alone; texts with a body and inbound texts
get partial indexes by time (texts per day, text conversations).

Revision ID: e2b6c4d8f913
Revises: d5e7a3b19c42
Create Date: 2026-12-02 18:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2b6c4d8f913"
down_revision: str | None = "d5e7a3b19c42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXTS = "body <> ''"
INBOUND = "direction = 'in'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_follow_ups_opened_at", table_name="follow_ups")
        op.create_index(
            "ix_follow_ups_opened_at", "follow_ups", ["opened_at"], postgresql_include=["language"]
        )
        op.drop_index("ix_follow_ups_closed_at", table_name="follow_ups")
        op.create_index(
            "ix_follow_ups_closed_at",
            "follow_ups",
            ["closed_at"],
            postgresql_include=["language", "first_attempt_at"],
        )
    op.create_index(
        "ix_messages_texts_created_at",
        "messages",
        ["created_at"],
        sqlite_where=sa.text(TEXTS),
        postgresql_where=sa.text(TEXTS),
    )
    op.create_index(
        "ix_messages_inbound_created_at",
        "messages",
        ["created_at", "conversation_id"],
        sqlite_where=sa.text(INBOUND),
        postgresql_where=sa.text(INBOUND),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_inbound_created_at", table_name="messages")
    op.drop_index("ix_messages_texts_created_at", table_name="messages")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_follow_ups_closed_at", table_name="follow_ups")
        op.create_index("ix_follow_ups_closed_at", "follow_ups", ["closed_at"])
        op.drop_index("ix_follow_ups_opened_at", table_name="follow_ups")
        op.create_index("ix_follow_ups_opened_at", "follow_ups", ["opened_at"])
