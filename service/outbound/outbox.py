"""The outbox: texts and calls waiting to go out through the Twilio REST API.

Several workers (several `phoneline serve` processes on one Postgres) may claim at once: rows
are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL (on SQLite the transaction's BEGIN
IMMEDIATE serialises claimers), and a claim older than `stale_after` is taken over, so a
worker that died never strands a text. Services take a session and never commit: commit the
claim (end the session block) before sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, delete, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from service.db import upsert
from service.models import (
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    OutboxWorker,
    utcnow,
)
from service.optouts.store import (
    Key,
    OptOutChanged,
    opt_out_key,
    opted_out_of,
    stopped,
)
from service.outbound.limits import count_refusal, current, hold_caps, refusal
from service.phone import mask, to_e164
from service.spool.codec import Record, register
from service.spool.stores import AfterCommit, Store

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = timedelta(minutes=5)
DEFAULT_DEAD_AFTER = timedelta(seconds=15)
HEARTBEAT_EVERY = timedelta(seconds=3)


def beat(session: Session, worker_id: str, now: datetime | None = None) -> None:
    """Say that `worker_id` is alive (its claims stay its own)."""
    now = now or utcnow()
    insert = upsert(session, OutboxWorker).values(worker_id=worker_id[:64], heartbeat_at=now)
    session.execute(
        insert.on_conflict_do_update(index_elements=["worker_id"], set_={"heartbeat_at": now})
    )


def retire(session: Session, worker_id: str) -> None:
    """A worker that stops: its heartbeat goes (it holds no claims after a clean stop)."""
    session.execute(delete(OutboxWorker).where(OutboxWorker.worker_id == worker_id[:64]))


@register("outbox_queued")
@dataclass(frozen=True, slots=True)
class OutboxQueued:
    """A text or a call-back the line promised (press 8, CALL): becomes an outbox row."""

    kind: OutboxKind
    to: str
    body: str
    from_number: str | None
    dedupe_key: str | None
    at: datetime
    language: str | None = None
    line_id: int | None = None
    not_before: datetime | None = None
    """A call-back asked for while its contact was closed: not before it opens."""
    contact: str | None = None
    """The flow's contact a call-back connects to."""


@register("outbox_sent")
@dataclass(frozen=True, slots=True)
class OutboxSent:
    """Twilio took an outbox row (its SID), and the mark could not be stored at once."""

    outbox_id: int
    sid: str
    at: datetime


@register("call_back_result")
@dataclass(frozen=True, slots=True)
class CallBackReported:
    """What Twilio said of a call-back (its row's id is in the callback's URL): the call's
    final status, or the status of the dial to the person it connected the texter to. Each
    sets its own column, so they may arrive in any order, and more than once."""

    outbox_id: int
    at: datetime
    call_status: str | None = None
    dial_status: str | None = None


OutboxRecord = OutboxQueued | OutboxSent | CallBackReported
OUTBOX_RECORDS = (OutboxQueued, OutboxSent, CallBackReported)


def write_outbox_records(session: Session, records: Sequence[OutboxRecord]) -> None:
    """Write the records in order, in the session's transaction (each is safe to repeat: a
    queued row has its dedupe key, a sent mark its SID). A queued text was checked against
    the opt-outs when it was promised, those still in the spool too: only a change from then
    on suppresses it here (the database may still lack a START that another process's spool
    holds, newer than the STOP it has); the claim and the send check again."""
    for record in records:
        match record:
            case OutboxQueued():
                enqueue(
                    session,
                    record.kind,
                    record.to,
                    record.body,
                    from_number=record.from_number,
                    dedupe_key=record.dedupe_key,
                    now=record.at,
                    language=record.language,
                    line_id=record.line_id,
                    not_before=record.not_before,
                    contact=record.contact,
                    opt_outs_checked=True,
                )
            case OutboxSent():
                mark_sent(session, record.outbox_id, record.sid, at=record.at)
            case CallBackReported():
                reported = {
                    name: value
                    for name, value in (
                        ("call_status", record.call_status),
                        ("dial_status", record.dial_status),
                    )
                    if value
                }
                if reported:
                    session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.id == record.outbox_id,
                            OutboxMessage.kind == OutboxKind.CALL.value,
                        )
                        .values(**reported)
                    )


def _write(session: Session, records: Sequence[Record], now: datetime) -> AfterCommit | None:
    write_outbox_records(session, records)
    return None


OUTBOX_STORE = Store("outbox", OUTBOX_RECORDS, _write)


def enqueue(
    session: Session,
    kind: OutboxKind | str,
    to: str,
    body: str,
    *,
    from_number: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
    further_part: bool = False,
    language: str | None = None,
    line_id: int | None = None,
    contact: str | None = None,
    opt_outs_checked: bool = False,
) -> OutboxMessage:
    """Queue a text (body) or a call (TwiML in body) to `to`, written in `language`, for the
    line `line_id` (sent from `from_number`, that line's number).

    With a `dedupe_key`, queuing the same thing twice returns the first row. A text to a number
    that opted out is stored as `suppressed` and never sent (`opt_outs_checked`: the caller
    asked at `now`, the spool too; a change from then on counts); one the outbound policy refuses
    (service/outbound/limits.py: destination, caps) as `refused`, with the reason. A long
    text's `further_part` is the same text: the policy took it with its first part.
    """
    kind = OutboxKind(kind)
    number = to_e164(to) or to.strip()[:20]
    now = now or utcnow()
    suppressed = False
    if kind is OutboxKind.SMS:
        changes = opted_out_of(session, [number])[opt_out_key(number)]
        if opt_outs_checked:
            changes = [(who, out, at) for who, out, at in changes if at >= now]
        suppressed = stopped(changes, from_number)
    refused = None
    if not (suppressed or further_part):
        hold_caps(session)  # until this row is committed, no other count of the caps
        refused = refusal(session, kind, number, now, current())
    status, error = OutboxStatus.PENDING, None
    if suppressed:
        status, error = OutboxStatus.SUPPRESSED, "opted out"
    elif refused is not None:
        status, error = OutboxStatus.REFUSED, f"refused by the outbound policy: {refused}"
    insert = (
        upsert(session, OutboxMessage)
        .values(
            kind=kind.value,
            to_number=number,
            from_number=to_e164(from_number),
            body=body,
            status=status.value,
            last_error=error,
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
            dedupe_key=dedupe_key,
            language=language,
            line_id=line_id if line_id and line_id > 0 else None,
            contact=contact[:64] if contact else None,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.id)
    )
    new_id = session.scalar(insert)
    if new_id is not None and refused is not None:
        count_refusal(kind, refused)
        log.warning("outbound %s to %s refused: %s", kind.value, mask(number), refused)
    if new_id is None:
        existing = session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        ).one()
        return existing
    message = session.get(OutboxMessage, new_id)
    assert message is not None
    return message


def claim_due(
    session: Session,
    worker_id: str,
    limit: int = 10,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    *,
    now: datetime | None = None,
    dead_after: timedelta = DEFAULT_DEAD_AFTER,
    pending: Callable[[], Mapping[Key, OptOutChanged]] | None = None,
) -> list[OutboxMessage]:
    """Claim up to `limit` rows that are due for `worker_id`, or claimed more than
    `dead_after` ago by a worker that is gone (no heartbeat for `dead_after`), or claimed more
    than `stale_after` ago by anyone, or claimed by `worker_id` itself and left unfinished.

    A worker handles its whole batch before it claims again, so a row it still holds then is
    one it could not finish (the database refused the opt-out check or the split of a long
    text, or the answer to the claim's commit was lost): it takes it again at once instead of
    waiting `stale_after` while its heartbeat keeps everyone else off it.

    Claimed rows are `sending`, with attempts counted. Texts to numbers that opted out since
    they were queued are suppressed here instead of being handed out, unless an opt-out change
    in this host's spool (`pending()`, read only then) says otherwise (a START there, not yet
    written, is newer than the STOP the database has). A STOP only the spool has is caught
    right before the send.
    """
    now = now or utcnow()
    alive = exists().where(
        OutboxWorker.worker_id == OutboxMessage.claimed_by,
        OutboxWorker.heartbeat_at >= now - dead_after,
    )
    due = (
        select(OutboxMessage.id, OutboxMessage.to_number, OutboxMessage.body)
        .where(
            or_(
                and_(
                    OutboxMessage.status == OutboxStatus.PENDING.value,
                    OutboxMessage.next_attempt_at <= now,
                ),
                and_(
                    OutboxMessage.status == OutboxStatus.SENDING.value,
                    or_(
                        OutboxMessage.claimed_by == worker_id[:64],
                        OutboxMessage.claimed_at < now - stale_after,
                        # The claim's own age too: on PostgreSQL a row another worker claimed
                        # while this statement ran is re-checked as it is now, but `alive`
                        # still sees the statement's snapshot, where that worker's first
                        # heartbeat may not be yet. A fresh claim is never taken.
                        and_(OutboxMessage.claimed_at < now - dead_after, ~alive),
                    ),
                ),
            )
        )
        .where(~_same_text_in_flight())
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids: list[int] = []
    texts: set[tuple[str, str]] = set()
    for item, to_number, body in session.execute(due):
        if (to_number, body) not in texts:  # one of two identical texts at a time (see above)
            texts.add((to_number, body))
            ids.append(item)
    if not ids:
        return []
    sms = session.execute(
        select(OutboxMessage.id, OutboxMessage.to_number, OutboxMessage.from_number).where(
            OutboxMessage.id.in_(ids), OutboxMessage.kind == OutboxKind.SMS.value
        )
    ).all()
    numbers = [row.to_number for row in sms]
    key = {row.id: opt_out_key(row.to_number) for row in sms}
    stored = opted_out_of(session, numbers)
    stopped_rows = [row for row in sms if stopped(stored[key[row.id]], row.from_number)]
    if stopped_rows and pending is not None:  # read the spool only when it can matter
        spooled = opted_out_of(None, numbers, pending())
        stopped_rows = [
            row
            for row in stopped_rows
            if stopped(stored[key[row.id]] + spooled[key[row.id]], row.from_number)
        ]
    opted_out = {row.id for row in stopped_rows}
    if opted_out:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(opted_out))
            .values(status=OutboxStatus.SUPPRESSED.value, last_error="opted out")
        )
    claim = [item for item in ids if item not in opted_out]
    if not claim:
        return []
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(claim))
        .values(
            status=OutboxStatus.SENDING.value,
            claimed_at=now,
            claimed_by=worker_id[:64],
            attempts=OutboxMessage.attempts + 1,
        )
    )
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(claim))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .execution_options(populate_existing=True)
        )
    )


def _same_text_in_flight() -> ColumnElement[bool]:
    """Another row with the same body to the same number is being sent: this one waits, so
    that asking Twilio "did you take this text?" can only ever find one row's text."""
    other = aliased(OutboxMessage)
    return exists().where(
        other.id != OutboxMessage.id,
        other.status == OutboxStatus.SENDING.value,
        other.to_number == OutboxMessage.to_number,
        other.body == OutboxMessage.body,
    )


def mark_sent(
    session: Session, message_id: int, twilio_sid: str | None, *, at: datetime | None = None
) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.SENT.value,
            twilio_sid=twilio_sid,
            sent_at=at or utcnow(),
            last_error=None,
        )
    )


def mark_retry(
    session: Session, message_id: int, error: str, next_at: datetime, *, attempt: bool = True
) -> None:
    """Sending failed for now; try again at `next_at`. Not `attempt`: it was not tried (a
    call-back whose contact is closed waits until it opens), so the claim's count of an
    attempt is taken back."""
    not_counted = {} if attempt else {"attempts": case(
        (OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0
    )}  # fmt: skip
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=next_at,
            claimed_at=None,
            claimed_by=None,
            last_error=error[:500],
            **not_counted,
        )
    )


def mark_failed(session: Session, message_id: int, error: str) -> None:
    """Sending failed for good (a permanent Twilio error, or too many attempts)."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status=OutboxStatus.FAILED.value, last_error=error[:500])
    )
