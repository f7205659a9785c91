"""What the staff pages read: filtered, keyset-paged call and conversation lists and a call's
timeline (the overview's numbers: `service.staff.headlines`). Services take a session and
never commit."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.db import one_of
from service.models import (
    Call,
    CallEvent,
    CallOutcome,
    Conversation,
    Direction,
    Message,
    OptOut,
    OutboxMessage,
    UTCDateTime,
)
from service.models.opt_outs import EVERY_NUMBER
from service.optouts import store
from service.phone import mask

PAGE_SIZE = 50
OUTCOMES = tuple(outcome.value for outcome in CallOutcome)


class FilterError(ValueError):
    """A filter or page link the staff pages cannot read (the message says which)."""


# What staff links carry, read strictly: ASCII digits only (str.isdigit and int() also take
# "¹" or "٣"), ids that fit the id columns, dates in years a record can have. The ids are
# INTEGER: 32 bits on PostgreSQL (a larger number is an error there, not "no such row"), 64 on
# SQLite, whose rowids count up from 1 and so stay below 2**31 too.
MAX_ID = 2**31 - 1
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
_ASCII_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_CALL_SID = re.compile(r"[A-Za-z0-9]{1,64}", re.ASCII)
_ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_CURSOR = re.compile(  # Cursor.encode's "2026-11-24T15:00:00.123456+00:00~42"
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?\+00:00)"
    r"~([0-9]{1,19})",
    re.ASCII,
)


def parse_id(raw: str) -> int | None:
    """A row id as the pages link to it (ASCII digits, 1 to MAX_ID); None for anything else."""
    if not _ASCII_ID.fullmatch(raw):
        return None
    ident = int(raw)
    return ident if 1 <= ident <= MAX_ID else None


def parse_day(raw: str) -> date | None:
    """A day written YYYY-MM-DD (ASCII digits) between EARLIEST_DAY and LATEST_DAY."""
    if not _ASCII_DATE.fullmatch(raw):
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if EARLIEST_DAY <= day <= LATEST_DAY else None


def _date(params: Mapping[str, str], name: str, label: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    day = parse_day(raw)
    if day is None:
        raise FilterError(
            f"{label} must be a date like 2026-11-24, from {EARLIEST_DAY} to {LATEST_DAY}, "
            f"not {raw[:20]!r}"
        )
    return day


def _choice(params: Mapping[str, str], name: str, allowed: Sequence[str], label: str) -> str | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if raw not in allowed:
        raise FilterError(f"{label} must be one of {', '.join(allowed)}")
    return raw


def day_start(day: date, zone: tzinfo = UTC) -> datetime:
    """When `day` begins in `zone` (the clinic's TIMEZONE on staff pages)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _date_range(params: Mapping[str, str]) -> tuple[date | None, date | None]:
    """The `from` and `to` filters: days in the clinic's zone, both ends included."""
    date_from, date_to = _date(params, "from", "From"), _date(params, "to", "To")
    if date_from and date_to and date_from > date_to:
        raise FilterError("From must not be after To")
    return date_from, date_to


def _within(
    column: InstrumentedAttribute[datetime],
    date_from: date | None,
    date_to: date | None,
    zone: tzinfo = UTC,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if date_from:
        where.append(column >= day_start(date_from, zone))
    if date_to:
        where.append(column < day_start(date_to + timedelta(days=1), zone))
    return where


@dataclass(frozen=True)
class CallFilters:
    """Filters of the call list and its CSV; dates are days in `zone` (the clinic's
    TIMEZONE), both ends included."""

    date_from: date | None = None
    date_to: date | None = None
    outcome: str | None = None
    language: str | None = None
    contact: str | None = None
    zone: tzinfo = UTC
    line: str = ""
    """The chosen line's slug ("" every line: `service.staff.line_filter`)."""
    line_ids: frozenset[int] | None = None
    """The lines whose records show (None: every record)."""

    @classmethod
    def parse(
        cls,
        params: Mapping[str, str],
        languages: Sequence[str],
        contacts: Sequence[str],
        zone: tzinfo = UTC,
    ) -> CallFilters:
        date_from, date_to = _date_range(params)
        return cls(
            date_from=date_from,
            date_to=date_to,
            outcome=_choice(params, "outcome", OUTCOMES, "Outcome"),
            language=_choice(params, "language", languages, "Language"),
            contact=_choice(params, "contact", contacts, "Transferred to"),
            zone=zone,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        where = _within(Call.started_at, self.date_from, self.date_to, self.zone)
        if self.outcome:
            where.append(Call.outcome == self.outcome)
        if self.language:
            where.append(Call.language == self.language)
        if self.contact:
            where.append(Call.transferred_contact == self.contact)
        where.extend(one_of(Call.line_id, self.line_ids))
        return where

    def as_params(self) -> dict[str, str]:
        values = {
            "line": self.line,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "outcome": self.outcome or "",
            "language": self.language or "",
            "contact": self.contact or "",
        }
        return {name: value for name, value in values.items() if value}

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.as_params().items()) or "none"


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the (started_at, id) of its last row; the next page starts after."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.at.astimezone(UTC).isoformat()}~{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        """Read what `encode` wrote (and nothing else)."""
        if not raw:
            return None
        invalid = FilterError("That page link is not valid; start again from the first page.")
        match = _CURSOR.fullmatch(raw)
        if match is None:
            raise invalid
        try:
            at = datetime.fromisoformat(match.group(1))
        except ValueError:
            raise invalid from None
        ident = parse_id(match.group(2))
        if ident is None or not EARLIEST_DAY <= at.date() <= LATEST_DAY:
            raise invalid
        return cls(at, ident)


def _before(column: Any, id_column: Any, cursor: Cursor) -> ColumnElement[bool]:
    # A row comparison, which both databases answer from the (…, started_at, id) indexes.
    return tuple_(column, id_column) < tuple_(literal(cursor.at, UTCDateTime()), literal(cursor.id))


def calls_query(filters: CallFilters) -> Select[Call]:
    return (
        select(Call).where(*filters.conditions()).order_by(Call.started_at.desc(), Call.id.desc())
    )


def list_calls(
    session: Session, filters: CallFilters, after: Cursor | None, limit: int = PAGE_SIZE
) -> tuple[Sequence[Call], Cursor | None]:
    """One page of calls, newest first, and the cursor of the next page (None on the last)."""
    query = calls_query(filters)
    if after is not None:
        query = query.where(_before(Call.started_at, Call.id, after))
    rows = session.scalars(query.limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, Cursor(page[-1].started_at, page[-1].id)


def find_call(session: Session, ident: str) -> Call | None:
    """A call by its id (ASCII digits) or its CallSid (ASCII letters and digits)."""
    if ident.isdigit():  # any script's digits: an id, read strictly (٣ is not call 3)
        call_id = parse_id(ident)
        return session.get(Call, call_id) if call_id is not None else None
    if not _CALL_SID.fullmatch(ident):
        return None
    return session.scalars(select(Call).where(Call.call_sid == ident)).one_or_none()


def call_events(session: Session, call_id: int) -> Sequence[CallEvent]:
    return session.scalars(
        select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.at, CallEvent.id)
    ).all()


# -- texts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    id: int
    phone: str
    line: str
    language: str | None
    started_at: datetime
    last_activity_at: datetime
    opted_out: bool
    messages: int
    line_id: int | None = None


def list_conversations(
    session: Session,
    filters: MessageFilters,
    after: Cursor | None,
    limit: int = PAGE_SIZE,
) -> tuple[list[ConversationRow], Cursor | None]:
    """Conversations, most recently active first; the date filters apply to that activity."""
    count = (
        select(func.count(Message.id))
        .where(Message.conversation_id == Conversation.id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    query = select(Conversation, func.coalesce(_stopped_here(), False), count).order_by(
        Conversation.last_activity_at.desc(), Conversation.id.desc()
    )
    if filters.date_from:
        start = day_start(filters.date_from, filters.zone)
        query = query.where(Conversation.last_activity_at >= start)
    if filters.date_to:
        end = day_start(filters.date_to + timedelta(days=1), filters.zone)
        query = query.where(Conversation.last_activity_at < end)
    query = query.where(*one_of(Conversation.line_id, filters.line_ids))
    if after is not None:
        query = query.where(_before(Conversation.last_activity_at, Conversation.id, after))
    rows = [
        ConversationRow(
            conversation.id,
            conversation.phone,
            conversation.line,
            conversation.language,
            conversation.started_at,
            conversation.last_activity_at,
            bool(opted_out),
            int(messages or 0),
            conversation.line_id,
        )
        for conversation, opted_out, messages in session.execute(query.limit(limit + 1)).all()
    ]
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, Cursor(page[-1].last_activity_at, page[-1].id)


def conversation_messages(session: Session, conversation: Conversation) -> Sequence[Message]:
    return session.scalars(
        select(Message)
        .where(
            (Message.conversation_id == conversation.id)
            | and_(
                Message.conversation_id.is_(None),
                Message.phone == conversation.phone,
                Message.line == conversation.line,
            )
        )
        .order_by(Message.created_at, Message.id)
    ).all()


def is_opted_out(session: Session, conversation: Conversation) -> bool:
    """Whether the conversation's texter stopped the texts of its number (or all: STOPALL)."""
    return store.is_opted_out(session, conversation.phone, conversation.line)


def _stopped_here() -> Any:
    """Per conversation (correlated): whether its number's texts are stopped (the newest of the
    texter's STOP or START to that number and STOPALL), NULL when neither was ever texted."""
    return (
        select(OptOut.opted_out)
        .where(
            OptOut.phone == Conversation.phone,
            or_(OptOut.number == Conversation.line, OptOut.number == EVERY_NUMBER),
        )
        .order_by(OptOut.changed_at.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class MessageFilters:
    date_from: date | None = None
    date_to: date | None = None
    direction: str | None = None
    zone: tzinfo = UTC
    line: str = ""
    """The chosen line's slug ("" every line: `service.staff.line_filter`)."""
    line_ids: frozenset[int] | None = None
    """The lines whose records show (None: every record)."""

    @classmethod
    def parse(cls, params: Mapping[str, str], zone: tzinfo = UTC) -> MessageFilters:
        date_from, date_to = _date_range(params)
        return cls(
            date_from=date_from,
            date_to=date_to,
            direction=_choice(params, "direction", ("in", "out"), "Direction"),
            zone=zone,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        where = _within(Message.created_at, self.date_from, self.date_to, self.zone)
        if self.direction:
            where.append(Message.direction == self.direction)
        where.extend(one_of(Message.line_id, self.line_ids))
        return where

    def as_params(self) -> dict[str, str]:
        values = {
            "line": self.line,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "direction": self.direction or "",
        }
        return {name: value for name, value in values.items() if value}

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.as_params().items()) or "none"


# Runs of 7 or more digits (with the usual separators) in what a caller said or a texter
# wrote: they may be a phone number, so staff see them masked.
_NUMBER_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def redact_numbers(text: str | None) -> str:
    if not text:
        return ""

    def _mask(match: re.Match[str]) -> str:
        digits = sum(c.isdigit() for c in match.group(0))
        return mask(match.group(0)) if digits >= 7 else match.group(0)

    return _NUMBER_LIKE.sub(_mask, text)


CSV_CALL_COLUMNS = (
    Call.call_sid,
    Call.started_at,
    Call.duration_seconds,
    Call.caller,
    Call.language,
    Call.outcome,
    Call.path,
    Call.transferred_contact,
    Call.transferred_number,
    Call.dial_outcome,
)


def stream_calls(session: Session, filters: CallFilters, batch: int = 1000) -> Iterator[Any]:
    """Every call the filters select, newest first, as rows of CSV_CALL_COLUMNS (attributes
    named like Call's), fetched `batch` at a time through a server-side cursor."""
    query = (
        select(*CSV_CALL_COLUMNS)
        .where(*filters.conditions())
        .order_by(Call.started_at.desc(), Call.id.desc())
        .execution_options(yield_per=batch)
    )
    yield from session.execute(query)


def stream_messages(
    session: Session, filters: MessageFilters, batch: int = 500
) -> Iterator[tuple[Message, str | None]]:
    """Every text the filters select, newest first, with its language: for a text the outbox
    sent, the language it was written in (its outbox row's, found by its MessageSid; press 8
    and call-backs often have no conversation); otherwise its conversation's."""
    sent_in = (
        select(OutboxMessage.language)
        .where(
            Message.direction == Direction.OUT.value,
            OutboxMessage.twilio_sid == Message.message_sid,
        )
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(Message, func.coalesce(sent_in, Conversation.language))
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(*filters.conditions(), Message.body != "")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .execution_options(yield_per=batch)
    )
    yield from session.execute(query)


def is_inbound(message: Message) -> bool:
    return message.direction == Direction.IN.value
