"""Follow-ups: the staff's worklist of numbers that tried to reach a person and did not.

One open item per phone number at most (`open_phone` is the number while the item is open and
NULL once it is closed; a unique constraint, NULLs being distinct on both databases, keeps it
so across processes). Each thing that put a number on the list (a missed transfer, a call-back
asked for, a text, a failed call-back) is a source, unique by (kind, ref_id), so the sweep can
run again and again, in several processes, without counting anything twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow, written_now
from service.models.calls import Call, CallEvent
from service.models.texts import Message


class FollowUpReason(StrEnum):
    MISSED_TRANSFER = "missed-transfer"
    """A transfer nobody answered (busy, no-answer, failed)."""
    CALL_BACK_ASKED = "call-back-asked"
    """The caller asked for a call back from the voice menu."""
    TEXT_ASKED_FOR_PERSON = "text-asked-person"
    """A text asked for a person."""
    TEXT_NOT_UNDERSTOOD = "text-not-understood"
    """A second text in a day the line did not understand."""
    CALL_BACK_FAILED = "call-back-failed"
    """A call-back promised by CALL could not be placed, or nobody answered it (the texter, or
    the person it put them through to)."""
    CRISIS = "crisis"
    """A text or a caller's words about suicide or self-harm (urgent)."""
    EMERGENCY = "emergency"
    """A text or a caller's words that sounded like a medical emergency (urgent)."""
    ASKED_AFTER_HOURS = "asked-after-hours"
    """The caller asked for a call back while the contact was closed (staff call in hours)."""
    LEFT_VOICEMAIL = "left-voicemail"
    """The caller left a message (staff listen to it on the item, then call back)."""


URGENT_REASONS = frozenset({FollowUpReason.CRISIS, FollowUpReason.EMERGENCY})
"""Reasons that make an item urgent: it sorts first, whatever the hour, and only staff close it."""


class FollowUpOutcome(StrEnum):
    REACHED = "reached"
    LEFT_VOICEMAIL = "left-voicemail"
    WRONG_NUMBER = "wrong-number"
    NO_LONGER_NEEDED = "no-longer-needed"
    REACHED_A_PERSON = "reached-a-person"
    """Closed by the sweep: the number later reached a person on its own."""
    COULD_NOT_REACH = "could-not-reach"
    """Closed after the clinic's number of call attempts (FOLLOW_UP_MAX_ATTEMPTS) reached
    nobody."""


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class FollowUp(Base):
    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    open_phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    """The phone number while the item is open; NULL once closed (one open item a number)."""
    reason: Mapped[str] = mapped_column(String(24))
    """Why the item was opened (the first source's reason)."""
    language: Mapped[str | None] = mapped_column(String(8))
    line_id: Mapped[int | None]
    """The line of the call or text that opened it."""
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime]
    urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A crisis or an emergency is among its sources: first in the worklist, closed by staff
    only (never by a later call that reached a person)."""
    staff_attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    """Calls staff made that reached voicemail or nobody (each logged on the item)."""
    next_try_at: Mapped[datetime | None]
    """When to try again after such a call (until then the item waits below the due ones)."""
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(24))
    stored_at: Mapped[datetime | None] = mapped_column(default=written_now, onupdate=written_now)
    """When the row was last written, by the server's clock (NULL: before 2026-12-04)."""

    __table_args__ = (
        CheckConstraint(_in("reason", FollowUpReason), name="reason"),
        CheckConstraint("outcome IS NULL OR " + _in("outcome", FollowUpOutcome), name="outcome"),
        CheckConstraint("(open_phone IS NULL) = (closed_at IS NOT NULL)", name="open_until_closed"),
        Index("ix_follow_ups_phone_opened_at", "phone", "opened_at"),
        # On PostgreSQL the headline numbers count a range of these from the index alone.
        Index("ix_follow_ups_opened_at", "opened_at", postgresql_include=["language"]),
        Index(
            "ix_follow_ups_closed_at",
            "closed_at",
            postgresql_include=["language", "first_attempt_at"],
        ),
        # The headline "opened and still open": the few open items of a range.
        Index(
            "ix_follow_ups_open_opened_at",
            "opened_at",
            sqlite_where=text("open_phone IS NOT NULL"),
            postgresql_where=text("open_phone IS NOT NULL"),
            postgresql_include=["language"],
        ),
        Index("ix_follow_ups_stored_at", "stored_at"),
        Index("ix_follow_ups_line_id", "line_id"),  # the worklist of one line (?line=)
    )


class FollowUpSourceKind(StrEnum):
    CALL = "call"
    """ref_id: calls.id (a transfer not answered)."""
    CALL_EVENT = "call_event"
    """ref_id: call_events.id (a call-back request)."""
    MESSAGE = "message"
    """ref_id: messages.id."""
    OUTBOX = "outbox"
    """ref_id: outbox.id (a CALL call-back that failed)."""
    VOICEMAIL = "voicemail"
    """ref_id: voicemails.id (a message the caller left)."""


class FollowUpSource(Base):
    """One thing that put a number on the worklist (or kept it there)."""

    __tablename__ = "follow_up_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int]
    call_id: Mapped[int | None]
    """The call the source belongs to (a missed transfer and its call-back request are one
    attempt)."""
    reason: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("kind", "ref_id"),
        Index("ix_follow_up_sources_follow_up_id_at", "follow_up_id", "at"),
    )


class FollowUpNote(Base):
    __tablename__ = "follow_up_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_follow_up_notes_follow_up_id_at", "follow_up_id", "at"),)


# A number's whole history (its calls and texts), and whether it later reached a person, are
# read by phone number: these indexes belong to calls and messages, declared here because the
# worklist is what needs them.
Index("ix_calls_caller_started_at", Call.caller, Call.started_at)
Index("ix_messages_phone_created_at", Message.phone, Message.created_at)
# The sweep's few rows of interest among many, every few seconds: partial indexes.
_CALLBACK_REQUEST = text("kind IN ('callback_request', 'crisis')")
Index(
    "ix_call_events_callback_request_at",
    CallEvent.at,
    sqlite_where=_CALLBACK_REQUEST,
    postgresql_where=_CALLBACK_REQUEST,
)
_PERSON_WANTED = text("intent IN ('asked_for_person', 'not_understood', 'crisis', 'emergency')")
Index(
    "ix_messages_person_wanted_created_at",
    Message.created_at,
    sqlite_where=_PERSON_WANTED,
    postgresql_where=_PERSON_WANTED,
)
