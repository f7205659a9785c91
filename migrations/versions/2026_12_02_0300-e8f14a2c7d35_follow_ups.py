"""follow-ups: the worklist of numbers that did not reach a person; the navigator role

Revision ID: e8f14a2c7d35
Revises: c3f8a1e5d207
Create Date: 2026-12-02 02:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "e8f14a2c7d35"
down_revision: str | None = "c3f8a1e5d207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed')"
)
OUTCOMES = (
    "outcome IS NULL OR outcome IN ('reached', 'left-voicemail', 'wrong-number', "
    "'no-longer-needed', 'reached-a-person')"
)
CALLBACK_REQUEST = "kind = 'callback_request'"
PERSON_WANTED = "intent IN ('asked_for_person', 'not_understood')"
OLD_ROLES = "role IN ('viewer', 'admin')"
NEW_ROLES = "role IN ('viewer', 'navigator', 'admin')"


def upgrade() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("open_phone", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.CheckConstraint(REASONS, name=op.f("ck_follow_ups_reason")),
        sa.CheckConstraint(OUTCOMES, name=op.f("ck_follow_ups_outcome")),
        sa.CheckConstraint(
            "(open_phone IS NULL) = (closed_at IS NOT NULL)",
            name=op.f("ck_follow_ups_open_until_closed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
        sa.UniqueConstraint("open_phone", name=op.f("uq_follow_ups_open_phone")),
    )
    op.create_index("ix_follow_ups_phone_opened_at", "follow_ups", ["phone", "opened_at"])
    op.create_index("ix_follow_ups_opened_at", "follow_ups", ["opened_at"])
    op.create_index("ix_follow_ups_closed_at", "follow_ups", ["closed_at"])
    op.create_table(
        "follow_up_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_follow_up_sources_follow_up_id_follow_ups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_sources")),
        sa.UniqueConstraint("kind", "ref_id", name=op.f("uq_follow_up_sources_kind_ref_id")),
    )
    op.create_index(
        "ix_follow_up_sources_follow_up_id_at", "follow_up_sources", ["follow_up_id", "at"]
    )
    op.create_table(
        "follow_up_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_follow_up_notes_follow_up_id_follow_ups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_notes")),
    )
    op.create_index("ix_follow_up_notes_follow_up_id_at", "follow_up_notes", ["follow_up_id", "at"])
    op.create_index("ix_calls_caller_started_at", "calls", ["caller", "started_at"])
    op.create_index("ix_messages_phone_created_at", "messages", ["phone", "created_at"])
    op.create_index(
        "ix_call_events_callback_request_at",
        "call_events",
        ["at"],
        sqlite_where=sa.text(CALLBACK_REQUEST),
        postgresql_where=sa.text(CALLBACK_REQUEST),
    )
    op.create_index(
        "ix_messages_person_wanted_created_at",
        "messages",
        ["created_at"],
        sqlite_where=sa.text(PERSON_WANTED),
        postgresql_where=sa.text(PERSON_WANTED),
    )
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.alter_column("role", existing_type=sa.String(length=8), type_=sa.String(length=16))
        batch_op.create_check_constraint("role", NEW_ROLES)


def downgrade() -> None:
    op.execute("UPDATE staff_users SET role = 'viewer' WHERE role = 'navigator'")
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.alter_column("role", existing_type=sa.String(length=16), type_=sa.String(length=8))
        batch_op.create_check_constraint("role", OLD_ROLES)
    op.drop_index("ix_messages_person_wanted_created_at", table_name="messages")
    op.drop_index("ix_call_events_callback_request_at", table_name="call_events")
    op.drop_index("ix_messages_phone_created_at", table_name="messages")
    op.drop_index("ix_calls_caller_started_at", table_name="calls")
    op.drop_index("ix_follow_up_notes_follow_up_id_at", table_name="follow_up_notes")
    op.drop_table("follow_up_notes")
    op.drop_index("ix_follow_up_sources_follow_up_id_at", table_name="follow_up_sources")
    op.drop_table("follow_up_sources")
    op.drop_index("ix_follow_ups_closed_at", table_name="follow_ups")
    op.drop_index("ix_follow_ups_opened_at", table_name="follow_ups")
    op.drop_index("ix_follow_ups_phone_opened_at", table_name="follow_ups")
    op.drop_table("follow_ups")
