"""The call store writes any number of facts in a fixed handful of statements, and a batch
leaves exactly the rows that writing its facts one at a time would leave (on both databases)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from service.calls.facts import (
    CallEnded,
    CallEventHappened,
    CallFact,
    CallStarted,
    CallTransferred,
    DialFinished,
    StatusReported,
)
from service.calls.store import write_call_facts
from service.db import Database
from service.models import Call, CallEvent, CallEventKind, CallOutcome

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
NODES = ["main", "reach", "library", "why"]
CONTACTS = [("coordinator", "+18048287999"), ("library", "(804) 828-8709")]

# What one call's webhooks and callbacks may say, in any order and repeated (Twilio retries and
# does not order them). Times are a second apart at most, so events collide and interleave.
moments = st.integers(min_value=0, max_value=20).map(lambda s: T0 + timedelta(seconds=s))
fact_shapes = st.one_of(
    st.builds(
        lambda at, lang: ("started", at, lang),
        moments,
        st.sampled_from(["en", "es"]),
    ),
    st.builds(
        lambda at, kind, node, detail: ("event", at, kind, node, detail),
        moments,
        st.sampled_from(list(CallEventKind)),
        st.sampled_from([*NODES, None]),
        st.sampled_from(["1", "es", "goodbye", None]),
    ),
    st.builds(lambda at, c: ("transferred", at, c), moments, st.sampled_from(CONTACTS)),
    st.builds(
        lambda at, status: ("dial", at, status),
        moments,
        st.sampled_from(["completed", "answered", "busy", "no-answer", "failed", "canceled"]),
    ),
    st.builds(lambda at: ("ended", at), moments),
    st.builds(
        lambda at, status, duration: ("status", at, status, duration),
        moments,
        st.sampled_from(["ringing", "in-progress", "completed", "busy", "no-answer", "failed"]),
        st.sampled_from([None, 0, 42]),
    ),
)
histories = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), fact_shapes), min_size=1, max_size=25
)


def as_fact(sid: str, shape: tuple[object, ...]) -> CallFact:
    kind, at = shape[0], shape[1]
    assert isinstance(at, datetime)
    match shape:
        case ("started", _, lang):
            return CallStarted(sid, at, "+18045550111", "+18045550100", str(lang), "flowhash")
        case ("event", _, kind_, node, detail):
            assert isinstance(kind_, CallEventKind)
            return CallEventHappened(sid, at, kind_, node, detail)  # type: ignore[arg-type]
        case ("transferred", _, (contact, number)):
            return CallTransferred(sid, at, str(contact), str(number), "reach")
        case ("dial", _, status):
            return DialFinished(sid, at, str(status), node="reach")
        case ("ended", _):
            return CallEnded(sid, at, CallOutcome.COMPLETED, node="main", detail="goodbye")
        case ("status", _, status, duration):
            return StatusReported(sid, at, str(status), duration, "+18045550111")  # type: ignore[arg-type]
    raise AssertionError(kind)


def written(database: Database, prefix: str) -> list[tuple[object, ...]]:
    """Every call whose sid starts with `prefix` and its events, without ids or the prefix."""
    with database.session(read_only=True) as session:
        calls = session.scalars(
            select(Call).where(Call.call_sid.startswith(prefix)).order_by(Call.call_sid)
        ).all()
        rows: list[tuple[object, ...]] = []
        for call in calls:
            columns = {
                column: getattr(call, column)
                for column in Call.__table__.columns.keys()  # noqa: SIM118
                if column not in ("id", "call_sid")
            }
            events = session.execute(
                select(CallEvent.at, CallEvent.kind, CallEvent.node, CallEvent.detail)
                .where(CallEvent.call_id == call.id)
                .order_by(CallEvent.id)
            ).all()
            rows.append((call.call_sid.removeprefix(prefix), columns, [tuple(e) for e in events]))
        return rows


examples = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories)
def test_a_batch_leaves_the_rows_that_one_fact_at_a_time_leaves(
    database: Database, history: list[tuple[int, tuple[object, ...]]]
) -> None:
    n = next(examples)
    one, many = f"one{n}-", f"many{n}-"
    for call, shape in history:
        with database.session() as session:
            write_call_facts(session.connection(), [as_fact(f"{one}CA{call}", shape)])
    batch = [as_fact(f"{many}CA{call}", shape) for call, shape in history]
    with database.session() as session:
        write_call_facts(session.connection(), batch)
    assert written(database, many) == written(database, one)


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]).split()[0])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def whole_call(sid: str, start: datetime) -> list[CallFact]:
    at = [start + timedelta(seconds=s) for s in range(8)]
    return [
        CallStarted(sid, at[0], "+18045550111", "+18045550100", "en", "flowhash"),
        CallEventHappened(sid, at[0], CallEventKind.MENU, "main"),
        CallEventHappened(sid, at[1], CallEventKind.KEY, "main", "2"),
        CallEventHappened(sid, at[1], CallEventKind.MENU, "reach"),
        CallEventHappened(sid, at[2], CallEventKind.KEY, "reach", "0"),
        CallTransferred(sid, at[2], "coordinator", "+18048287999", "reach"),
        DialFinished(sid, at[6], "completed", node="reach"),
        CallEnded(sid, at[6], node="reach", detail="goodbye"),
        StatusReported(sid, at[7], "completed", 70),
    ]


def test_a_batch_costs_the_same_statements_for_one_call_or_two_hundred(
    database: Database,
) -> None:
    with statements(database) as one, database.session() as session:
        write_call_facts(session.connection(), whole_call("CA-one", T0))
    many = [fact for i in range(200) for fact in whole_call(f"CA-{i:03}", T0)]
    with statements(database) as two_hundred, database.session() as session:
        write_call_facts(session.connection(), many)
    assert len(two_hundred) == len(one) <= 12, (one, two_hundred)
    with database.session(read_only=True) as session:
        calls = session.scalars(select(Call).where(Call.call_sid.startswith("CA-"))).all()
        assert len(calls) == 201
        assert {(c.outcome, c.path, c.duration_seconds) for c in calls} == {
            ("transferred", "main>reach", 70)
        }
        assert session.scalar(select(CallEvent.id).order_by(CallEvent.id.desc()).limit(1))
