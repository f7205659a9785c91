"""Every kind of record the line spools, and where each is written: the list the spool is
given (`Spool(stores=STORES)`), and the way to write records at once, in a transaction of the
caller's, when the database answers (`write_records`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from service.calls.store import CALL_STORE
from service.messages.records import TEXT_STORE
from service.optouts.store import OPT_OUT_STORE
from service.outbound.outbox import OUTBOX_STORE
from service.spool.codec import Record
from service.spool.stores import Applied, Store, apply_records
from service.voicemail.records import VOICEMAIL_STORE

STORES: tuple[Store, ...] = (CALL_STORE, OPT_OUT_STORE, TEXT_STORE, OUTBOX_STORE, VOICEMAIL_STORE)


def write_records(session: Session, records: Sequence[Record], *, now: datetime) -> Applied:
    """Write `records` in the session's transaction; count what they changed (`Applied.count`)
    once it has committed."""
    return apply_records(session, records, STORES, now=now)
