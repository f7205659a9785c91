"""Writing spooled records to the database: every kind to its own store, in one transaction
with the checkpoints of the segments they came from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.calls.facts import CALL_FACTS
from service.calls.store import write_call_facts
from service.db import upsert
from service.models import SpoolCheckpoint
from service.outbound.outbox import OUTBOX_RECORDS, write_outbox_records
from service.spool.codec import Record
from service.texts.records import TEXT_RECORDS, count_delivered, write_text_records


@dataclass
class Applied:
    """What a batch changed that is counted once its transaction commits."""

    delivered: list[str] = field(default_factory=list)

    def count(self) -> None:
        count_delivered(self.delivered)


def apply_records(session: Session, records: Sequence[Record], *, now: datetime) -> Applied:
    """Write `records` in the session's transaction. Call facts are written together (their
    order does not matter: `service.calls.facts`); texts and outbox rows in the order given,
    where it can (an opt-out before a text queued after it)."""
    applied = Applied()
    calls = [record for record in records if isinstance(record, CALL_FACTS)]
    if calls:
        write_call_facts(session.connection(), calls, now=now)
    for kind, run in _runs(record for record in records if not isinstance(record, CALL_FACTS)):
        if kind is TEXT_RECORDS:
            applied.delivered += write_text_records(session, run)
        elif kind is OUTBOX_RECORDS:
            write_outbox_records(session, run)
        else:  # pragma: no cover - every registered record has a store above
            raise TypeError(f"no store for {type(run[0]).__name__}")
    return applied


def save_checkpoints(session: Session, applied: Mapping[str, int], now: datetime) -> None:
    """Record, for each segment, the last seq now in the database."""
    for segment, seq in sorted(applied.items()):
        insert = upsert(session, SpoolCheckpoint).values(
            segment=segment, applied_seq=seq, updated_at=now
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["segment"],
                set_={"applied_seq": seq, "updated_at": now},
                where=SpoolCheckpoint.__table__.c.applied_seq < seq,
            )
        )


def load_checkpoint(session: Session, segment: str) -> int:
    """The last seq of `segment` already in the database (0: none)."""
    seq = session.scalar(
        select(SpoolCheckpoint.applied_seq).where(SpoolCheckpoint.segment == segment)
    )
    return int(seq or 0)


def forget_checkpoints(session: Session, segments: Iterable[str]) -> None:
    names = sorted(set(segments))
    if names:
        session.execute(delete(SpoolCheckpoint).where(SpoolCheckpoint.segment.in_(names)))


def _runs(records: Iterable[Record]) -> list[tuple[tuple[type, ...], list[Record]]]:
    """Consecutive records of one store, grouped."""
    runs: list[tuple[tuple[type, ...], list[Record]]] = []
    for record in records:
        kind = TEXT_RECORDS if isinstance(record, TEXT_RECORDS) else OUTBOX_RECORDS
        if not isinstance(record, kind):
            raise TypeError(f"no store for {type(record).__name__}")
        if runs and runs[-1][0] is kind:
            runs[-1][1].append(record)
        else:
            runs.append((kind, [record]))
    return runs
