"""every record carries its line (and the flow revision where it has one)

Calls and conversations keep the line they reached and the revision they were served;
messages, follow-ups and outbox rows the line they belong to. Nullable: rows written before
lines existed (or while no line was loaded) have none.

Revision ID: b8e4f2a6c913
Revises: da435b3798d4
Create Date: 2026-12-06 23:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8e4f2a6c913"
down_revision: str | None = "da435b3798d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "calls": ("line_id", "revision_id"),
    "conversations": ("line_id", "revision_id"),
    "messages": ("line_id",),
    "follow_ups": ("line_id",),
    "outbox": ("line_id",),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column)
