"""Outbound texts and calls waiting for the worker."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class OutboxKind(StrEnum):
    SMS = "sms"
    CALL = "call"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    """Not sent: the number opted out of texts."""
    REFUSED = "refused"
    """Not sent: the outbound policy refused it (destination or caps; last_error says which)."""


class OutboxMessage(Base):
    """A text (body) or a call (TwiML in body) to send through the Twilio REST API."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    to_number: Mapped[str] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    twilio_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    language: Mapped[str | None] = mapped_column(String(8))
    """The language the text (or the call-back's words) is in: the caller's or texter's."""
    line_id: Mapped[int | None]
    """The line it goes out for (from that line's number)."""
    contact: Mapped[str | None] = mapped_column(String(64))
    """The flow's contact a call-back connects the texter to: it is placed only while that
    contact is open (a closure added after it was queued makes it wait again)."""
    call_status: Mapped[str | None] = mapped_column(String(16))
    """A call-back's final CallStatus, from Twilio's status callback: completed (the texter
    answered), busy, no-answer, failed, canceled. None for texts, and until Twilio says."""
    dial_status: Mapped[str | None] = mapped_column(String(16))
    """A call-back's DialCallStatus: whether the person it connected the texter to answered
    (completed) or not (busy, no-answer, failed, canceled)."""

    __table_args__ = (
        CheckConstraint("kind IN ('sms', 'call')", name="kind"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'suppressed', 'refused')",
            name="status",
        ),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_line_id_id", "line_id", "id"),  # the staff list of one line (?line=)
        # What the outbound policy counts (service/outbound/limits.py).
        Index("ix_outbox_to_number_created_at", "to_number", "created_at"),
        Index("ix_outbox_kind_created_at", "kind", "created_at"),
        # A sent text's outbox row, by its MessageSid (the messages CSV's language).
        Index("ix_outbox_twilio_sid", "twilio_sid"),
    )


class OutboxWorker(Base):
    """A worker that sends from the outbox, alive as long as it beats: its claims are taken
    over once its heartbeat is older than WORKER_DEAD_SECONDS (it was killed), not after the
    long stale-claim timeout."""

    __tablename__ = "outbox_workers"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
