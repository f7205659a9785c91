"""Who opted out of texts. Services take a session and never commit.

The database is where every process looks; an opt-out the database has not taken yet (it was
down) waits in the spool's `opt-outs` stream, which every process on the machine reads before
sending (`service.spool.Spool.pending_opt_outs`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.phone import to_e164


def opt_out_key(phone: str) -> str:
    """How opt-outs are keyed: the number in E.164 (or as written, when it is not a number)."""
    return to_e164(phone) or phone[:20]


def is_opted_out(session: Session, phone: str) -> bool:
    """True when `phone` texted a stop keyword and has not texted START since."""
    opted_out = session.scalar(select(OptOut.opted_out).where(OptOut.phone == opt_out_key(phone)))
    return bool(opted_out)


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
