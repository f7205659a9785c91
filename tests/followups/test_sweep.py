"""The follow-up sweep on SQLite and PostgreSQL: what puts a number on the worklist, what
joins an open item, what closes one, and that running it again (or in two processes at once)
files nothing twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.models import (
    CallEventKind,
    FollowUp,
    FollowUpSource,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from tests.recorder import Recorder
from tests.staff.conftest import record_call

T0 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CALLER = "+18045551001"
OTHER = "+18045552002"
COORDINATOR = ("coordinator", "+18048287999")


def missed(recorder: Recorder, sid: str, caller: str, at: datetime, status: str = "no-answer"):  # type: ignore[no-untyped-def]
    return record_call(
        recorder,
        sid,
        caller,
        at,
        keys=[("main", "2", "reach"), ("reach", "1", "")],
        transfer=(*COORDINATOR, status),
    )


def sweep(database: Database, now: datetime) -> None:
    with database.session() as session:
        sweep_follow_ups(session, now)


def open_items(database: Database) -> list[worklist.ItemRow]:
    with database.session() as session:
        return worklist.list_items(session)


def test_a_missed_transfer_opens_an_item_and_a_second_joins_it(
    recorder: Recorder, database: Database
) -> None:
    missed(recorder, "CA" + "1" * 32, CALLER, T0, "busy")
    sweep(database, T0 + timedelta(minutes=2))
    items = open_items(database)
    assert len(items) == 1
    assert items[0].item.phone == CALLER
    assert items[0].attempts == 1
    assert items[0].reasons == ["Transfer not answered"]

    missed(recorder, "CA" + "2" * 32, CALLER, T0 + timedelta(hours=1), "failed")
    sweep(database, T0 + timedelta(hours=1, minutes=2))
    sweep(database, T0 + timedelta(hours=1, minutes=3))  # again: nothing new
    items = open_items(database)
    assert len(items) == 1
    assert items[0].attempts == 2
    assert items[0].item.first_attempt_at == T0
    assert items[0].item.last_attempt_at == T0 + timedelta(hours=1)


def test_answered_calls_and_menu_hang_ups_open_nothing(
    recorder: Recorder, database: Database
) -> None:
    record_call(recorder, "CA" + "3" * 32, CALLER, T0, transfer=(*COORDINATOR, "completed"))
    record_call(recorder, "CA" + "4" * 32, OTHER, T0, keys=[("main", "1", "why")])
    sweep(database, T0 + timedelta(minutes=5))
    assert open_items(database) == []


def test_a_later_call_that_reached_a_person_closes_the_item(
    recorder: Recorder, database: Database
) -> None:
    missed(recorder, "CA" + "5" * 32, CALLER, T0)
    sweep(database, T0 + timedelta(minutes=1))
    assert len(open_items(database)) == 1
    record_call(
        recorder, "CA" + "6" * 32, CALLER, T0 + timedelta(hours=2),
        transfer=(*COORDINATOR, "completed"),
    )  # fmt: skip
    sweep(database, T0 + timedelta(hours=2, minutes=1))
    assert open_items(database) == []
    with database.session() as session:
        item = session.scalars(select(FollowUp)).one()
    assert item.outcome == "reached-a-person"
    assert item.closed_by == "system"

    # A missed call after that opens a new item.
    missed(recorder, "CA" + "7" * 32, CALLER, T0 + timedelta(hours=3))
    sweep(database, T0 + timedelta(hours=3, minutes=1))
    items = open_items(database)
    assert len(items) == 1
    assert items[0].item.id != item.id


def test_a_missed_call_already_followed_by_a_reached_one_is_not_filed(
    recorder: Recorder, database: Database
) -> None:
    missed(recorder, "CA" + "8" * 32, CALLER, T0)
    record_call(
        recorder, "CA" + "9" * 32, CALLER, T0 + timedelta(minutes=5),
        transfer=(*COORDINATOR, "completed"),
    )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=10))
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(FollowUp)) == 0


def test_a_call_back_request_in_the_missed_call_is_the_same_attempt(
    recorder: Recorder, database: Database
) -> None:
    sid = "CA" + "a" * 32
    missed(recorder, sid, CALLER, T0)
    recorder.call_event(
        sid, CallEventKind.CALLBACK_REQUEST, node="reach", detail="coordinator",
        at=T0 + timedelta(seconds=40),
    )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=1))
    items = open_items(database)
    assert len(items) == 1
    assert items[0].attempts == 1
    assert items[0].reasons == ["Transfer not answered", "Asked for a call back"]


def test_texts_asking_for_a_person_or_not_understood_twice(
    recorder: Recorder, database: Database
) -> None:
    line = "+18045550100"
    recorder.message_received("SM" + "1" * 32, OTHER, line, "blah", intent="not_understood", at=T0)
    sweep(database, T0 + timedelta(minutes=1))
    assert open_items(database) == []  # once is not enough
    recorder.message_received(
        "SM" + "2" * 32, OTHER, line, "what?", intent="not_understood",
        at=T0 + timedelta(minutes=3),
    )  # fmt: skip
    recorder.message_received(
        "SM" + "3" * 32, CALLER, line, "can someone call me", intent="asked_for_person", at=T0
    )
    sweep(database, T0 + timedelta(minutes=5))
    items = {row.item.phone: row for row in open_items(database)}
    assert set(items) == {OTHER, CALLER}
    assert items[OTHER].reasons == ["Texts not understood twice"]
    assert items[CALLER].reasons == ["Asked for a person by text"]


def test_a_failed_call_back_opens_an_item(database: Database) -> None:
    with database.session() as session:
        session.add(
            OutboxMessage(
                kind=OutboxKind.CALL.value, to_number=CALLER, body="<Response/>",
                status=OutboxStatus.FAILED.value, created_at=T0, last_error="21217",
            )
        )  # fmt: skip
        session.add(
            OutboxMessage(
                kind=OutboxKind.CALL.value, to_number=OTHER, body="<Response/>",
                status=OutboxStatus.SENT.value, created_at=T0,
            )
        )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=1))
    items = open_items(database)
    assert [row.item.phone for row in items] == [CALLER]
    assert items[0].reasons == ["Call-back failed or not answered"]


def test_two_sweeps_at_once_file_each_trigger_once(recorder: Recorder, database: Database) -> None:
    for n in range(6):
        missed(recorder, f"CA{n:032d}", CALLER if n % 2 else OTHER, T0 + timedelta(minutes=n))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            sweep(database, T0 + timedelta(minutes=30))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(FollowUp)) == 2
        assert session.scalar(select(func.count()).select_from(FollowUpSource)) == 6
    assert sorted(row.attempts for row in open_items(database)) == [3, 3]


def test_texts_not_understood_days_apart_open_nothing(
    recorder: Recorder, database: Database
) -> None:
    line = "+18045550100"
    recorder.message_received("SM" + "4" * 32, OTHER, line, "huh", intent="not_understood", at=T0)
    later = T0 + timedelta(days=2)
    recorder.message_received("SM" + "5" * 32, OTHER, line, "eh", intent="not_understood", at=later)
    sweep(database, later + timedelta(minutes=1))
    assert open_items(database) == []


def test_words_of_a_crisis_open_an_urgent_item_that_sorts_first(
    recorder: Recorder, database: Database
) -> None:
    line = "+18045550100"
    missed(recorder, "CA" + "6" * 32, OTHER, T0 - timedelta(hours=5))  # waiting longest
    recorder.message_received(
        "SM" + "6" * 32, CALLER, line, "ya no quiero vivir", intent="crisis", at=T0
    )
    # By voice: the words of an emergency said on a call (a `crisis` call event).
    third = "+18045553003"
    record_call(recorder, "CA" + "7" * 32, third, T0 - timedelta(hours=1))
    recorder.call_event(
        "CA" + "7" * 32, CallEventKind.CRISIS, node="main", detail="emergency",
        at=T0 - timedelta(minutes=59),
    )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=1))
    items = open_items(database)
    assert [row.item.phone for row in items] == [third, CALLER, OTHER]
    assert [row.item.urgent for row in items] == [True, True, False]
    assert items[0].reasons == ["Wrote or said words of a medical emergency"]
    assert items[1].reasons == ["Wrote or said words about suicide or self-harm"]
    assert items[0].item.first_attempt_at == T0 - timedelta(minutes=59)  # when it was said


def test_an_urgent_item_stays_open_until_staff_close_it(
    recorder: Recorder, database: Database
) -> None:
    line = "+18045550100"
    missed(recorder, "CA" + "8" * 32, CALLER, T0)
    sweep(database, T0 + timedelta(minutes=1))
    recorder.message_received(
        "SM" + "7" * 32, CALLER, line, "my chest hurts", intent="emergency",
        at=T0 + timedelta(minutes=2),
    )  # fmt: skip
    # A later call that reached a person closes an ordinary item, not an urgent one.
    record_call(
        recorder, "CA" + "9" * 32, CALLER, T0 + timedelta(minutes=10),
        transfer=(*COORDINATOR, "completed"),
    )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=20))
    [item] = open_items(database)
    assert item.item.urgent and item.attempts == 2
    assert item.reasons == ["Transfer not answered", "Wrote or said words of a medical emergency"]
    # Filed even when the number reached a person after it.
    recorder.message_received(
        "SM" + "8" * 32, OTHER, line, "quiero morirme", intent="crisis",
        at=T0 + timedelta(minutes=3),
    )  # fmt: skip
    record_call(
        recorder, "CA" + "a" * 32, OTHER, T0 + timedelta(minutes=30),
        transfer=(*COORDINATOR, "completed"),
    )  # fmt: skip
    sweep(database, T0 + timedelta(minutes=40))
    assert {row.item.phone for row in open_items(database) if row.item.urgent} == {CALLER, OTHER}

