"""lines and their flow revisions

A line is a program's numbers and its flow; flows live as revisions in the database (the YAML
as written), one published per line. The files under flows/ seed the lines on first start
(`service.lines.book`). `line_book_version` is the one counter every process reads to know
that something changed.

Revision ID: a7c3e9d1f5b2
Revises: f1a2e5c3d7b4
Create Date: 2026-12-06 21:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3e9d1f5b2"
down_revision: str | None = "f1a2e5c3d7b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("keyword", sa.String(length=20), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("published_revision_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lines")),
        sa.UniqueConstraint("keyword", name=op.f("uq_lines_keyword")),
        sa.UniqueConstraint("slug", name=op.f("uq_lines_slug")),
    )
    op.create_table(
        "flow_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=64), nullable=True),
        sa.Column("copied_from", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_flow_revisions_line_id_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_revisions")),
        sa.UniqueConstraint("line_id", "number", name=op.f("uq_flow_revisions_line_id_number")),
    )  # fmt: skip
    op.create_table(
        "line_numbers",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_line_numbers_line_id_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_line_numbers")),
    )  # fmt: skip
    op.create_index("ix_line_numbers_line_id", "line_numbers", ["line_id"])
    op.create_table(
        "line_book_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_book_version")),
    )


def downgrade() -> None:
    op.drop_table("line_book_version")
    op.drop_index("ix_line_numbers_line_id", table_name="line_numbers")
    op.drop_table("line_numbers")
    op.drop_table("flow_revisions")
    op.drop_table("lines")
