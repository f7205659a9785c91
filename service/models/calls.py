"""Voice calls and the events of each call."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base


class CallOutcome(StrEnum):
    """How a call ended, as staff need to know it (see `service.calls.facts.outcome_of`)."""

    IN_PROGRESS = "in-progress"
    REACHED = "reached"
    """A transfer was answered: the caller reached a person."""
    NOT_ANSWERED = "not-answered"
    """A transfer was tried and nobody answered (dial_outcome: busy, no-answer, failed...)."""
    LISTENED = "listened"
    """No transfer; the caller went past the first menu and heard what the line says."""
    HUNG_UP = "hung-up"
    """No transfer; the caller hung up in the first menu (last_node says which)."""
    FAILED = "failed"
    """Twilio could not connect the call at all."""
    UNKNOWN = "unknown"
    """No final status ever came, and Twilio could not tell (reconciliation)."""


class CallStatus(StrEnum):
    """Twilio's CallStatus, and the line's own `unknown` (reconciliation found no final status:
    Twilio does not know the call, or cannot be asked). The one list of them."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


class DialOutcome(StrEnum):
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


AFTER_HOURS = "closed:"
"""Before a call-back request's contact: it was asked for while the contact was closed."""


class CallEventKind(StrEnum):
    MENU = "menu"
    KEY = "key"
    SPEECH = "speech"
    DIAL = "dial"
    DIAL_RESULT = "dial_result"
    TEXT_QUEUED = "text_queued"
    LANGUAGE = "language"
    CALLBACK_REQUEST = "callback_request"
    """The caller asked to be called back (detail: the contact that did not answer, or that
    was closed, then with `closed:` first: AFTER_HOURS)."""
    VOICEMAIL = "voicemail"
    """The caller left a message (detail: the contact it is for, then its RecordingSid)."""
    SCREEN = "screen"
    """Whoever answered a screened transfer took it or not (detail: "taken CONTACT",
    "not-taken CONTACT")."""
    CRISIS = "crisis"
    """The caller's words sounded like a crisis (detail: "self-harm" or "emergency"): staff
    get an urgent follow-up."""
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
    line_id: Mapped[int | None]
    """The line the call reached (`lines.id`; NULL: before lines, or no line was loaded)."""
    revision_id: Mapped[int | None]
    """The flow revision the caller heard (`flow_revisions.id`)."""
    path: Mapped[str | None] = mapped_column(String(255))
    last_seen_at: Mapped[datetime | None]
    """The latest moment any webhook or callback of the call was made."""
    updated_at: Mapped[datetime | None]
    """When the row last changed (a batch of its facts was committed)."""
    settled_at: Mapped[datetime | None]
    """When the call was counted by outcome in /metrics (once it had been quiet a while)."""
    checked_at: Mapped[datetime | None]
    """When reconciliation last asked Twilio about a call that has no final status."""

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
        # filtered (both databases scan these indexes backwards for ORDER BY ... DESC). On
        # PostgreSQL the first also holds what the overview counts calls by, so that a range
        # of days is counted from the index alone, without reading the rows.
        Index(
            "ix_calls_started_at_id",
            "started_at",
            "id",
            postgresql_include=[
                "language",
                "outcome",
                "caller",
                "last_node",
                "transferred_contact",
                "dial_outcome",
            ],
        ),
        Index("ix_calls_outcome_started_at_id", "outcome", "started_at", "id"),
        Index("ix_calls_language_started_at_id", "language", "started_at", "id"),
        Index(
            "ix_calls_transferred_contact_started_at_id", "transferred_contact", "started_at", "id"
        ),
        Index("ix_calls_line_id_started_at_id", "line_id", "started_at", "id"),  # ?line=
        # The calls changed since a moment: the days of the overview's rollup to count again.
        Index("ix_calls_updated_at", "updated_at"),
        # The few calls not counted yet: what the settler and reconciliation look through.
        Index(
            "ix_calls_unsettled_updated_at",
            "updated_at",
            sqlite_where=text("settled_at IS NULL"),
            postgresql_where=text("settled_at IS NULL"),
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

    __table_args__ = (
        Index("ix_call_events_call_id_at", "call_id", "at"),
        # The overview's "options chosen": the keys pressed in the last 30 days, a few among
        # the menus, dials and their results.
        Index(
            "ix_call_events_key_at",
            "at",
            postgresql_include=["node", "detail"],
            sqlite_where=text("kind = 'key'"),
            postgresql_where=text("kind = 'key'"),
        ),
    )
