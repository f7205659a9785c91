"""Writing call facts to the database: any number of them in a handful of statements, and
settling calls once they have been quiet a while.

`write_call_facts(connection, facts)` leaves the same rows whatever order the facts come in and
however they are split into batches (`service.calls.facts`), and one fact or a thousand cost the
same few statements:

1. the calls the facts name, with the columns facts change, locked (FOR UPDATE on PostgreSQL,
   in CallSid order, so that two processes never wait on each other in a circle);
2. only when some are missing (a call's first webhook): an insert of those, then 1. for them;
3. the new `call_events` rows;
4. only for calls whose story changed: their story events, to retell the row from;
5. an UPDATE of the calls that changed, one per set of changed columns.

Bulk rows go to SQLite with `executemany` (a loop in C) and to PostgreSQL as arrays in a single
statement (`unnest`), so the per-row cost stays small on both. The caller owns the transaction.

`settle_calls(connection, now)` counts calls by outcome once: a call that has ended and whose row
has not changed for `quiet` is marked settled (by exactly one process) and its outcome and dial
results come back, to be counted in /metrics once the transaction commits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from service import metrics
from service.calls.facts import (
    CALL_FACTS,
    CALL_STATUS_RANK,
    STORY_KINDS,
    CallFact,
    CallState,
    Event,
    StatusReported,
    dial_results,
    merge,
    retell,
)
from service.models import Call, CallEvent, CallOutcome, Line, utcnow
from service.phone import to_e164
from service.spool.codec import Record
from service.spool.stores import AfterCommit, Store

CALLS = cast(Table, Call.__table__)
EVENTS = cast(Table, CallEvent.__table__)
LINES = cast(Table, Line.__table__)
STATE_COLUMNS = tuple(f.name for f in fields(CallState) if f.name != "retell")
CHANGING_COLUMNS = STATE_COLUMNS[1:]  # everything but the id
EVENT_COLUMNS = ("call_id", "at", "kind", "node", "detail")
STORY_KIND_VALUES = sorted(kind.value for kind in STORY_KINDS)
POSTGRESQL = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
SETTLE_QUIET = timedelta(seconds=30)
SETTLE_BATCH = 500


@lru_cache(maxsize=4096)
def normalized_number(raw: str) -> str | None:
    """`to_e164`, remembered: a line's callers and its own numbers come back again and again."""
    return to_e164(raw)


def write_call_facts(
    connection: Connection, facts: Sequence[CallFact], *, now: datetime | None = None
) -> None:
    """Write `facts` in the connection's transaction."""
    # A status Twilio does not document says nothing about the call: not even that it exists.
    facts = [
        fact
        for fact in facts
        if not isinstance(fact, StatusReported) or fact.status.lower() in CALL_STATUS_RANK
    ]
    if not facts:
        return
    states = _locked_states(connection, facts)
    before = {sid: _values(state) for sid, state in states.items()}
    new_events: list[Event] = []
    for fact in facts:
        merge(states[fact.call_sid], fact, new_events, normalized_number)
    if new_events:
        rows = [(e.call_id, e.at, e.kind, e.node, e.detail) for e in new_events]
        _bulk(connection).insert(EVENTS, EVENT_COLUMNS, rows)
    retelling = {state.id: state for state in states.values() if state.retell}
    if retelling:
        stories = _stories(connection, retelling)
        for call_id, state in retelling.items():
            retell(state, stories.get(call_id, ()))
    touched = {event.call_id for event in new_events}
    _update_changed(connection, states, before, touched, now or utcnow())


def _write(session: Session, facts: Sequence[Record], now: datetime) -> AfterCommit | None:
    write_call_facts(session.connection(), facts, now=now)
    return None


CALL_STORE = Store("calls", CALL_FACTS, _write, order_free=True)
"""Call facts: merged by rules that do not depend on their order, so all of a batch's are
written together, in the handful of statements above."""


def settle_calls(
    connection: Connection,
    now: datetime,
    *,
    quiet: timedelta = SETTLE_QUIET,
    limit: int = SETTLE_BATCH,
) -> Settled:
    """Mark as settled the ended calls whose rows have not changed for `quiet`, and say what to
    count for them. Two processes never settle the same call (the rows are locked, and only
    unsettled ones are updated)."""
    candidates = (
        select(CALLS.c.id, CALLS.c.outcome, CALLS.c.line_id)
        .where(
            CALLS.c.settled_at.is_(None),
            CALLS.c.outcome != CallOutcome.IN_PROGRESS.value,
            CALLS.c.updated_at < now - quiet,
        )
        .order_by(CALLS.c.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = connection.execute(candidates).all()
    settled = Settled()
    if not found:
        return settled
    outcomes = {call_id: outcome for call_id, outcome, _ in found}
    slugs = dict(
        connection.execute(
            select(LINES.c.id, LINES.c.slug).where(
                LINES.c.id.in_({line_id for *_, line_id in found if line_id is not None})
            )
        ).all()
    )
    lines = {call_id: slugs.get(line_id, "") for call_id, _, line_id in found}
    ids = sorted(outcomes)
    changed = connection.execute(
        update(CALLS)
        .where(CALLS.c.id.in_(ids), CALLS.c.settled_at.is_(None))
        .values(settled_at=now)
        .returning(CALLS.c.id)
    )
    ids = sorted(row[0] for row in changed)
    settled.calls = [(call_id, outcomes[call_id], lines[call_id]) for call_id in ids]
    for call_id, story in _stories(connection, ids, kinds=("dial", "dial_result")).items():
        settled.transfers.extend(
            (call_id, contact, result, lines[call_id]) for contact, result in dial_results(story)
        )
    return settled


def calls_without_final_status(
    connection: Connection, *, quiet_since: datetime, checked_before: datetime, limit: int = 20
) -> list[str]:
    """CallSids of calls still in progress with nothing heard of them since `quiet_since`, not
    looked into since `checked_before`, oldest first; they are marked as looked into now (so
    that several processes share them out)."""
    rows = connection.execute(
        select(CALLS.c.id, CALLS.c.call_sid)
        .where(
            CALLS.c.settled_at.is_(None),
            CALLS.c.outcome == CallOutcome.IN_PROGRESS.value,
            CALLS.c.last_seen_at < quiet_since,
            (CALLS.c.checked_at.is_(None)) | (CALLS.c.checked_at < checked_before),
        )
        .order_by(CALLS.c.last_seen_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        connection.execute(
            update(CALLS).where(CALLS.c.id.in_([r[0] for r in rows])).values(checked_at=utcnow())
        )
    return [row[1] for row in rows]


@dataclass
class Settled:
    """What settling calls found, to count once it is committed."""

    calls: list[tuple[int, str, str]] = field(default_factory=list)
    """(id, outcome, line slug) of each call settled (phoneline_calls_total)."""
    transfers: list[tuple[int, str, str, str]] = field(default_factory=list)
    """(call id, contact, dial result, line slug) of their finished dials
    (phoneline_transfers_total)."""

    def count(self) -> None:
        """Count them in /metrics (once the transaction that settled them has committed)."""
        for _, outcome, line in self.calls:
            metrics.CALLS.labels(outcome=outcome, line=line).inc()
        for _, contact, result, line in self.transfers:
            metrics.TRANSFERS.labels(contact=contact, result=result, line=line).inc()


# -- 1 and 2: the calls, locked -------------------------------------------------------------------


def _locked_states(connection: Connection, facts: Sequence[CallFact]) -> dict[str, CallState]:
    sids = sorted({fact.call_sid for fact in facts})
    states = _select_states(connection, sids)
    missing = [sid for sid in sids if sid not in states]
    if missing:
        # A call's first webhook: the row is created here and filled in by `merge`, like any
        # other. A call that another process creates meanwhile is left as it is (ON CONFLICT).
        first_seen: dict[str, datetime] = {}
        for fact in facts:
            first_seen[fact.call_sid] = min(fact.at, first_seen.get(fact.call_sid, fact.at))
        rows = [(sid, first_seen[sid], CallOutcome.IN_PROGRESS.value) for sid in missing]
        columns = ("call_sid", "started_at", "outcome")
        _bulk(connection).insert(CALLS, columns, rows, on_conflict="call_sid")
        states |= _select_states(connection, missing)
    return states


def _select_states(connection: Connection, sids: list[str]) -> dict[str, CallState]:
    query = (
        select(CALLS.c.call_sid, *(CALLS.c[name] for name in STATE_COLUMNS))
        .where(CALLS.c.call_sid.in_(sids))
        .order_by(CALLS.c.call_sid)
        .with_for_update()  # PostgreSQL: locked in CallSid order; SQLite: BEGIN IMMEDIATE
    )
    return {
        row[0]: CallState(**dict(zip(STATE_COLUMNS, row[1:], strict=True)))
        for row in connection.execute(query)
    }


# -- 4: what a call's row is retold from ----------------------------------------------------------


def _stories(
    connection: Connection, call_ids: Iterable[int], kinds: Sequence[str] = STORY_KIND_VALUES
) -> dict[int, list[Event]]:
    """The story events of these calls (unordered: `retell` sorts them)."""
    rows = connection.execute(
        select(*(EVENTS.c[name] for name in EVENT_COLUMNS)).where(
            EVENTS.c.call_id.in_(sorted(call_ids)), EVENTS.c.kind.in_(kinds)
        )
    )
    stories: dict[int, list[Event]] = {}
    for row in rows:
        stories.setdefault(row[0], []).append(Event(*row))
    return stories


# -- 4 and 6: bulk writes -----------------------------------------------------------------------


def _update_changed(
    connection: Connection,
    states: dict[str, CallState],
    before: dict[str, tuple[Any, ...]],
    touched: set[int],
    now: datetime,
) -> None:
    """One UPDATE per set of changed columns: an index is touched only when its columns are.
    A call that changed, or got new events, gets `updated_at`."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for sid, state in states.items():
        values, then = _values(state), before[sid]
        changed = [i for i, (new, old) in enumerate(zip(values, then, strict=True)) if new != old]
        if changed or state.id in touched:
            columns = (*(CHANGING_COLUMNS[i] for i in changed), "updated_at")
            row = (state.id, *(values[i] for i in changed), now)
            groups.setdefault(columns, []).append(row)
    bulk = _bulk(connection)
    for columns, rows in groups.items():
        bulk.update(columns, rows)


def _bulk(connection: Connection) -> Bulk:
    if connection.dialect.name == "postgresql":
        return PostgresBulk(connection)
    return SqliteBulk(connection)


class Bulk(ABC):
    """Many rows in one statement, in the way each database takes them best."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def insert(
        self,
        table: Table,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        on_conflict: str | None = None,
    ) -> None:
        """Insert `rows` (values of `columns`), skipping those that collide on `on_conflict`."""
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) {self._rows(table, columns)}"
        if on_conflict is not None:
            sql += f" ON CONFLICT ({on_conflict}) DO NOTHING"
        self.connection.exec_driver_sql(sql, self._parameters(table, columns, rows))

    @abstractmethod
    def update(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Set `columns` of calls; rows are (id, *values of columns)."""

    @abstractmethod
    def _rows(self, table: Table, columns: tuple[str, ...]) -> str:
        """The rows part of an INSERT: VALUES, or a SELECT."""

    @abstractmethod
    def _parameters(
        self, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> Any:
        """The rows as the statement's parameters."""


class SqliteBulk(Bulk):
    """`executemany` of one statement: SQLite loops over the rows in C."""

    def update(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        stored = self._parameters(CALLS, ("id", *columns), rows)
        self.connection.exec_driver_sql(
            f"UPDATE calls SET {assignments} WHERE id = ?", [(*row[1:], row[0]) for row in stored]
        )

    def _rows(self, table: Table, columns: tuple[str, ...]) -> str:
        return f"VALUES ({', '.join('?' for _ in columns)})"

    def _parameters(
        self, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Values as the column types store them (a datetime as SQLAlchemy's UTC text)."""
        dialect = self.connection.dialect
        processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]
        converting = [(i, process) for i, process in enumerate(processors) if process]
        if not converting:
            return rows
        # The facts of one webhook share its time: each time is converted once.
        converted: dict[Any, Any] = {None: None}
        stored = []
        for row in rows:
            values = list(row)
            for i, process in converting:
                value = values[i]
                if value not in converted:
                    converted[value] = process(value)
                values[i] = converted[value]
            stored.append(tuple(values))
        return stored


class PostgresBulk(Bulk):
    """One statement whatever the number of rows: one array per column, `unnest`ed by the
    server. The arrays go in psycopg's binary format (`%b`)."""

    def update(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        names = ("id", *columns)
        assignments = ", ".join(f"{name} = v.{name}" for name in columns)
        self.connection.exec_driver_sql(
            f"UPDATE calls SET {assignments} FROM {self._unnest(CALLS, names)} "
            f"AS v({', '.join(names)}) WHERE calls.id = v.id",
            _arrays(rows),
        )

    def _rows(self, table: Table, columns: tuple[str, ...]) -> str:
        return f"SELECT * FROM {self._unnest(table, columns)}"

    def _parameters(
        self, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> tuple[list[Any], ...]:
        return _arrays(rows)

    @staticmethod
    def _unnest(table: Table, columns: tuple[str, ...]) -> str:
        return f"unnest({', '.join(f'%b::{_array_type(table, name)}' for name in columns)})"


def _arrays(rows: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows as one list per column."""
    return tuple(list(values) for values in zip(*rows, strict=True))


@lru_cache(maxsize=64)
def _array_type(table: Table, column: str) -> str:
    """The PostgreSQL array type of a column's values ("TIMESTAMP WITH TIME ZONE[]")."""
    return f"{table.c[column].type.compile(dialect=POSTGRESQL)}[]"


def _values(state: CallState) -> tuple[Any, ...]:
    return tuple(getattr(state, name) for name in CHANGING_COLUMNS)
