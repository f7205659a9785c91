"""The call store writes any number of facts in a fixed handful of statements, and a call's row,
its events and what /metrics counts for it are the same whatever order its facts come in and
however they are split into batches and writers (on both databases)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
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
from service.calls.store import settle_calls, write_call_facts
from service.db import Database
from service.models import Call, CallEvent, CallEventKind, utcnow

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
            return CallEnded(sid, at, node="main", detail="goodbye")
        case ("status", _, status, duration):
            return StatusReported(sid, at, str(status), duration, "+18045550111")  # type: ignore[arg-type]
    raise AssertionError(kind)


def written(database: Database, prefix: str) -> list[tuple[object, ...]]:
    """Every call whose sid starts with `prefix` and its events (as a sorted list: the order
    rows were inserted in is not part of the record), without ids, the prefix or the moment the
    row was written."""
    with database.session(read_only=True) as session:
        calls = session.scalars(
            select(Call).where(Call.call_sid.startswith(prefix)).order_by(Call.call_sid)
        ).all()
        rows: list[tuple[object, ...]] = []
        for call in calls:
            columns = {
                column: getattr(call, column)
                for column in Call.__table__.columns.keys()  # noqa: SIM118
                if column not in ("id", "call_sid", "updated_at", "settled_at")
            }
            events = session.execute(
                select(CallEvent.at, CallEvent.kind, CallEvent.node, CallEvent.detail).where(
                    CallEvent.call_id == call.id
                )
            ).all()
            rows.append(
                (
                    call.call_sid.removeprefix(prefix),
                    columns,
                    sorted((tuple(e) for e in events), key=repr),
                )
            )
        return rows


examples = itertools.count()


@settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories, data=st.data())
def test_any_order_and_any_split_leave_the_same_calls_and_counts(
    database: Database, history: list[tuple[int, tuple[object, ...]]], data: st.DataObject
) -> None:
    """The facts of a few calls, one at a time in the order they happened, against the same
    facts shuffled and cut into batches committed one after another (as writers in several
    processes commit theirs): the same rows, the same events, the same outcomes counted."""
    n = next(examples)
    one, many = f"one{n}-", f"many{n}-"
    for call, shape in history:
        with database.session() as session:
            write_call_facts(session.connection(), [as_fact(f"{one}CA{call}", shape)])
    facts = [as_fact(f"{many}CA{call}", shape) for call, shape in history]
    shuffled = [facts[i] for i in data.draw(st.permutations(range(len(facts))), label="order")]
    cuts = data.draw(
        st.lists(st.integers(min_value=0, max_value=len(facts)), max_size=5).map(sorted),
        label="cuts",
    )
    for start, end in itertools.pairwise([0, *cuts, len(shuffled)]):
        with database.session() as session:
            write_call_facts(session.connection(), shuffled[start:end])
    assert written(database, many) == written(database, one)
    by_order, by_batches = counted(database, [one, many])
    assert by_batches == by_order


def counted(database: Database, prefixes: list[str]) -> list[tuple[list[str], list[object]]]:
    """What the settler counts, once the calls are quiet, for the calls of each prefix: their
    outcomes and their dial results, sorted."""
    with database.session() as session:
        result = settle_calls(session.connection(), utcnow() + timedelta(days=1), limit=10_000)
        sids = dict(session.execute(select(Call.id, Call.call_sid)).all())
    return [
        (
            sorted(outcome for call_id, outcome, _ in result.calls if sids[call_id].startswith(p)),
            sorted(
                (contact, outcome)
                for call_id, contact, outcome, _ in result.transfers
                if sids[call_id].startswith(p)
            ),
        )
        for p in prefixes
    ]


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
            ("reached", "main>reach", 70)
        }
        assert session.scalar(select(CallEvent.id).order_by(CallEvent.id.desc()).limit(1))


def busy_transfer(sid: str) -> list[CallFact]:
    """A caller put through to the coordinator, who is busy; the caller then hangs up."""
    at = [T0 + timedelta(seconds=s) for s in range(6)]
    return [
        CallStarted(sid, at[0], "+18045550111", "+18045550100", "en", "flowhash"),
        CallEventHappened(sid, at[0], CallEventKind.MENU, "main"),
        CallEventHappened(sid, at[1], CallEventKind.KEY, "main", "0"),
        CallTransferred(sid, at[1], "coordinator", "+18048287999", "main"),
        DialFinished(sid, at[4], "busy", "coordinator", "+18048287999", "main"),
        CallEventHappened(sid, at[4], CallEventKind.MENU, "main"),
        StatusReported(sid, at[5], "completed", 30, "+18045550111"),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_busy_transfer_is_not_answered_whatever_arrives_first(
    database: Database, order: tuple[int, ...]
) -> None:
    """The dial, its busy result and the call's final status, each in a batch of its own, in
    every order (as three writers in three processes may commit them): the call is a transfer
    nobody answered, never "reached" or "completed", and it is counted so."""
    sid = f"CA-busy-{''.join(map(str, order))}"
    facts = busy_transfer(sid)
    rest, critical = facts[:3] + facts[5:6], [facts[3], facts[4], facts[6]]
    with database.session() as session:
        write_call_facts(session.connection(), rest)
    for index in order:
        with database.session() as session:
            write_call_facts(session.connection(), [critical[index]])
    with database.session() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid)).one()
        assert (call.outcome, call.dial_outcome, call.transferred_contact) == (
            "not-answered",
            "busy",
            "coordinator",
        )
        assert (call.status, call.duration_seconds, call.path) == ("completed", 30, "main")
        settled = settle_calls(session.connection(), utcnow() + timedelta(minutes=5))
    assert [outcome for call_id, outcome, _ in settled.calls if call_id == call.id] == [
        "not-answered"
    ]
    assert [(c, r) for call_id, c, r, _ in settled.transfers if call_id == call.id] == [
        ("coordinator", "busy")
    ]


@pytest.mark.parametrize("first", ["completed", "no-answer"])
def test_two_different_final_statuses_leave_the_same_one_in_either_order(
    database: Database, first: str
) -> None:
    second = "no-answer" if first == "completed" else "completed"
    with database.session() as session:
        write_call_facts(session.connection(), [StatusReported("CA-two", T0, first, 10)])
    with database.session() as session:
        write_call_facts(session.connection(), [StatusReported("CA-two", T0, second, 10)])
    with database.session() as session:
        call = session.scalars(select(Call).where(Call.call_sid == "CA-two")).one()
    assert call.status == "completed"


def test_a_call_is_settled_only_once_it_has_been_quiet(database: Database) -> None:
    now = utcnow()
    with database.session() as session:
        write_call_facts(session.connection(), whole_call("CA-quiet", T0), now=now)
    with database.session() as session:
        assert settle_calls(session.connection(), now + timedelta(seconds=5)).calls == []
    with database.session() as session:
        (settled,) = settle_calls(session.connection(), now + timedelta(seconds=31)).calls
    assert settled[1] == "reached"
    with database.session() as session:
        assert settle_calls(session.connection(), now + timedelta(hours=1)).calls == []
