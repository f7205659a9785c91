"""The recording API: idempotent on CallSid/MessageSid, never moved back by late callbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.db import Database
from service.models import Call, CallEvent, Conversation, Message, utcnow
from tests.recorder import Recorder

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def the_call(database: Database, call_sid: str = "CA1") -> Call:
    with database.session() as session:
        return session.scalars(select(Call).where(Call.call_sid == call_sid)).one()


def count(database: Database, model: type[Call] | type[CallEvent] | type[Message]) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def events(database: Database, call_sid: str = "CA1") -> list[tuple[str, str | None, str | None]]:
    with database.session() as session:
        rows = session.execute(
            select(CallEvent.kind, CallEvent.node, CallEvent.detail)
            .join(Call)
            .where(Call.call_sid == call_sid)
            .order_by(CallEvent.at, CallEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_call_is_recorded_with_normalised_numbers_and_utc_times(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started(
        "CA1", "(804) 555-0100", "+18048287999", language="en", flow_hash="abc", at=at(0)
    )

    call = the_call(database)
    assert call.caller == "+18045550100"
    assert call.called == "+18048287999"
    assert call.language == "en"
    assert call.flow_hash == "abc"
    assert call.started_at == T0
    assert call.started_at.tzinfo is not None
    assert call.outcome == "in-progress"


def test_call_started_twice_keeps_one_call(recorder: Recorder, database: Database) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", language="en", at=at(0))
    recorder.call_started("CA1", "+18045550100", "+18048287999", language="es", at=at(5))

    assert count(database, Call) == 1
    call = the_call(database)
    assert call.language == "en"
    assert call.started_at == T0


def test_the_same_status_callback_twice_leaves_one_call_with_its_duration(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    recorder.call_event("CA1", "menu", node="main", at=at(1))
    recorder.call_event("CA1", "key", node="main", detail="1", at=at(10))

    recorder.call_status("CA1", "completed", duration="42", at=at(42))
    recorder.call_status("CA1", "completed", duration="42", at=at(43))

    assert count(database, Call) == 1
    call = the_call(database)
    assert call.status == "completed"
    assert call.duration_seconds == 42
    assert call.ended_at == at(42)
    assert call.outcome == "hung-up"


def test_late_callbacks_never_move_a_finished_call_back(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))

    recorder.call_status("CA1", "completed", duration=30, at=at(30))
    recorder.call_status("CA1", "in-progress", at=at(1))
    recorder.call_status("CA1", "ringing", at=at(0))
    recorder.call_status("CA1", "no-answer", at=at(31))

    call = the_call(database)
    assert call.status == "completed"
    assert call.duration_seconds == 30
    assert call.ended_at == at(30)
    assert call.answered_at == at(1)


def test_a_status_callback_before_the_first_webhook_creates_the_call(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_status("CA1", "in-progress", caller="+18045550100", at=at(3))
    recorder.call_started(
        "CA1", "+18045550100", "+18048287999", language="en", flow_hash="h", at=at(0)
    )

    assert count(database, Call) == 1
    call = the_call(database)
    assert call.started_at == T0
    assert call.called == "+18048287999"
    assert call.language == "en"
    assert call.status == "in-progress"


def test_the_path_and_last_menu_follow_the_caller(recorder: Recorder, database: Database) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    for second, node in enumerate(["main", "main", "reach", "coordinator"], start=1):
        recorder.call_event("CA1", "menu", node=node, at=at(second))
    recorder.call_event("CA1", "language", node="main", detail="es", at=at(9))

    call = the_call(database)
    assert call.path == "main>reach>coordinator"
    assert call.last_node == "coordinator"
    assert call.language == "es"
    assert [kind for kind, _, _ in events(database)] == ["menu"] * 4 + ["language"]


def test_menus_recorded_out_of_order_give_the_path_in_time_order(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    for second, node in [(1, "main"), (3, "library"), (2, "reach")]:
        recorder.call_event("CA1", "menu", node=node, at=at(second))

    call = the_call(database)
    assert call.path == "main>reach>library"
    assert call.last_node == "library"


def test_an_answered_transfer_reached_a_person(recorder: Recorder, database: Database) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    recorder.call_transferred("CA1", "coordinator", "(804) 828-7999", node="main", at=at(5))
    recorder.dial_result("CA1", "answered", at=at(65))
    recorder.call_status("CA1", "completed", duration=70, at=at(70))

    call = the_call(database)
    assert call.outcome == "reached"
    assert call.transferred_contact == "coordinator"
    assert call.transferred_number == "+18048287999"
    assert call.dial_outcome == "completed"
    assert events(database) == [
        ("dial", "main", "coordinator +18048287999"),
        ("dial_result", None, "completed"),
    ]


def test_a_caller_who_hangs_up_after_an_unanswered_transfer_was_not_answered(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    recorder.call_event("CA1", "key", node="main", detail="0", at=at(3))
    recorder.call_transferred("CA1", "library", "+18048288709", at=at(5))
    recorder.dial_result("CA1", "no-answer", at=at(35))
    recorder.call_status("CA1", "completed", duration=40, at=at(40))

    call = the_call(database)
    assert call.outcome == "not-answered"
    assert call.dial_outcome == "no-answer"
    assert call.transferred_contact == "library"


def test_outcomes_of_calls_that_end_without_a_transfer(
    recorder: Recorder, database: Database
) -> None:
    recorder.call_started("CA-silent", "+18045550100", "+18048287999", at=at(0))
    recorder.call_status("CA-silent", "completed", duration=8, at=at(8))
    recorder.call_started("CA-goodbye", "+18045550101", "+18048287999", at=at(0))
    recorder.call_event("CA-goodbye", "menu", node="main", at=at(1))
    recorder.call_event("CA-goodbye", "key", node="main", detail="1", at=at(5))
    recorder.call_event("CA-goodbye", "menu", node="why", at=at(5))
    recorder.call_ended("CA-goodbye", node="why", detail="goodbye", at=at(50))
    recorder.call_started("CA-left", "+18045550102", "+18048287999", at=at(0))
    recorder.call_event("CA-left", "menu", node="main", at=at(1))
    recorder.call_event("CA-left", "menu", node="reach", at=at(9))
    recorder.call_status("CA-left", "completed", duration=20, at=at(20))
    recorder.call_status("CA-busy", "busy", at=at(1))

    assert the_call(database, "CA-silent").outcome == "hung-up"
    assert the_call(database, "CA-goodbye").outcome == "listened", "ended by the line"
    assert the_call(database, "CA-goodbye").status is None
    assert the_call(database, "CA-left").outcome == "listened"
    assert the_call(database, "CA-left").last_node == "reach"
    assert the_call(database, "CA-busy").outcome == "failed"


def test_unknown_status_values_are_ignored(recorder: Recorder, database: Database) -> None:
    recorder.call_status("CA1", "exploded", at=at(1))
    assert count(database, Call) == 0


def test_an_inbound_text_retried_by_twilio_is_recorded_once(
    recorder: Recorder, database: Database
) -> None:
    with database.session() as session:
        session.add(Conversation(phone="+18045550100", line="+18048287999", state={}))

    for _ in range(2):
        recorder.message_received("SM1", "804-555-0100", "+18048287999", "1", at=at(0))

    with database.session() as session:
        message = session.scalars(select(Message)).one()
        conversation = session.scalars(select(Conversation)).one()
    assert message.direction == "in"
    assert message.phone == "+18045550100"
    assert message.body == "1"
    assert message.conversation_id == conversation.id


def test_message_status_callbacks_are_unordered_and_repeat(
    recorder: Recorder, database: Database
) -> None:
    recorder.message_sent("SM2", "+18045550100", "+18048287999", "Menu", segments=2, at=at(0))
    recorder.message_status("SM2", "delivered", at=at(3))
    recorder.message_status("SM2", "sent", at=at(2))
    recorder.message_status("SM2", "delivered", at=at(4))

    with database.session() as session:
        message = session.scalars(select(Message)).one()
    assert message.status == "delivered"
    assert message.segments == 2


def test_a_status_callback_that_beats_the_send_record_keeps_both(
    recorder: Recorder, database: Database
) -> None:
    recorder.message_status("SM3", "failed", error_code=30006, at=at(1))
    recorder.message_sent("SM3", "+18045550100", "+18048287999", "Menu", at=at(0))

    with database.session() as session:
        message = session.scalars(select(Message)).one()
    assert (message.status, message.error_code, message.body) == ("failed", "30006", "Menu")
    assert message.phone == "+18045550100"


def test_replies_without_a_message_sid_are_each_recorded(
    recorder: Recorder, database: Database
) -> None:
    recorder.message_sent(None, "+18045550100", "+18048287999", "one")
    recorder.message_sent(None, "+18045550100", "+18048287999", "two")

    assert count(database, Message) == 2


def sample(name: str, **labels: str) -> float:
    """The metric's value for calls of no line (the recorder's)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {**labels, "line": ""}) or 0.0


def test_each_call_is_counted_once_by_outcome_when_it_settles(recorder: Recorder) -> None:
    reached = sample("phoneline_calls_total", outcome="reached")
    hung_up = sample("phoneline_calls_total", outcome="hung-up")
    answered = sample("phoneline_transfers_total", contact="coordinator", result="completed")

    recorder.call_started("CA1", "+18045550100", "+18048287999", at=at(0))
    recorder.call_transferred("CA1", "coordinator", "+18048287999", at=at(5))
    recorder.dial_result("CA1", "completed", at=at(60))
    recorder.call_status("CA1", "completed", duration=61, at=at(61))
    recorder.call_status("CA1", "completed", duration=61, at=at(62))
    recorder.call_started("CA2", "+18045550100", "+18048287999", at=at(0))
    recorder.call_status("CA2", "completed", duration=3, at=at(3))
    recorder.call_status("CA2", "completed", duration=3, at=at(4))
    assert sample("phoneline_calls_total", outcome="reached") == reached, "not quiet yet"

    later = utcnow() + timedelta(minutes=1)
    assert len(recorder.settle(later).calls) == 2
    assert recorder.settle(later).calls == []
    assert sample("phoneline_calls_total", outcome="reached") == reached + 1
    assert sample("phoneline_calls_total", outcome="hung-up") == hung_up + 1
    assert (
        sample("phoneline_transfers_total", contact="coordinator", result="completed")
        == answered + 1
    )
