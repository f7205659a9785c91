"""The follow-up sweep: puts numbers that did not reach a person on the worklist, and takes
them off once they do. Run by the spool thread every few seconds (`Spool(periodic=[...])`).

It reads what happened in the last `LOOKBACK` (index-friendly ranges on started_at /
created_at) and files each new trigger as a source of the number's open item:

- a call whose transfer was not answered (outcome not-answered: busy, no-answer, failed);
- a call-back asked for from the voice menu (a `callback_request` call event);
- a message a caller left (a `voicemails` row);
- words of a crisis or an emergency, texted (the message's intent `crisis`, `emergency`) or
  said on a call (a `crisis` call event): urgent;
- a text that asked for a person, or a second text within a day that was not understood;
- a `CALL` call-back that could not be placed (its outbox row failed), that the texter did not
  answer (busy, no-answer, failed, canceled), or whose dial to the person it called was not
  answered (Twilio's reports on the row: `service/calls/call_backs.py`).

A trigger followed by a call of the same number that reached a person (or a call-back whose
dial was answered) is not filed; an open item whose number reached a person at or after its
last attempt is closed (`reached-a-person`). Not so an urgent one: a crisis is filed whatever
came after it, at any hour, its item sorts first and only staff close it.

Idempotent and safe with several processes: a source is unique by (kind, ref_id) and a number
has at most one open item (unique `open_phone`); both are written with INSERT ... ON CONFLICT DO
NOTHING, so a sweep that runs twice, or in two processes at once, files each trigger once.
The sweep takes a session and never commits (the spool's periodic transaction does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from service.db import upsert
from service.models import (
    URGENT_REASONS,
    Call,
    CallEvent,
    CallEventKind,
    CallOutcome,
    CallStatus,
    Conversation,
    Direction,
    FollowUp,
    FollowUpOutcome,
    FollowUpReason,
    FollowUpSource,
    FollowUpSourceKind,
    Message,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    UTCDateTime,
    Voicemail,
)
from service.models.calls import AFTER_HOURS

LOOKBACK = timedelta(days=7)
"""How far back the sweep looks for what it has not filed yet."""
NOT_UNDERSTOOD_WITHIN = timedelta(hours=24)
"""A text not understood is a follow-up when another one of the number's came within this."""
SYSTEM = "system"
CALL_NOT_ANSWERED = (
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.CANCELED,
)
"""A call-back's final CallStatus when the texter did not pick up."""
DIAL_ANSWERED = ("completed", "answered")
"""A call-back's DialCallStatus when the person it put the texter through to picked up."""


@dataclass(frozen=True)
class Trigger:
    """Something that puts `phone` on the worklist."""

    phone: str
    at: datetime
    """When the attempt was made (a call's start, a text's arrival, a call-back's queueing)."""
    kind: FollowUpSourceKind
    ref_id: int
    reason: FollowUpReason
    language: str | None
    call_id: int | None = None
    line_id: int | None = None
    """The line of the call, text or call-back (the item keeps its first one's)."""

    @property
    def urgent(self) -> bool:
        return self.reason in URGENT_REASONS


TEXT_INTENTS = {
    "asked_for_person": FollowUpReason.TEXT_ASKED_FOR_PERSON,
    "crisis": FollowUpReason.CRISIS,
    "emergency": FollowUpReason.EMERGENCY,
}
"""Intents of a text that file it at once (a text not understood needs a second one)."""
SAID_CRISIS = {"self-harm": FollowUpReason.CRISIS, "emergency": FollowUpReason.EMERGENCY}
"""A `crisis` call event's detail, and the reason it files."""


@dataclass(frozen=True)
class SweepReport:
    filed: int
    opened: int
    closed: int


def _not_filed(kind: FollowUpSourceKind, ref_id: Any) -> ColumnElement[bool]:
    return ~exists().where(FollowUpSource.kind == kind.value, FollowUpSource.ref_id == ref_id)


def _missed_transfers(session: Session, since: datetime) -> Iterator[Trigger]:
    query = select(Call.id, Call.caller, Call.started_at, Call.language, Call.line_id).where(
        Call.outcome == CallOutcome.NOT_ANSWERED.value,
        Call.started_at >= since,
        Call.caller.is_not(None),
        _not_filed(FollowUpSourceKind.CALL, Call.id),
    )
    for call_id, caller, started_at, language, line_id in session.execute(query):
        yield Trigger(
            str(caller),
            started_at,
            FollowUpSourceKind.CALL,
            call_id,
            FollowUpReason.MISSED_TRANSFER,
            language,
            call_id,
            line_id,
        )


def _call_events(session: Session, since: datetime) -> Iterator[Trigger]:
    """Call-backs asked for from the voice menu, and words of a crisis said on a call (filed
    when they were said, not when the call started)."""
    kinds = [CallEventKind.CALLBACK_REQUEST.value, CallEventKind.CRISIS.value]
    query = (
        select(
            CallEvent.id,
            CallEvent.kind,
            CallEvent.detail,
            CallEvent.at,
            Call.id,
            Call.caller,
            Call.started_at,
            Call.language,
            Call.line_id,
        )
        .join(Call, Call.id == CallEvent.call_id)
        .where(
            CallEvent.at >= since,
            CallEvent.kind.in_(kinds),
            Call.caller.is_not(None),
            _not_filed(FollowUpSourceKind.CALL_EVENT, CallEvent.id),
        )
    )
    for row in session.execute(query):
        event_id, kind, detail, said_at, call_id, caller, started_at, language, line_id = row
        if kind == CallEventKind.CRISIS.value:
            reason = SAID_CRISIS.get(detail or "", FollowUpReason.EMERGENCY)
            at = said_at
        elif (detail or "").startswith(AFTER_HOURS):
            reason, at = FollowUpReason.ASKED_AFTER_HOURS, started_at
        else:
            reason, at = FollowUpReason.CALL_BACK_ASKED, started_at
        yield Trigger(
            str(caller),
            at,
            FollowUpSourceKind.CALL_EVENT,
            event_id,
            reason,
            language,
            call_id,
            line_id,
        )


def _voicemails(session: Session, since: datetime) -> Iterator[Trigger]:
    """Messages callers left (whether or not their audio is copied yet, or Twilio made none:
    the caller expects a call back either way)."""
    query = (
        select(
            Voicemail.id,
            Voicemail.phone,
            Voicemail.left_at,
            Voicemail.language,
            Voicemail.line_id,
            Call.id,
        )
        .outerjoin(Call, Call.call_sid == Voicemail.call_sid)
        .where(
            Voicemail.left_at >= since,
            Voicemail.phone.is_not(None),
            _not_filed(FollowUpSourceKind.VOICEMAIL, Voicemail.id),
        )
    )
    for voicemail_id, phone, left_at, language, line_id, call_id in session.execute(query):
        yield Trigger(
            str(phone),
            left_at,
            FollowUpSourceKind.VOICEMAIL,
            voicemail_id,
            FollowUpReason.LEFT_VOICEMAIL,
            language,
            call_id,
            line_id,
        )


def _texts(session: Session, since: datetime) -> Iterator[Trigger]:
    query = (
        select(
            Message.id,
            Message.phone,
            Message.created_at,
            Message.intent,
            Conversation.language,
            Message.line_id,
        )
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.created_at >= since - NOT_UNDERSTOOD_WITHIN,
            Message.direction == Direction.IN.value,
            Message.phone.is_not(None),
            Message.intent.in_([*TEXT_INTENTS, "not_understood"]),
            _not_filed(FollowUpSourceKind.MESSAGE, Message.id),
        )
        .order_by(Message.created_at, Message.id)
    )
    # Not understood once may be a slip; twice in a day, the texter needs a person. The earlier
    # one may have been filed already (and so is not in this query): any earlier one counts.
    earlier = aliased(Message)
    last_not_understood: dict[str, datetime] = {}
    for message_id, number, created_at, intent, language, line_id in session.execute(query):
        phone = str(number)
        if intent in TEXT_INTENTS:
            if created_at >= since:
                yield Trigger(
                    phone,
                    created_at,
                    FollowUpSourceKind.MESSAGE,
                    message_id,
                    TEXT_INTENTS[intent],
                    language,
                    line_id=line_id,
                )
            continue
        previous = last_not_understood.get(phone)
        if previous is None or created_at - previous > NOT_UNDERSTOOD_WITHIN:
            previous = session.scalar(
                select(func.max(earlier.created_at)).where(
                    earlier.phone == phone,
                    earlier.direction == Direction.IN.value,
                    earlier.intent == "not_understood",
                    earlier.created_at >= created_at - NOT_UNDERSTOOD_WITHIN,
                    earlier.created_at <= created_at,
                    earlier.id != message_id,
                )
            )
        last_not_understood[phone] = created_at
        if previous is not None and created_at >= since:
            yield Trigger(
                phone,
                created_at,
                FollowUpSourceKind.MESSAGE,
                message_id,
                FollowUpReason.TEXT_NOT_UNDERSTOOD,
                language,
                line_id=line_id,
            )


def _failed_call_backs(session: Session, since: datetime) -> Iterator[Trigger]:
    language = (
        select(Conversation.language)
        .where(Conversation.phone == OutboxMessage.to_number)
        .order_by(Conversation.last_activity_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    not_answered = or_(
        OutboxMessage.status == OutboxStatus.FAILED.value,
        and_(
            OutboxMessage.status == OutboxStatus.SENT.value,
            or_(
                OutboxMessage.call_status.in_(CALL_NOT_ANSWERED),
                and_(
                    OutboxMessage.call_status == "completed",
                    OutboxMessage.dial_status.is_not(None),
                    OutboxMessage.dial_status.not_in(DIAL_ANSWERED),
                ),
            ),
        ),
    )
    query = select(
        OutboxMessage.id,
        OutboxMessage.to_number,
        OutboxMessage.created_at,
        language,
        OutboxMessage.line_id,
    ).where(
        OutboxMessage.created_at >= since,
        OutboxMessage.kind == OutboxKind.CALL.value,
        not_answered,
        _not_filed(FollowUpSourceKind.OUTBOX, OutboxMessage.id),
    )
    for outbox_id, phone, created_at, lang, line_id in session.execute(query):
        yield Trigger(
            phone,
            created_at,
            FollowUpSourceKind.OUTBOX,
            outbox_id,
            FollowUpReason.CALL_BACK_FAILED,
            lang,
            line_id=line_id,
        )


def find_triggers(session: Session, since: datetime) -> list[Trigger]:
    """Every trigger since `since` not filed yet, oldest first."""
    triggers = [
        *_missed_transfers(session, since),
        *_call_events(session, since),
        *_voicemails(session, since),
        *_texts(session, since),
        *_failed_call_backs(session, since),
    ]
    return sorted(triggers, key=lambda t: (t.at, t.kind.value, t.ref_id))


def reached_a_person_since(session: Session, phone: str, since: datetime) -> bool:
    return bool(
        session.scalar(
            select(or_(*_reached_a_person(literal(phone), literal(since, UTCDateTime()))))
        )
    )


def _reached_a_person(phone: Any, since: Any) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`phone` reached a person at or after `since`: a call of theirs that did, or a call-back
    whose dial the person it called answered."""
    return (
        exists().where(
            Call.caller == phone,
            Call.started_at >= since,
            Call.outcome == CallOutcome.REACHED.value,
        ),
        exists().where(
            OutboxMessage.to_number == phone,
            OutboxMessage.kind == OutboxKind.CALL.value,
            OutboxMessage.created_at >= since,
            OutboxMessage.dial_status.in_(DIAL_ANSWERED),
        ),
    )


def file_trigger(session: Session, trigger: Trigger, now: datetime) -> bool:
    """Add `trigger` to its number's open item (opening one if there is none); False when it
    was filed already (by another sweep)."""
    at = literal(trigger.at, UTCDateTime())
    opened = session.scalar(
        upsert(session, FollowUp)
        .values(
            phone=trigger.phone,
            open_phone=trigger.phone,
            reason=trigger.reason.value,
            language=trigger.language,
            line_id=trigger.line_id,
            opened_at=now,
            first_attempt_at=trigger.at,
            last_attempt_at=trigger.at,
        )
        .on_conflict_do_nothing(index_elements=["open_phone"])
        .returning(FollowUp.id)
    )
    item_id = session.scalar(select(FollowUp.id).where(FollowUp.open_phone == trigger.phone))
    if item_id is None:  # closed in between by another transaction: the next sweep files it
        return False
    filed = session.scalar(
        upsert(session, FollowUpSource)
        .values(
            follow_up_id=item_id,
            kind=trigger.kind.value,
            ref_id=trigger.ref_id,
            call_id=trigger.call_id,
            reason=trigger.reason.value,
            at=trigger.at,
        )
        .on_conflict_do_nothing(index_elements=["kind", "ref_id"])
        .returning(FollowUpSource.id)
    )
    if filed is None:
        if opened is not None:  # another sweep filed it first; the item opened for it is not needed
            session.execute(delete(FollowUp).where(FollowUp.id == item_id))
        return False
    urgent = {"urgent": True} if trigger.urgent else {}
    session.execute(
        update(FollowUp)
        .where(FollowUp.id == item_id)
        .values(
            **urgent,
            first_attempt_at=case(
                (FollowUp.first_attempt_at > at, at), else_=FollowUp.first_attempt_at
            ),
            last_attempt_at=case(
                (FollowUp.last_attempt_at < at, at), else_=FollowUp.last_attempt_at
            ),
            language=case(
                (FollowUp.language.is_(None), literal(trigger.language)),
                else_=FollowUp.language,
            ),
            next_try_at=None,  # the patient tried again: due now, whatever staff planned
        )
    )
    return True


def close_reached(session: Session, now: datetime) -> int:
    """Close every open item whose number reached a person at or after its last attempt (not
    an urgent one: staff close those)."""
    reached = or_(*_reached_a_person(FollowUp.phone, FollowUp.last_attempt_at))
    closed = session.scalars(
        update(FollowUp)
        .where(FollowUp.open_phone.is_not(None), FollowUp.urgent.is_(False), reached)
        .values(
            open_phone=None,
            closed_at=now,
            closed_by=SYSTEM,
            outcome=FollowUpOutcome.REACHED_A_PERSON.value,
        )
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(closed)


def sweep_follow_ups(
    session: Session, now: datetime, lookback: timedelta = LOOKBACK
) -> SweepReport:
    """File what is new since `now - lookback`, then close the items of numbers that reached a
    person."""
    filed = opened = 0
    for trigger in find_triggers(session, now - lookback):
        if not trigger.urgent and reached_a_person_since(session, trigger.phone, trigger.at):
            continue
        was_open = session.scalar(select(FollowUp.id).where(FollowUp.open_phone == trigger.phone))
        if file_trigger(session, trigger, now):
            filed += 1
            opened += was_open is None
    return SweepReport(filed, opened, close_reached(session, now))


def run_sweep(session: Session, now: datetime) -> None:
    """The spool's periodic form of `sweep_follow_ups`."""
    sweep_follow_ups(session, now)
