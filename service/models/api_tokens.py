"""Tokens of the API for the clinic's IT (`/api/v1`): made by an administrator, shown once,
kept only as a hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class ApiRole(StrEnum):
    VIEWER = "viewer"
    """Reads lines, revisions, calls, texts and follow-ups (numbers masked)."""
    EDITOR = "editor"
    """Also adds revisions, publishes and rolls back."""


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token (a random 256-bit secret needs no slow hash)."""
    prefix: Mapped[str] = mapped_column(String(12))
    """The token's first characters, to tell tokens apart in a list."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("role IN ('viewer', 'editor')", name="role"),)


class ApiTokenLine(Base):
    """A line a token is limited to (none: every line)."""

    __tablename__ = "api_token_lines"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[int] = mapped_column(
        ForeignKey("lines.id", ondelete="CASCADE"), primary_key=True
    )
