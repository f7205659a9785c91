"""Writing call facts to the database: any number of them in a handful of statements.

`write_call_facts(connection, facts)` leaves the rows that writing the facts one at a time, in
that order, would leave; but one fact or a thousand cost the same few statements:

1. the calls the facts name, with the columns facts change, locked (FOR UPDATE on PostgreSQL,
   in CallSid order, so that two processes never wait on each other in a circle);
2. only when some are missing (a call's first webhook): an insert of those, then 1. for them;
3. only when a call reaches a final status: whether its caller ever chose anything;
4. the new `call_events` rows;
5. only for calls with new menu events: every menu event in time order, to rebuild the path;
6. an UPDATE of the calls that changed, one per set of changed columns.

Bulk rows go to SQLite with `executemany` (a loop in C) and to PostgreSQL as arrays in a single
statement (`unnest`), so the per-row cost stays small on both. The caller owns the transaction.
Counts for /metrics come back in `Changes`, to be counted once the transaction commits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql

from service.calls.facts import (
    CALL_STATUS_RANK,
    CHOICE_KINDS,
    CallFact,
    CallState,
    Changes,
    StatusReported,
    apply,
    path_of,
)
from service.models import Call, CallEvent, CallEventKind, CallOutcome
from service.phone import to_e164

CALLS = cast(Table, Call.__table__)
EVENTS = cast(Table, CallEvent.__table__)
STATE_COLUMNS = tuple(
    f.name for f in fields(CallState) if f.name not in ("chose_something", "menus_changed")
)
CHANGING_COLUMNS = STATE_COLUMNS[1:]  # everything but the id
EVENT_COLUMNS = ("call_id", "at", "kind", "node", "detail")
POSTGRESQL = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=4096)
def normalized_number(raw: str) -> str | None:
    """`to_e164`, remembered: a line's callers and its own numbers come back again and again."""
    return to_e164(raw)


def write_call_facts(connection: Connection, facts: Sequence[CallFact]) -> Changes:
    """Write `facts` (in order) in the connection's transaction; what to count comes back."""
    changes = Changes()
    # A status Twilio does not document says nothing about the call: not even that it exists.
    facts = [
        fact
        for fact in facts
        if not isinstance(fact, StatusReported) or fact.status.lower() in CALL_STATUS_RANK
    ]
    if not facts:
        return changes
    states = _locked_states(connection, facts)
    before = {sid: _values(state) for sid, state in states.items()}
    ending = [
        states[fact.call_sid].id
        for fact in facts
        if isinstance(fact, StatusReported)
        and states[fact.call_sid].outcome == CallOutcome.IN_PROGRESS
    ]
    if ending:
        chose = _calls_with_choices(connection, ending)
        for state in states.values():
            state.chose_something = state.id in chose
    for fact in facts:
        apply(states[fact.call_sid], fact, changes, normalized_number)
    if changes.events:
        rows = [
            (event.call_id, event.at, event.kind.value, event.node, event.detail)
            for event in changes.events
        ]
        _bulk(connection).insert(EVENTS, EVENT_COLUMNS, rows)
    menus_changed = {state.id: state for state in states.values() if state.menus_changed}
    if menus_changed:
        for call_id, menus in _menus(connection, menus_changed).items():
            state = menus_changed[call_id]
            state.path = path_of(menus)
            state.last_node = menus[-1][:64]
    _update_changed(connection, states, before)
    return changes


# -- 1 and 2: the calls, locked -------------------------------------------------------------------


def _locked_states(connection: Connection, facts: Sequence[CallFact]) -> dict[str, CallState]:
    sids = sorted({fact.call_sid for fact in facts})
    states = _select_states(connection, sids)
    missing = [sid for sid in sids if sid not in states]
    if missing:
        # A call's first webhook: the row is created here and filled in by `apply`, like any
        # other. A call that another process creates meanwhile is left as it is (ON CONFLICT).
        first_seen: dict[str, datetime] = {}
        for fact in facts:
            first_seen.setdefault(fact.call_sid, fact.at)
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


# -- 3 and 5: what the rules need from earlier events --------------------------------------------


def _calls_with_choices(connection: Connection, call_ids: Iterable[int]) -> set[int]:
    chosen = (
        select(EVENTS.c.call_id)
        .where(
            EVENTS.c.call_id.in_(sorted(set(call_ids))),
            EVENTS.c.kind.in_([kind.value for kind in CHOICE_KINDS]),
        )
        .distinct()
    )
    return set(connection.scalars(chosen))


def _menus(connection: Connection, call_ids: Iterable[int]) -> dict[int, list[str]]:
    """The menu events of these calls in time order (webhooks may be recorded out of order)."""
    rows = connection.execute(
        select(EVENTS.c.call_id, EVENTS.c.node)
        .where(
            EVENTS.c.call_id.in_(sorted(call_ids)),
            EVENTS.c.kind == CallEventKind.MENU.value,
            EVENTS.c.node.is_not(None),
            EVENTS.c.node != "",
        )
        .order_by(EVENTS.c.call_id, EVENTS.c.at, EVENTS.c.id)
    )
    menus: dict[int, list[str]] = {}
    for call_id, node in rows:
        menus.setdefault(call_id, []).append(node)
    return menus


# -- 4 and 6: bulk writes -----------------------------------------------------------------------


def _update_changed(
    connection: Connection,
    states: dict[str, CallState],
    before: dict[str, tuple[Any, ...]],
) -> None:
    """One UPDATE per set of changed columns: an index is touched only when its columns are."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for sid, state in states.items():
        now, then = _values(state), before[sid]
        changed = [i for i, (new, old) in enumerate(zip(now, then, strict=True)) if new != old]
        if changed:
            columns = tuple(CHANGING_COLUMNS[i] for i in changed)
            groups.setdefault(columns, []).append((state.id, *(now[i] for i in changed)))
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
