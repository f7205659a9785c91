"""voicemails: messages callers leave, their audio kept here, and the reason `left-voicemail`

Revision ID: a1c3e5f7b9d2
Revises: 9e4a6c8b1d52
Create Date: 2026-12-07 08:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1c3e5f7b9d2"
down_revision: str | None = "9e4a6c8b1d52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed', 'crisis', 'emergency', 'asked-after-hours')"
)
NEW_REASONS = (
    "reason IN ('missed-transfer', 'call-back-asked', 'text-asked-person', "
    "'text-not-understood', 'call-back-failed', 'crisis', 'emergency', 'asked-after-hours', "
    "'left-voicemail')"
)
TO_FETCH = sa.text("state IN ('waiting', 'stored')")


def upgrade() -> None:
    op.create_table(
        "voicemail_audio",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_voicemail_audio")),
    )
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("contact", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("seconds", sa.Integer(), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("twilio_status", sa.String(length=16), nullable=True),
        sa.Column("audio_sha256", sa.String(length=64), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at_twilio", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "state IN ('waiting', 'stored', 'done', 'absent')", name=op.f("ck_voicemails_state")
        ),
        sa.ForeignKeyConstraint(
            ["audio_sha256"], ["voicemail_audio.sha256"],
            name=op.f("fk_voicemails_audio_sha256_voicemail_audio"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemails")),
        sa.UniqueConstraint("recording_sid", name=op.f("uq_voicemails_recording_sid")),
    )  # fmt: skip
    op.create_index("ix_voicemails_call_sid", "voicemails", ["call_sid"])
    op.create_index("ix_voicemails_phone_left_at", "voicemails", ["phone", "left_at"])
    op.create_index("ix_voicemails_left_at", "voicemails", ["left_at"])
    op.create_index(
        "ix_voicemails_to_fetch", "voicemails", ["next_try_at"],
        sqlite_where=TO_FETCH, postgresql_where=TO_FETCH,
    )  # fmt: skip
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", NEW_REASONS)


def downgrade() -> None:
    for table in ("follow_ups", "follow_up_sources"):
        op.execute(f"UPDATE {table} SET reason = 'call-back-asked' WHERE reason = 'left-voicemail'")
    with op.batch_alter_table("follow_ups") as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_ups_reason"), type_="check")
        batch_op.create_check_constraint("reason", OLD_REASONS)
    op.drop_index("ix_voicemails_to_fetch", table_name="voicemails")
    op.drop_index("ix_voicemails_left_at", table_name="voicemails")
    op.drop_index("ix_voicemails_phone_left_at", table_name="voicemails")
    op.drop_index("ix_voicemails_call_sid", table_name="voicemails")
    op.drop_table("voicemails")
    op.drop_table("voicemail_audio")
