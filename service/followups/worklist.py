"""What staff do with the worklist: list items, read one with its number's history, claim,
note, close, and count what is open. Services take a session and never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, literal, select
from sqlalchemy.orm import Session

from service.db import one_of
from service.models import (
    Call,
    Conversation,
    FollowUp,
    FollowUpNote,
    FollowUpOutcome,
    FollowUpSource,
    FollowUpSourceKind,
    Message,
    OutboxKind,
    OutboxMessage,
    UTCDateTime,
    Voicemail,
)

LIST_LIMIT = 200
HISTORY_LIMIT = 100
NOTE_MAX = 2000

PAGE_SIZE = 10
"""Items a page of the worklist shows: a phone's first screen holds the most urgent."""
CLOSE_OUTCOMES = {
    FollowUpOutcome.REACHED.value: "Reached",
    FollowUpOutcome.WRONG_NUMBER.value: "Wrong number",
    FollowUpOutcome.NO_LONGER_NEEDED.value: "No longer needed",
}
"""What staff may close an item with (the sweep closes with reached-a-person; a call that
reached voicemail or nobody is an attempt, not an end: `log_attempt`)."""
OUTCOME_LABELS = CLOSE_OUTCOMES | {
    FollowUpOutcome.REACHED_A_PERSON.value: "Reached a person on a later call",
    FollowUpOutcome.LEFT_VOICEMAIL.value: "Left voicemail",
    FollowUpOutcome.COULD_NOT_REACH.value: "Could not reach (every call attempt)",
}
ATTEMPT_RESULTS = {
    "voicemail": "Left a voicemail",
    "no-answer": "No answer",
    "busy": "Busy",
}
"""How a staff call that reached nobody ended (an attempt: the item stays open)."""
WHO = {"": "Everyone's", "unclaimed": "Nobody has claimed", "mine": "Claimed by me"}
SORTS = {"newest": "Newest first", "waiting": "Waiting longest first"}
"""The orders of the open items, after the urgent ones: the first is the worklist's own (last
night's misses on the first screen; each item's wait says which are over the target)."""
REASON_LABELS = {
    "missed-transfer": "Transfer not answered",
    "call-back-asked": "Asked for a call back",
    "asked-after-hours": "Asked for a call back after hours",
    "left-voicemail": "Left a voicemail",
    "text-asked-person": "Asked for a person by text",
    "text-not-understood": "Texts not understood twice",
    "call-back-failed": "Call-back failed or not answered",
    "crisis": "Wrote or said words about suicide or self-harm",
    "emergency": "Wrote or said words of a medical emergency",
}


class WorklistError(ValueError):
    """The action cannot be done on this item (the message says why)."""


@dataclass(frozen=True)
class Filters:
    """What a navigator narrows the open items to, and their order (urgent ones first always;
    then due before those waiting for their next try)."""

    reason: str = ""
    language: str = ""
    """A language code, "unknown", or "" for any."""
    who: str = ""
    """"unclaimed", "mine", or "" for anyone's."""
    since: datetime | None = None
    """Only items a patient tried again since then (new since the last visit)."""
    sort: str = "newest"
    page: int = 1


@dataclass(frozen=True)
class Page:
    rows: list[ItemRow]
    total: int
    page: int
    pages: int


@dataclass
class ItemRow:
    item: FollowUp
    reasons: list[str] = field(default_factory=list)
    attempts: int = 0
    call_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    voicemail_ids: list[int] = field(default_factory=list)


def _attempt_key(source: FollowUpSource) -> tuple[str, int]:
    # A missed transfer and the call-back asked for in the same call are one attempt.
    return ("call", source.call_id) if source.call_id is not None else (source.kind, source.ref_id)


def _rows(session: Session, items: Sequence[FollowUp]) -> list[ItemRow]:
    rows = {item.id: ItemRow(item) for item in items}
    if not rows:
        return []
    attempts: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for source in session.scalars(
        select(FollowUpSource)
        .where(FollowUpSource.follow_up_id.in_(list(rows)))
        .order_by(FollowUpSource.at, FollowUpSource.id)
    ):
        row = rows[source.follow_up_id]
        attempts[source.follow_up_id].add(_attempt_key(source))
        label = REASON_LABELS.get(source.reason, source.reason)
        if label not in row.reasons:
            row.reasons.append(label)
        if source.call_id is not None and source.call_id not in row.call_ids:
            row.call_ids.append(source.call_id)
        if source.kind == FollowUpSourceKind.MESSAGE.value:
            row.message_ids.append(source.ref_id)
        if source.kind == FollowUpSourceKind.VOICEMAIL.value:
            row.voicemail_ids.append(source.ref_id)
    for item_id, keys in attempts.items():
        rows[item_id].attempts = len(keys)
    return list(rows.values())


def list_items(
    session: Session, *, closed: bool = False, where: Sequence[ColumnElement[bool]] = ()
) -> list[ItemRow]:
    """Open items, urgent ones (a crisis, an emergency) first, then longest waiting first; or
    the latest closed ones, newest first; those that meet `where` too (a line's)."""
    if closed:
        query = (
            select(FollowUp)
            .where(FollowUp.closed_at.is_not(None))
            .order_by(FollowUp.closed_at.desc(), FollowUp.id.desc())
        )
    else:
        query = (
            select(FollowUp)
            .where(FollowUp.open_phone.is_not(None))
            .order_by(FollowUp.urgent.desc(), FollowUp.first_attempt_at, FollowUp.id)
        )
    return _rows(session, session.scalars(query.where(*where).limit(LIST_LIMIT)).all())


def open_items(
    session: Session,
    filters: Filters,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    username: str | None = None,
    now: datetime,
    page_size: int = PAGE_SIZE,
) -> Page:
    """A page of the open items that meet `filters` (and `where`: a line's)."""
    conditions = [FollowUp.open_phone.is_not(None), *where, *_narrowed(filters, username)]
    total = session.scalar(select(func.count()).select_from(FollowUp).where(*conditions)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, filters.page), pages)
    query = (
        select(FollowUp)
        .where(*conditions)
        .order_by(*_open_order(filters.sort, now))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page(_rows(session, session.scalars(query).all()), total, page, pages)


def _narrowed(filters: Filters, username: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.reason:
        conditions.append(
            exists().where(
                FollowUpSource.follow_up_id == FollowUp.id,
                FollowUpSource.reason == filters.reason,
            )
        )
    if filters.language == "unknown":
        conditions.append(FollowUp.language.is_(None))
    elif filters.language:
        conditions.append(FollowUp.language == filters.language)
    if filters.who == "unclaimed":
        conditions.append(FollowUp.claimed_by.is_(None))
    elif filters.who == "mine":
        conditions.append(FollowUp.claimed_by == (username or ""))
    if filters.since is not None:
        conditions.append(FollowUp.last_attempt_at >= filters.since)
    return conditions


def _open_order(sort: str, now: datetime) -> list[Any]:
    """Urgent first, whatever their age; then those due (no next try, or its time has come)
    before those waiting for it; then longest waiting (or newest) first."""
    waiting = case((FollowUp.next_try_at > literal(now, UTCDateTime()), 1), else_=0)
    age = FollowUp.last_attempt_at.desc() if sort == "newest" else FollowUp.first_attempt_at
    return [FollowUp.urgent.desc(), waiting, age, FollowUp.id]


def next_item(
    session: Session,
    after: int,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    username: str | None = None,
    now: datetime,
) -> int | None:
    """The item to work after `after` (closed, or an attempt logged): the first open one in
    the worklist's order that nobody else has claimed."""
    others = FollowUp.claimed_by.is_not(None) & (FollowUp.claimed_by != (username or ""))
    return session.scalar(
        select(FollowUp.id)
        .where(FollowUp.open_phone.is_not(None), FollowUp.id != after, ~others, *where)
        .order_by(*_open_order("newest", now))
        .limit(1)
    )


def open_count(session: Session) -> int:
    return session.scalar(select(func.count()).where(FollowUp.open_phone.is_not(None))) or 0


def get_item(session: Session, item_id: int) -> ItemRow | None:
    item = session.get(FollowUp, item_id)
    return _rows(session, [item])[0] if item is not None else None


@dataclass(frozen=True)
class History:
    """Everything the line knows of one number, newest first."""

    calls: Sequence[Call]
    messages: Sequence[Message]
    call_backs: Sequence[OutboxMessage]
    texts_sent: Sequence[OutboxMessage] = ()
    """Texts the line queued to the number (its numbers asked for with 8, replies held)."""


def history(session: Session, phone: str, line_ids: frozenset[int] | None = None) -> History:
    """The number's calls, texts and call-backs (of these lines; None: of every line)."""
    calls = session.scalars(
        select(Call)
        .where(Call.caller == phone, *one_of(Call.line_id, line_ids))
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    messages = session.scalars(
        select(Message)
        .where(Message.phone == phone, Message.body != "", *one_of(Message.line_id, line_ids))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    call_backs = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.to_number == phone,
            OutboxMessage.kind == OutboxKind.CALL.value,
            *one_of(OutboxMessage.line_id, line_ids),
        )
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    texts_sent = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.to_number == phone,
            OutboxMessage.kind == OutboxKind.SMS.value,
            *one_of(OutboxMessage.line_id, line_ids),
        )
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return History(calls, messages, call_backs, texts_sent)


def text_menus(session: Session, message_ids: Sequence[int]) -> dict[int, str | None]:
    """Where in the text menu each of these messages' conversations is (message id -> node)."""
    if not message_ids:
        return {}
    query = (
        select(Message.id, Conversation.node)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id.in_(list(message_ids)))
    )
    return {message_id: node for message_id, node in session.execute(query)}


def voicemails(session: Session, voicemail_ids: Sequence[int]) -> Sequence[Voicemail]:
    """These messages, oldest first."""
    if not voicemail_ids:
        return []
    return session.scalars(
        select(Voicemail)
        .where(Voicemail.id.in_(list(voicemail_ids)))
        .order_by(Voicemail.left_at, Voicemail.id)
    ).all()


def notes(session: Session, item_id: int) -> Sequence[FollowUpNote]:
    return session.scalars(
        select(FollowUpNote)
        .where(FollowUpNote.follow_up_id == item_id)
        .order_by(FollowUpNote.at, FollowUpNote.id)
    ).all()


def _open_item(session: Session, item_id: int) -> FollowUp:
    item = session.get(FollowUp, item_id, with_for_update=True)
    if item is None:
        raise WorklistError("There is no follow-up with that id.")
    if item.closed_at is not None:
        raise WorklistError("This follow-up is closed already.")
    return item


def claim(session: Session, item_id: int, username: str, now: datetime) -> FollowUp:
    """Take the item on (from whoever had it: the page says who did)."""
    item = _open_item(session, item_id)
    item.claimed_by = username
    item.claimed_at = now
    return item


def add_note(session: Session, item_id: int, username: str, text: str, now: datetime) -> None:
    text = text.strip()
    if not text:
        raise WorklistError("Write the note before adding it.")
    if len(text) > NOTE_MAX:
        raise WorklistError(f"A note is at most {NOTE_MAX} characters.")
    if session.get(FollowUp, item_id) is None:
        raise WorklistError("There is no follow-up with that id.")
    session.add(FollowUpNote(follow_up_id=item_id, at=now, author=username, text=text))


def close(session: Session, item_id: int, username: str, outcome: str, now: datetime) -> FollowUp:
    if outcome not in CLOSE_OUTCOMES:
        raise WorklistError("Choose how the follow-up ended: " + ", ".join(CLOSE_OUTCOMES.values()))
    return _closed(_open_item(session, item_id), username, outcome, now)


def _closed(item: FollowUp, username: str, outcome: str, now: datetime) -> FollowUp:
    item.open_phone = None
    item.closed_at = now
    item.closed_by = username
    item.outcome = outcome
    return item


def log_attempt(
    session: Session,
    item_id: int,
    username: str,
    result: str,
    next_try_at: datetime | None,
    now: datetime,
    *,
    max_attempts: int,
) -> FollowUp:
    """A staff call that reached voicemail or nobody: counted, noted, and the item waits for
    its next try (claimed by whoever called); the clinic's last attempt closes it as "could
    not reach"."""
    if result not in ATTEMPT_RESULTS:
        raise WorklistError("Choose how the call went: " + ", ".join(ATTEMPT_RESULTS.values()))
    item = _open_item(session, item_id)
    item.staff_attempts = (item.staff_attempts or 0) + 1
    last = item.staff_attempts >= max_attempts
    if not last and (next_try_at is None or next_try_at <= now):
        raise WorklistError("Choose when to try again.")
    said = f"Call attempt {item.staff_attempts} of {max_attempts}: {ATTEMPT_RESULTS[result]}."
    session.add(FollowUpNote(follow_up_id=item.id, at=now, author=username, text=said))
    if last:
        item.next_try_at = None
        return _closed(item, username, FollowUpOutcome.COULD_NOT_REACH.value, now)
    item.next_try_at = next_try_at
    item.claimed_by, item.claimed_at = username, now
    return item
