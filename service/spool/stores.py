"""Where spooled records go: each domain declares a `Store` for its record types, and the
composition root (`service.stores`) hands the list to the spool. The spool knows no domain:
it finds a record's store by its type and calls what was declared.

A store's `write` takes the session, a run of its records and the time of the batch, writes
them in the session's transaction and may return an `AfterCommit`: work (counting in
/metrics) that must wait until the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from service.spool.codec import Record

AfterCommit = Callable[[], None]
Write = Callable[[Session, Sequence[Record], datetime], AfterCommit | None]


@dataclass(frozen=True)
class Store:
    name: str
    types: tuple[type, ...]
    write: Write
    order_free: bool = False
    """The records' order does not matter (call facts merge by rules that do not depend on
    it): all of a batch's are written together, in one call. Otherwise runs of consecutive
    records are written in the order they were spooled (an opt-out before a text queued after
    it)."""


@dataclass
class Applied:
    """What a batch left to do once its transaction commits."""

    after_commit: list[AfterCommit] = field(default_factory=list)

    def count(self) -> None:
        for work in self.after_commit:
            work()


def apply_records(
    session: Session, records: Sequence[Record], stores: Sequence[Store], *, now: datetime
) -> Applied:
    """Write `records` in the session's transaction, each through its store."""
    applied = Applied()
    by_type = {kind: store for store in stores for kind in store.types}

    def write(store: Store, run: Sequence[Record]) -> None:
        after = store.write(session, run, now)
        if after is not None:
            applied.after_commit.append(after)

    ordered: list[Record] = []
    for store in stores:
        if store.order_free:
            mine = [record for record in records if isinstance(record, store.types)]
            if mine:
                write(store, mine)
    for record in records:
        found = by_type.get(type(record))
        if found is None:
            raise TypeError(f"no store for {type(record).__name__}")
        if not found.order_free:
            ordered.append(record)
    for store, run in _runs(ordered, by_type):
        write(store, run)
    return applied


def _runs(
    records: Iterable[Record], by_type: dict[type, Store]
) -> list[tuple[Store, list[Record]]]:
    """Consecutive records of one store, grouped."""
    runs: list[tuple[Store, list[Record]]] = []
    for record in records:
        store = by_type[type(record)]
        if runs and runs[-1][0] is store:
            runs[-1][1].append(record)
        else:
            runs.append((store, [record]))
    return runs
