"""Voice calls and the events of each call."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base


class CallOutcome(StrEnum):
    IN_PROGRESS = "in-progress"
    TRANSFERRED = "transferred"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    FAILED = "failed"


class DialOutcome(StrEnum):
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


class CallEventKind(StrEnum):
    MENU = "menu"
    KEY = "key"
    SPEECH = "speech"
    DIAL = "dial"
    DIAL_RESULT = "dial_result"
    TEXT_QUEUED = "text_queued"
    LANGUAGE = "language"
    HANGUP = "hangup"
    ERROR = "error"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Call(Base):
    """One phone call to the line, keyed by Twilio's CallSid."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str | None] = mapped_column(String(20))
    called: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16), default=CallOutcome.IN_PROGRESS.value)
    transferred_contact: Mapped[str | None] = mapped_column(String(64))
    transferred_number: Mapped[str | None] = mapped_column(String(20))
    dial_outcome: Mapped[str | None] = mapped_column(String(16))
    last_node: Mapped[str | None] = mapped_column(String(64))
    flow_hash: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(255))

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call",
        order_by="CallEvent.at, CallEvent.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint(_in("outcome", CallOutcome), name="outcome"),
        CheckConstraint(
            "dial_outcome IS NULL OR " + _in("dial_outcome", DialOutcome), name="dial_outcome"
        ),
        # The staff list: newest first, paged by the keyset (started_at, id), optionally
        # filtered (both databases scan these indexes backwards for ORDER BY ... DESC).
        Index("ix_calls_started_at_id", "started_at", "id"),
        Index("ix_calls_outcome_started_at_id", "outcome", "started_at", "id"),
        Index("ix_calls_language_started_at_id", "language", "started_at", "id"),
        Index(
            "ix_calls_transferred_contact_started_at_id", "transferred_contact", "started_at", "id"
        ),
    )


class CallEvent(Base):
    """Something that happened in a call: a menu reached, a key pressed, a dial and its result."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    node: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))

    call: Mapped[Call] = relationship(back_populates="events")

    __table_args__ = (Index("ix_call_events_call_id_at", "call_id", "at"),)
