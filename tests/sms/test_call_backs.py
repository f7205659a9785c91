"""What became of a call-back (CALL): the line places it with a status callback and a dial
action that name its outbox row; Twilio's signed reports say whether the texter answered and
whether the person it put them through to did; a call-back nobody answered goes on the
follow-up worklist, and one that reached a person closes the number's item (SQLite and
PostgreSQL; a fake Twilio REST API over real HTTP)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.main import create_app
from service.models import OutboxMessage, utcnow
from tests.sms.conftest import LINE, TEXTER, FakeTwilio, Texter
from tests.sms.test_worker import worker_for
from tests.support import PUBLIC_BASE, AppClient, app_client

CALL_SID = "CA" + "c" * 32


@pytest.fixture
def public(settings: Settings, fake_twilio: FakeTwilio) -> Iterator[AppClient]:
    """The app as deployed: Twilio reaches it at PUBLIC_BASE_URL."""
    deployed = settings.model_copy(
        update={"public_base_url": PUBLIC_BASE, "twilio_api_base": fake_twilio.url}
    )
    with app_client(create_app(deployed)) as client:
        yield client


def placed_call_back(
    public: AppClient, database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> tuple[int, str, str]:
    """A texter sends CALL; the worker places the call. (row id, status callback, dial action)."""
    Texter(public).send("CALL")
    assert worker_for(database, settings, fake_twilio).run_once().sent == 1
    [request] = fake_twilio.calls()
    with database.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
    action = re.search(r'<Dial action="([^"]+)"', request.form["Twiml"])
    assert action is not None
    return row.id, request.form["StatusCallback"], unescape(action.group(1))


def report(public: AppClient, url: str, **fields: str) -> str:
    response = public.twilio(
        url,
        {"CallSid": CALL_SID, "From": LINE, "To": TEXTER, "Direction": "outbound-api", **fields},
    )
    assert response.status_code in (200, 204), response.text
    return response.text


def swept(database: Database) -> list[worklist.ItemRow]:
    with database.session() as session:
        sweep_follow_ups(session, utcnow() + timedelta(seconds=1))
    with database.session() as session:
        return worklist.list_items(session)


def row(database: Database, outbox_id: int) -> OutboxMessage:
    with database.session() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def test_a_call_back_names_its_row_in_the_status_callback_and_the_dial_action(
    public: AppClient, database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    outbox_id, status_url, action = placed_call_back(public, database, settings, fake_twilio)
    assert status_url == f"{PUBLIC_BASE}/twilio/call-back/status?outbox={outbox_id}"
    assert action == (
        f"{PUBLIC_BASE}/twilio/call-back/dial?outbox={outbox_id}&contact=coordinator&lang=en"
    )
    # The number and the goodbye come from the dial's action now, not after the dial.
    twiml = fake_twilio.calls()[0].form["Twiml"]
    assert twiml.endswith("</Dial></Response>")


def test_a_call_back_the_texter_did_not_answer_goes_on_the_worklist(
    public: AppClient, database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    outbox_id, status_url, _ = placed_call_back(public, database, settings, fake_twilio)
    report(public, status_url, CallStatus="ringing")  # not final: nothing said yet
    assert row(database, outbox_id).call_status is None
    assert swept(database) == []
    report(public, status_url, CallStatus="no-answer", CallDuration="0")
    report(public, status_url, CallStatus="no-answer", CallDuration="0")  # Twilio repeats
    assert row(database, outbox_id).call_status == "no-answer"
    [item] = swept(database)
    assert item.item.phone == TEXTER
    assert item.reasons == ["Call-back failed or not answered"]


def test_a_dial_nobody_answered_reads_the_number_and_files_the_texter_then_one_answered_closes(
    public: AppClient, database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    outbox_id, status_url, action = placed_call_back(public, database, settings, fake_twilio)
    heard = report(public, action, CallStatus="in-progress", DialCallStatus="busy")
    assert "You can call the patient referral coordinator" in heard
    assert '<prosody rate="85%">8 0 4,' in heard
    assert heard.count("8 0 4,") == 2  # said, then again
    assert "Goodbye." in heard
    assert "<Dial" not in heard
    report(public, status_url, CallStatus="completed", CallDuration="40")  # the texter answered
    assert (row(database, outbox_id).call_status, row(database, outbox_id).dial_status) == (
        "completed",
        "busy",
    )
    [item] = swept(database)
    assert item.item.phone == TEXTER

    # The texter asks again; this time the coordinator picks up: the item closes itself.
    fake_twilio.requests.clear()
    Texter(public).send("CALL")
    assert worker_for(database, settings, fake_twilio).run_once().sent == 1
    second = re.search(r'<Dial action="([^"]+)"', fake_twilio.calls()[0].form["Twiml"])
    assert second is not None
    report(public, unescape(second.group(1)), CallStatus="in-progress", DialCallStatus="completed")
    assert swept(database) == []
    with database.session() as session:
        closed = worklist.list_items(session, closed=True)
    assert [(c.item.phone, c.item.outcome) for c in closed] == [(TEXTER, "reached-a-person")]


def test_a_dial_action_the_line_cannot_answer_still_puts_the_texter_through(
    public: AppClient,
) -> None:
    heard = report(
        public,
        "/twilio/call-back/dial?outbox=1&contact=nobody&lang=en",
        CallStatus="in-progress",
        DialCallStatus="no-answer",
    )
    assert "<Number>+18048287999</Number>" in heard  # the fallback: the coordinator
    unsigned = public.post(
        "/twilio/call-back/dial?outbox=1", data={"CallSid": CALL_SID, "DialCallStatus": "busy"}
    )
    assert unsigned.status_code == 403
