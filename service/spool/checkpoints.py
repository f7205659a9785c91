"""How far each spool segment has been written to the database: a checkpoint per segment,
saved in the same transaction as the records it covers (so a replay after a crash writes
exactly what is missing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import SpoolCheckpoint


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
