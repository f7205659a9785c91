"""Who opted out of texts, and how a STOP or START is kept. Services take a session and never
commit.

A STOP (or START) is acknowledged as soon as it is on local disk: it is spooled in the spool's
durable stream (`OptOutChanged`) and written to the database at once when it answers. Until the
database has it, every process on the host finds it among the spool's pending records, so the
state of a number is the newest of the two (`opted_out_now`): a change is ordered by when it was
acknowledged (`at`), whichever reaches the database first. Across hosts that do not share the
spool's disk, the spool's fence (`service.spool.fence`) holds every reply and send until the
opt-outs spooled elsewhere are in the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.phone import to_e164
from service.spool.codec import Record, register
from service.spool.stores import AfterCommit, Store


@register("opt_out")
@dataclass(frozen=True, slots=True)
class OptOutChanged:
    """STOP (opted_out True) or START from `phone`, acknowledged at `at`."""

    phone: str
    opted_out: bool
    keyword: str | None
    at: datetime


def opt_out_key(phone: str) -> str:
    """How opt-outs are keyed: the number in E.164 (or as written, when it is not a number)."""
    return to_e164(phone) or phone[:20]


def is_opted_out(session: Session, phone: str) -> bool:
    """What the database says: True when `phone` texted a stop keyword and not START since."""
    opted_out = session.scalar(select(OptOut.opted_out).where(OptOut.phone == opt_out_key(phone)))
    return bool(opted_out)


def pending_changes(records: Iterable[Record]) -> dict[str, OptOutChanged]:
    """The newest opt-out change of each number among `records` (the spool's pending ones)."""
    latest: dict[str, OptOutChanged] = {}
    for record in records:
        if isinstance(record, OptOutChanged):
            key = opt_out_key(record.phone)
            if key not in latest or latest[key].at <= record.at:
                latest[key] = record
    return latest


def opted_out_now(session: Session | None, phone: str, pending: dict[str, OptOutChanged]) -> bool:
    """Whether `phone` is opted out now: the newer of the change pending in the spool (the
    database may not have it yet) and the database's row. Without a session (the database is
    away) the pending change alone, else not opted out."""
    key = opt_out_key(phone)
    waiting = pending.get(key)
    if session is None:
        return bool(waiting and waiting.opted_out)
    row = session.execute(
        select(OptOut.opted_out, OptOut.changed_at).where(OptOut.phone == key)
    ).one_or_none()
    if waiting is not None and (row is None or row.changed_at <= waiting.at):
        return waiting.opted_out
    return bool(row and row.opted_out)


def set_opt_out(
    session: Session,
    phone: str,
    opted_out: bool,
    keyword: str | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Record a STOP (opted_out=True) or START (False) made at `at`. A change older than the one
    already stored for the number changes nothing (so a change may be written again, or late).
    An opt-out also suppresses the texts still waiting in the outbox for that number."""
    at = at or utcnow()
    phone = opt_out_key(phone)
    keyword = keyword[:32] if keyword else None
    insert = upsert(session, OptOut).values(
        phone=phone, opted_out=opted_out, keyword=keyword, changed_at=at
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["phone"],
            set_={
                "opted_out": opted_out,
                "keyword": keyword,
                "changed_at": at,
            },
            where=OptOut.__table__.c.changed_at <= at,
        )
    )
    if opted_out:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.to_number == phone,
                OutboxMessage.kind == OutboxKind.SMS.value,
                OutboxMessage.status == OutboxStatus.PENDING.value,
            )
            .values(status=OutboxStatus.SUPPRESSED.value, last_error="opted out")
        )


def _write(session: Session, records: Sequence[Record], now: datetime) -> AfterCommit | None:
    for record in records:
        set_opt_out(session, record.phone, record.opted_out, record.keyword, at=record.at)
    return None


OPT_OUT_STORE = Store("opt-outs", (OptOutChanged,), _write)
