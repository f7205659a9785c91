"""Staff accounts and the audit log of what they did."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class StaffRole(StrEnum):
    VIEWER = "viewer"
    NAVIGATOR = "navigator"
    """Works the follow-up list (claims, notes, reveals an item's number, closes) without
    being an administrator."""
    EDITOR = "editor"
    """Edits and publishes the lines' words in the browser (and rolls them back); not numbers."""
    ADMIN = "admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.VIEWER.value)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    sessions_valid_after: Mapped[datetime | None]
    """Signing out sets this: session cookies issued before it no longer sign anyone in, copies
    included (the cookie itself is stateless)."""
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    worklist_seen_at: Mapped[datetime | None]
    """When the account last opened the worklist."""
    worklist_seen_before: Mapped[datetime | None]
    """When it opened it before the current sitting (a visit 30 minutes or more after the last
    one begins a new sitting): the worklist's "new since my last visit"."""
    """The password is a temporary one an administrator was shown: until the account chooses its
    own, the choose-password page is the only staff page it reaches."""

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'navigator', 'editor', 'admin')", name="role"),
    )


class StaffLine(Base):
    """A line an account is limited to. An account with none sees every line; one with some sees
    only their calls, texts, follow-ups and texts sent, on every page, export, search and
    reveal (administrators are never limited)."""

    __tablename__ = "staff_lines"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[int] = mapped_column(
        ForeignKey("lines.id", ondelete="CASCADE"), primary_key=True
    )


class AuditEntry(Base):
    """A staff action (sign-in, reveal, export, purge, ...); actor is a username or 'system'."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(500))
    client_address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_at", "at"),)
