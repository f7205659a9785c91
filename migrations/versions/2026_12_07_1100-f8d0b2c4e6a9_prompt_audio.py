"""prompt_audio: recorded prompts, by the SHA-256 of their bytes

Revision ID: f8d0b2c4e6a9
Revises: e7c9a1b3d5f8
Create Date: 2026-12-07 11:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f8d0b2c4e6a9"
down_revision: str | None = "e7c9a1b3d5f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_audio",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("format IN ('mp3', 'wav')", name=op.f("ck_prompt_audio_format")),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_prompt_audio")),
    )


def downgrade() -> None:
    op.drop_table("prompt_audio")
