"""Who opted out of texts, and how a STOP or START is kept. Services take a session and never
commit.

Carriers' rules: a STOP texted to one of the service's numbers stops the texts from that number;
STOPALL stops every number's; a START texted to a number starts that number's again. What
decides for a phone and a number is the newest of that number's change and STOPALL's.

A STOP (or START) is acknowledged as soon as it is on local disk: it is spooled in the spool's
durable stream (`OptOutChanged`) and written to the database at once when it answers. Until the
database has it, every process on the host finds it among the spool's pending records, so the
state of a number is the newest of the two (`opted_out_now`): a change is ordered by when it was
acknowledged (`at`), whichever reaches the database first. Across hosts that do not share the
spool's disk, the spool's fence (`service.spool.fence`) holds every reply and send until the
opt-outs spooled elsewhere are in the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.models.opt_outs import EVERY_NUMBER
from service.phone import to_e164
from service.spool.codec import Record, register
from service.spool.stores import AfterCommit, Store


@register("opt_out")
@dataclass(frozen=True, slots=True)
class OptOutChanged:
    """STOP (opted_out True) or START from `phone` to the service's `number`, acknowledged at
    `at`. `number` "*" is every number (STOPALL; and a record spooled before opt-outs were kept
    per number, which has none)."""

    phone: str
    opted_out: bool
    keyword: str | None
    at: datetime
    number: str = EVERY_NUMBER


Key = tuple[str, str]
"""(phone, number): what one opt-out row is about."""
Change = tuple[str, bool, datetime]
"""(number, opted_out, at): one STOP or START of a phone."""


def opt_out_key(phone: str) -> str:
    """How opt-outs are keyed: the number in E.164 (or as written, when it is not a number)."""
    return to_e164(phone) or phone[:20]


def number_key(number: str | None) -> str | None:
    """The service's number a text goes from (or a STOP went to) as opt-outs key it; None when
    it is not known (a text sent through a Messaging Service)."""
    if not number or number == EVERY_NUMBER:
        return None
    return opt_out_key(number)


def stops_every_number(word: str | None) -> bool:
    """Whether an opt-out keyword stops every number of the service (STOPALL, "stop all …")."""
    folded = (word or "").partition(":")[2] or (word or "")
    return folded.upper().startswith("STOPALL")


def _opted_out(changes: Iterable[Change], number: str | None) -> bool:
    """Whether the changes of one phone (number, opted_out, at) stop texts from `number`: the
    newest of that number's and STOPALL's decides. Without a number (not known), texts stop
    when any number's newest change, or STOPALL's, is a STOP."""
    newest: dict[str, tuple[datetime, bool]] = {}
    for changed, opted_out, at in changes:
        if changed not in newest or newest[changed][0] <= at:
            newest[changed] = (at, opted_out)
    every = newest.get(EVERY_NUMBER)
    if number is None:
        return any(
            opted_out if every is None or every[0] <= at else every[1]
            for at, opted_out in newest.values()
        )
    mine = newest.get(number)
    chosen = [c for c in (mine, every) if c is not None]
    return max(chosen, key=lambda c: c[0])[1] if chosen else False


def is_opted_out(session: Session, phone: str, number: str | None) -> bool:
    """What the database says: True when `phone` texted a stop keyword to `number` (or STOPALL
    to any) and not START to it since. `number` None: stopped from any number."""
    return stopped(opted_out_of(session, [phone])[opt_out_key(phone)], number)


def opted_out_of(
    session: Session | None,
    phones: Iterable[str],
    pending: Mapping[Key, OptOutChanged] | None = None,
) -> dict[str, list[Change]]:
    """The changes of each of `phones` (for `stopped`): those stored (in one query; none
    without a session) and those `pending` in the spool, which the database may not have yet
    (`pending_changes`)."""
    keys = {opt_out_key(phone) for phone in phones}
    found: dict[str, list[Change]] = {key: [] for key in keys}
    if keys and session is not None:
        for row in session.execute(
            select(OptOut.phone, OptOut.number, OptOut.opted_out, OptOut.changed_at).where(
                OptOut.phone.in_(keys)
            )
        ):
            found[row.phone].append((row.number, row.opted_out, row.changed_at))
    for (phone, number), change in (pending or {}).items():
        if phone in found:
            found[phone].append((number, change.opted_out, change.at))
    return found


def stopped(changes: list[Change], number: str | None) -> bool:
    """`is_opted_out` over changes read with `opted_out_of`."""
    return _opted_out(changes, number_key(number))


def pending_changes(records: Iterable[Record]) -> dict[Key, OptOutChanged]:
    """The newest opt-out change of each (phone, number) among `records` (the spool's pending
    ones)."""
    latest: dict[Key, OptOutChanged] = {}
    for record in records:
        if isinstance(record, OptOutChanged):
            key = (opt_out_key(record.phone), number_key(record.number) or EVERY_NUMBER)
            if key not in latest or latest[key].at <= record.at:
                latest[key] = record
    return latest


def opted_out_now(
    session: Session | None, phone: str, number: str | None, pending: dict[Key, OptOutChanged]
) -> bool:
    """Whether texts from `number` to `phone` are stopped now: the newest of the changes
    pending in the spool (the database may not have them yet) and the database's rows. Without
    a session (the database is away) the pending changes alone, else not opted out."""
    return stopped(opted_out_of(session, [phone], pending)[opt_out_key(phone)], number)


def set_opt_out(
    session: Session,
    phone: str,
    opted_out: bool,
    keyword: str | None = None,
    *,
    number: str | None = None,
    at: datetime | None = None,
) -> None:
    """Record a STOP (opted_out=True) or START (False) texted to the service's `number` (None:
    every number, STOPALL) at `at`. A change older than the one already stored for the phone
    and number changes nothing (so a change may be written again, or late). An opt-out also
    suppresses the texts still waiting in the outbox for that phone from that number (and
    those whose number is not known)."""
    at = at or utcnow()
    phone = opt_out_key(phone)
    scope = number_key(number) or EVERY_NUMBER
    keyword = keyword[:32] if keyword else None
    insert = upsert(session, OptOut).values(
        phone=phone, number=scope, opted_out=opted_out, keyword=keyword, changed_at=at
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["phone", "number"],
            set_={
                "opted_out": opted_out,
                "keyword": keyword,
                "changed_at": at,
            },
            where=OptOut.__table__.c.changed_at <= at,
        )
    )
    if opted_out:
        waiting = update(OutboxMessage).where(
            OutboxMessage.to_number == phone,
            OutboxMessage.kind == OutboxKind.SMS.value,
            OutboxMessage.status == OutboxStatus.PENDING.value,
        )
        if scope != EVERY_NUMBER:
            waiting = waiting.where(
                or_(OutboxMessage.from_number == scope, OutboxMessage.from_number.is_(None))
            )
        suppressed = waiting.values(status=OutboxStatus.SUPPRESSED.value, last_error="opted out")
        session.execute(suppressed)


def _write(session: Session, records: Sequence[Record], now: datetime) -> AfterCommit | None:
    for record in records:
        set_opt_out(
            session,
            record.phone,
            record.opted_out,
            record.keyword,
            number=record.number,
            at=record.at,
        )
    return None


OPT_OUT_STORE = Store("opt-outs", (OptOutChanged,), _write)
