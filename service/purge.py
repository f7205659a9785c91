"""`phoneline purge`: delete call and text records past retention, keeping daily counts.

Each batch is one transaction that folds the rows into `daily_aggregates` and deletes them, so
an interrupted purge never loses or double-counts anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import partial

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import Session

from service.audit import SYSTEM_ACTOR, record_audit
from service.config import get_settings, zone_named
from service.db import Database, upsert
from service.models import (
    Call,
    CallEvent,
    Channel,
    Conversation,
    DailyAggregate,
    Direction,
    Message,
    Metric,
    OutboxMessage,
    OutboxStatus,
    Voicemail,
    VoicemailAudio,
    utcnow,
)
from service.models.rollups import forget_days

DEFAULT_BATCH_SIZE = 1000

_AGE = re.compile(r"\s*([0-9]{1,9})\s*([dh])\s*", re.IGNORECASE | re.ASCII)
LONGEST_AGE = timedelta(days=36500)  # a century: any longer and the cutoff leaves the calendar

AggregateKey = tuple[date, Channel, Metric, str]


def parse_age(text: str) -> timedelta:
    """ "90d" -> 90 days, "12h" -> 12 hours (ASCII digits, at most LONGEST_AGE); ValueError,
    saying why, for anything else."""
    match = _AGE.fullmatch(text)
    if not match:
        raise ValueError(
            f"expected a number of days or hours such as 90d or 12h, not {text[:20]!r}"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    age = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if age > LONGEST_AGE:
        raise ValueError(f"{text.strip()} is longer than any record can be: at most 36500d")
    return age


@dataclass
class PurgeReport:
    cutoff: datetime
    calls: int = 0
    call_events: int = 0
    messages: int = 0
    conversations: int = 0
    outbox: int = 0
    voicemails: int = 0
    batches: int = 0

    def summary(self) -> str:
        return (
            f"purged records before {self.cutoff:%Y-%m-%d %H:%M} UTC: "
            f"{self.calls} calls ({self.call_events} events), {self.messages} messages, "
            f"{self.conversations} conversations, {self.outbox} outbox rows, "
            f"{self.voicemails} voicemails with their audio "
            f"in {self.batches} batches; daily counts kept"
        )


def _add_counts(session: Session, counts: Counter[AggregateKey]) -> None:
    for (day, channel, metric, key), count in sorted(counts.items()):
        insert = upsert(session, DailyAggregate).values(
            day=day, channel=channel.value, metric=metric.value, key=key, count=count
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["day", "channel", "metric", "key"],
                set_={"count": DailyAggregate.count + insert.excluded.count},
            )
        )


def _purge_calls(
    session: Session, cutoff: datetime, batch_size: int, zone: tzinfo
) -> tuple[int, int, int]:
    """(calls, their events, their voicemails) deleted."""
    rows: Sequence[tuple[int, datetime, str, str | None, str | None, str]] = session.execute(
        select(
            Call.id,
            Call.started_at,
            Call.outcome,
            Call.transferred_contact,
            Call.dial_outcome,
            Call.call_sid,
        )
        .where(Call.started_at < cutoff)
        .order_by(Call.started_at, Call.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0, 0, 0
    counts: Counter[AggregateKey] = Counter()
    for _, started_at, outcome, contact, dial_outcome, _ in rows:
        day = started_at.astimezone(zone).date()
        counts[(day, Channel.VOICE, Metric.CALLS, "")] += 1
        counts[(day, Channel.VOICE, Metric.OUTCOME, outcome)] += 1
        if contact:
            counts[(day, Channel.VOICE, Metric.TRANSFERS, contact)] += 1
        if dial_outcome:
            counts[(day, Channel.VOICE, Metric.DIAL_OUTCOME, dial_outcome)] += 1
    _add_counts(session, counts)
    ids = [row[0] for row in rows]
    forget_days(session, rows[0][1], rows[-1][1])
    events = session.scalar(select(func.count()).where(CallEvent.call_id.in_(ids))) or 0
    # Events go with their call (ON DELETE CASCADE); messages the callers left, and their
    # audio, too.
    voicemails = _delete_voicemails(session, Voicemail.call_sid.in_([row[5] for row in rows]))
    session.execute(delete(Call).where(Call.id.in_(ids)))
    return len(ids), events, voicemails


def _delete_voicemails(session: Session, which: ColumnElement[bool]) -> int:
    """Delete these messages, and the audio no message refers to any more."""
    deleted = session.execute(
        delete(Voicemail).where(which).returning(Voicemail.audio_sha256)
    ).all()
    digests = {digest for (digest,) in deleted if digest}
    if digests:
        kept = select(Voicemail.id).where(Voicemail.audio_sha256 == VoicemailAudio.sha256)
        session.execute(
            delete(VoicemailAudio).where(VoicemailAudio.sha256.in_(digests), ~kept.exists())
        )
    return len(deleted)


def _purge_voicemails(session: Session, cutoff: datetime, batch_size: int) -> int:
    """Messages left before the cutoff whose call is gone already (or was never recorded)."""
    ids = session.scalars(
        select(Voicemail.id).where(Voicemail.left_at < cutoff).limit(batch_size)
    ).all()
    return _delete_voicemails(session, Voicemail.id.in_(ids)) if ids else 0


def _purge_messages(session: Session, cutoff: datetime, batch_size: int, zone: tzinfo) -> int:
    rows = session.execute(
        select(Message.id, Message.created_at, Message.direction)
        .where(Message.created_at < cutoff)
        .order_by(Message.created_at, Message.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0
    counts: Counter[AggregateKey] = Counter()
    for _, created_at, direction in rows:
        metric = Metric.MESSAGES_IN if direction == Direction.IN else Metric.MESSAGES_OUT
        counts[(created_at.astimezone(zone).date(), Channel.SMS, metric, "")] += 1
    _add_counts(session, counts)
    forget_days(session, rows[0][1], rows[-1][1])
    session.execute(delete(Message).where(Message.id.in_([row[0] for row in rows])))
    return len(rows)


def _purge_conversations(session: Session, cutoff: datetime, batch_size: int) -> int:
    ids = list(
        session.scalars(
            select(Conversation.id)
            .where(
                Conversation.last_activity_at < cutoff,
                ~exists().where(Message.conversation_id == Conversation.id),
            )
            .limit(batch_size)
        )
    )
    if ids:
        session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
    return len(ids)


def _purge_outbox(session: Session, cutoff: datetime, batch_size: int) -> int:
    finished = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.SUPPRESSED.value]
    ids = list(
        session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.created_at < cutoff, OutboxMessage.status.in_(finished))
            .limit(batch_size)
        )
    )
    if ids:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return len(ids)


def purge(
    database: Database,
    older_than: timedelta,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
    zone: tzinfo | None = None,
) -> PurgeReport:
    """Delete calls (with their events and voicemails, audio and all), messages, idle
    conversations and finished outbox rows
    older than `older_than`, `batch_size` rows per transaction, counting calls and texts into
    daily_aggregates first, by the clinic's day (`zone`, default TIMEZONE: the charts draw
    the clinic's days); then write an audit entry."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if zone is None:
        zone = zone_named(get_settings().timezone)
    report = PurgeReport(cutoff=(now or utcnow()) - older_than)
    while True:
        with database.session() as session:
            calls, events, voicemails = _purge_calls(session, report.cutoff, batch_size, zone)
        if not calls:
            break
        report.calls += calls
        report.call_events += events
        report.voicemails += voicemails
        report.batches += 1
    purge_messages = partial(_purge_messages, zone=zone)
    for purge_step, field in (
        (purge_messages, "messages"),
        (_purge_conversations, "conversations"),
        (_purge_outbox, "outbox"),
        (_purge_voicemails, "voicemails"),
    ):
        while True:
            with database.session() as session:
                count = purge_step(session, report.cutoff, batch_size)
            if not count:
                break
            setattr(report, field, getattr(report, field) + count)
            report.batches += 1
    with database.session() as session:
        record_audit(session, actor, "purge", report.summary())
    return report
