"""urgent follow-ups: a crisis or an emergency (texted or said) opens an item that sorts first

follow_ups gets `urgent` (false for every item so far) and the reasons `crisis` and
`emergency`; the sweep's partial indexes cover the texts (messages.intent `crisis`,
`emergency`) and the call events (`crisis`) that file them.

Revision ID: 4a8c2e6f1d39
Revises: a7c3e9d1f5b2
Create Date: 2026-12-06 20:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4a8c2e6f1d39"
down_revision: str | None = "a7c3e9d1f5b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed')"
)
NEW_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed', 'crisis', 'emergency')"
)
OLD_CALL_EVENTS = "kind = 'callback_request'"
NEW_CALL_EVENTS = "kind IN ('callback_request', 'crisis')"
OLD_MESSAGES = "intent IN ('asked_for_person', 'not_understood')"
NEW_MESSAGES = "intent IN ('asked_for_person', 'not_understood', 'crisis', 'emergency')"


def _indexes(call_events: str, messages: str) -> None:
    op.drop_index("ix_call_events_callback_request_at", table_name="call_events")
    op.create_index(
        "ix_call_events_callback_request_at",
        "call_events",
        ["at"],
        sqlite_where=sa.text(call_events),
        postgresql_where=sa.text(call_events),
    )
    op.drop_index("ix_messages_person_wanted_created_at", table_name="messages")
    op.create_index(
        "ix_messages_person_wanted_created_at",
        "messages",
        ["created_at"],
        sqlite_where=sa.text(messages),
        postgresql_where=sa.text(messages),
    )


def upgrade() -> None:
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.add_column(
            sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", NEW_REASONS)
    _indexes(NEW_CALL_EVENTS, NEW_MESSAGES)


def downgrade() -> None:
    _indexes(OLD_CALL_EVENTS, OLD_MESSAGES)
    # An item opened for a crisis keeps its place on the list as a text asking for a person.
    op.execute(
        "UPDATE follow_ups SET reason = 'text-asked-person' "
        "WHERE reason IN ('crisis', 'emergency')"
    )
    op.execute(
        "UPDATE follow_up_sources SET reason = 'text-asked-person' "
        "WHERE reason IN ('crisis', 'emergency')"
    )
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", OLD_REASONS)
        batch_op.drop_column("urgent")
