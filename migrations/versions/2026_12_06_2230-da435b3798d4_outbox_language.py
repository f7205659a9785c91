"""outbox rows keep the language their text is written in

A text the outbox sends (press 8, a reply held while the database was away, a long text's
further parts) and a call-back are written in the caller's or texter's language; the messages
CSV reads it by the sent text's MessageSid (the outbox row's `twilio_sid`, now indexed).

Revision ID: da435b3798d4
Revises: 4a8c2e6f1d37
Create Date: 2026-12-07 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "da435b3798d4"
down_revision: str | None = "4a8c2e6f1d37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("language", sa.String(length=8), nullable=True))
    op.create_index("ix_outbox_twilio_sid", "outbox", ["twilio_sid"])


def downgrade() -> None:
    op.drop_index("ix_outbox_twilio_sid", table_name="outbox")
    op.drop_column("outbox", "language")
