"""What a call leaves in the database (on SQLite and PostgreSQL): its path, its transfers and
their outcomes, its duration (once, however often Twilio repeats the status callback), and the
texts callers asked for, queued once for the SMS worker."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service.db import Database
from service.models import Call, CallEvent, OutboxMessage, SpoolFence, utcnow
from service.optouts.store import OptOutChanged, set_opt_out
from service.spool.spool import Kept, Spool
from service.stores import STORES
from tests.recorder import Recorder
from tests.support import PUBLIC_BASE, AppClient, twilio_signature
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER, Caller

CANNOT_TEXT = "Sorry, we can't send a text message to this phone."


def the_call(database: Database, call_sid: str) -> Call:
    with database.session(read_only=True) as session:
        return session.scalars(select(Call).where(Call.call_sid == call_sid)).one()


def events(database: Database, call_sid: str) -> list[tuple[str, str | None, str | None]]:
    with database.session(read_only=True) as session:
        rows = session.execute(
            select(CallEvent.kind, CallEvent.node, CallEvent.detail)
            .join(Call)
            .where(Call.call_sid == call_sid)
            .order_by(CallEvent.at, CallEvent.id)
        )
        return [(kind, node, detail) for kind, node, detail in rows]


def outbox(database: Database) -> list[OutboxMessage]:
    with database.session(read_only=True) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_call_is_recorded_step_by_step(db_caller: Caller, database: Database) -> None:
    db_caller.call()
    db_caller.press("2")
    db_caller.press("2")
    db_caller.say("connect me now")
    db_caller.dial_ends("no-answer")
    db_caller.dial_ends("completed", duration="80")
    call = the_call(database, db_caller.call_sid)
    assert call.caller == CALLER_NUMBER and call.called == LINE_NUMBER
    assert call.language == "en"
    assert call.flow_hash and len(call.flow_hash) >= 8
    assert call.path == "main>reach>library"
    assert call.transferred_contact == "library"
    assert call.transferred_number == "+18048280450"  # the second line answered
    assert call.dial_outcome == "completed"
    assert call.outcome == "reached"
    assert events(database, db_caller.call_sid) == [
        ("menu", "main", None),
        ("key", "main", "2"),
        ("menu", "reach", None),
        ("key", "reach", "2"),
        ("menu", "library", None),
        ("speech", "library", "connect me now (0.91)"),
        ("dial", "library", "library +18048288709"),
        ("dial_result", "library", "no-answer library +18048288709"),
        ("dial", "library", "library +18048280450"),
        ("dial_result", "library", "completed library +18048280450"),
        ("hangup", "library", "goodbye"),
    ]


def test_the_status_callback_twice_makes_one_call_with_its_duration(
    db_caller: Caller, database: Database
) -> None:
    db_caller.call()
    db_caller.press("1")
    assert db_caller.hang_up(duration="95") == 204
    assert db_caller.hang_up(duration="95") == 204
    with database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 1
    call = the_call(database, db_caller.call_sid)
    assert call.duration_seconds == 95
    assert call.status == "completed"
    assert call.outcome == "listened"
    assert call.ended_at is not None
    first_end = call.ended_at
    # A late, different final status changes nothing either.
    db_caller.client.twilio(
        "/twilio/voice/status", db_caller.params(CallStatus="failed", CallDuration="3")
    )
    call = the_call(database, db_caller.call_sid)
    assert (call.status, call.duration_seconds, call.ended_at) == ("completed", 95, first_end)


def test_a_caller_who_hangs_up_in_the_greeting_hung_up_in_the_main_menu(
    db_caller: Caller, database: Database
) -> None:
    db_caller.call()
    db_caller.hang_up(duration="4")
    call = the_call(database, db_caller.call_sid)
    assert (call.outcome, call.duration_seconds, call.path) == ("hung-up", 4, "main")


def test_switching_to_spanish_is_recorded(db_caller: Caller, database: Database) -> None:
    db_caller.call()
    db_caller.press("9")
    db_caller.press("4")
    call = the_call(database, db_caller.call_sid)
    assert call.language == "es"
    assert call.path == "main>disagree"
    assert ("language", "main", "es") in events(database, db_caller.call_sid)


def test_press_8_queues_one_text_to_the_caller(db_caller: Caller, database: Database) -> None:
    db_caller.call()
    db_caller.press("2")
    heard = db_caller.press("8")
    assert heard.words[0] == "We will send you a text message in a moment."
    queued = outbox(database)
    assert len(queued) == 1
    text = queued[0]
    assert (text.kind, text.status, text.to_number, text.from_number) == (
        "sms",
        "pending",
        CALLER_NUMBER,
        LINE_NUMBER,
    )
    assert text.body.splitlines() == [
        "VCU Massey Second Opinion Line: the numbers you asked for. Reply STOP to opt out.",
        "Patient referral coordinator, VCU Massey: (804) 828-7999",
        "Patient Resource Library, VCU Massey: (804) 828-8709 or (804) 828-0450",
        "Cancer Information Service: 1-800-4-CANCER (1-800-422-6237)",
        "Medicare/Medicaid Hotline: (800) 638-6833",
        "At your local library, ask for the Directory of Medical Specialists or the AMA "
        "Medical Directory.",
    ]
    everyone = "coordinator,library,cancer_information_service,medicare_hotline,directories"
    assert ("text_queued", "reach", everyone) in events(database, db_caller.call_sid)


def test_a_call_back_asked_for_after_an_unanswered_transfer_is_recorded(
    db_caller: Caller, database: Database
) -> None:
    """Staff build their follow-up list from this event: who did not answer, and where."""
    db_caller.call()
    db_caller.press("2")
    db_caller.press("4")
    db_caller.press("1")
    db_caller.dial_ends("no-answer")
    heard = db_caller.press("2")
    assert heard.hangup and heard.words[0].startswith("Thank you. A staff member will call")
    recorded = events(database, db_caller.call_sid)
    assert ("callback_request", "medicare_hotline", "medicare_hotline") in recorded
    assert [kind for kind, _, _ in recorded].count("callback_request") == 1


def test_a_retried_webhook_does_not_queue_the_text_twice(
    db_caller: Caller, database: Database
) -> None:
    db_caller.call()
    db_caller.press("2")
    reach = db_caller.url
    db_caller.post(reach, Digits="8")
    db_caller.post(reach, Digits="8")  # Twilio retried the same request
    assert len(outbox(database)) == 1
    db_caller.press("3")
    db_caller.press("8")  # another menu, another text: this caller asked again
    assert [row.body.count("\n") for row in outbox(database)] == [5, 1]


def test_a_spanish_caller_gets_the_text_in_spanish(db_caller: Caller, database: Database) -> None:
    db_caller.call()
    db_caller.press("9")
    db_caller.press("2")
    db_caller.press("3")
    heard = db_caller.press("8")
    assert heard.words[0] == "En un momento le enviaremos un mensaje de texto."
    (text,) = outbox(database)
    assert text.body.splitlines() == [
        "Línea de Segunda Opinión de VCU Massey: los números que pidió. Responda STOP para "
        "cancelar.",
        "Servicio de Información sobre el Cáncer: 1-800-4-CANCER (1-800-422-6237)",
    ]


def test_no_text_is_queued_to_a_caller_who_opted_out(db_caller: Caller, database: Database) -> None:
    with database.session() as session:
        set_opt_out(session, CALLER_NUMBER, True, "STOP")
    db_caller.call()
    heard = db_caller.press("8")
    assert heard.words[0] == "Sorry, we can't send a text message to this phone."
    assert outbox(database) == []


def test_no_text_is_queued_to_a_number_that_cannot_take_texts(
    db_client: AppClient, database: Database
) -> None:
    for number in ("+18005551234", "+4930123456", "+266696687", "anonymous", ""):
        caller = Caller(db_client, caller=number)
        caller.call()
        heard = caller.press("8")
        assert heard.words[0] == "Sorry, we can't send a text message to this phone.", number
    assert outbox(database) == []


def test_the_recorder_says_when_recording_failed(database: Database) -> None:
    working = Recorder(database)
    working.call_event("CA" + "8" * 32, "menu", node="main")
    assert not working.failed
    broken = Recorder(Database("postgresql+psycopg://postgres@127.0.0.1:9/test"))
    broken.call_event("CA" + "8" * 32, "menu", node="main")
    assert broken.failed
    broken.database.dispose()


def test_no_text_is_queued_to_a_caller_whose_stop_the_database_does_not_have_yet(
    db_app: FastAPI, db_caller: Caller, database: Database
) -> None:
    # Another process on this machine took a STOP while the database was away: it waits in
    # that process's spool, where every process looks before texting.
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/down")
    other = Spool(db_app.state.settings.spool_dir, lambda: down, stores=STORES)
    try:
        assert (
            other.submit([OptOutChanged(CALLER_NUMBER, True, "STOP", utcnow())], durable=True)
            is Kept.DISK
        )
        db_caller.call()
        heard = db_caller.press("8")
        assert heard.words[0] == "Sorry, we can't send a text message to this phone."
        assert outbox(database) == []
    finally:
        other.close(timeout=1)
        down.dispose()


def test_records_still_waiting_are_written_when_the_app_stops(
    db_app: FastAPI, database: Database
) -> None:
    # The spool would wait half a minute for more; stopping the app writes what it holds. (No
    # periodic work meanwhile: the spool writes what it holds before its periodic work, and a
    # tick due just after the webhook would write the call before the app stops.)
    db_app.state.spool = Spool(
        db_app.state.settings.spool_dir, linger=30, stores=STORES, periodic_every=3600
    )
    params = {"CallSid": "CA" + "9" * 32, "From": CALLER_NUMBER, "To": LINE_NUMBER}
    url = PUBLIC_BASE + "/twilio/voice"
    headers = {
        "X-Twilio-Signature": twilio_signature(url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }

    def calls() -> int:
        with database.session(read_only=True) as session:
            return session.scalar(select(func.count()).select_from(Call)) or 0

    def beats() -> int:
        with database.session(read_only=True) as session:
            return session.scalar(select(func.count()).select_from(SpoolFence)) or 0

    async def serve_one_webhook() -> None:
        async with db_app.router.lifespan_context(db_app):
            # The spool's first pass (the opt-outs processes that are gone left, its fence's
            # beat) writes at once what is queued by its end: the webhook comes after the beat.
            deadline = time.monotonic() + 10
            while not beats():
                assert time.monotonic() < deadline, "the spool's first pass did not end"
                await anyio.sleep(0.01)
            transport = httpx.ASGITransport(app=db_app)
            async with httpx.AsyncClient(transport=transport) as client:
                response = await client.post(url, content=urlencode(params), headers=headers)
            assert response.status_code == 200
            assert calls() == 0

    anyio.run(serve_one_webhook)
    call = the_call(database, "CA" + "9" * 32)
    assert (call.caller, call.path) == (CALLER_NUMBER, "main")


@pytest.mark.parametrize("landline", ["anonymous", "+18005551234", "266696687"])
def test_a_phone_that_cannot_take_a_text_is_not_offered_one(
    db_client: AppClient, database: Database, landline: str
) -> None:
    """A withheld number, a toll-free line or junk: the menus do not offer "press 8"; after an
    unanswered transfer the caller hears the number again, a person and a call back instead."""
    caller = Caller(db_client, call_sid="CA" + "d" * 32, caller=landline)
    offered = [line for line in caller.call().words if "press 8" in line]
    assert offered == []
    caller.press("2")
    caller.press("4")
    caller.press("1")  # the Medicare hotline
    after = caller.dial_ends("no-answer").words
    assert not any("press 8" in line for line in after)
    assert any("1, 800, 6 3 8, 6 8 3 3" in line for line in after), after
    assert any("press 0" in line for line in after) and any("call back" in w for w in after)
    heard = caller.press("8")  # pressed anyway: the number, not a promise
    assert CANNOT_TEXT in heard.words
    assert outbox(database) == []


def test_a_mobile_is_offered_the_text(db_caller: Caller) -> None:
    assert any("press 8" in line for line in db_caller.call().words)
