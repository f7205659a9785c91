"""`/staff/follow-ups`: the worklist as navigators, viewers and admins see it, on SQLite and
PostgreSQL: items per number, claim, note, audited reveal, close, and the count in the
navigation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.config import get_settings
from service.db import Database
from service.followups.sweep import run_sweep, sweep_follow_ups
from service.models import AuditEntry, FollowUp, StaffUser
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import (
    LINE,
    NOW,
    VIEWER,
    Clock,
    password_hash,
    post_form,
    record_call,
    signed_in,
)
from tests.support import AppClient

NAVIGATOR = "nina"
ARROW = "\u203a"
CALLER = "+18045551001"
COORDINATOR = ("coordinator", "+18048287999")


@pytest.fixture
def navigator(staff_app: FastAPI, database: Database) -> str:
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
    return NAVIGATOR


def missed_call(recorder: Recorder, sid: str, at_minutes: float, status: str = "no-answer") -> None:
    record_call(
        recorder,
        sid,
        CALLER,
        NOW - timedelta(hours=3) + timedelta(minutes=at_minutes),
        keys=[("main", "2", "reach"), ("reach", "1", "")],
        transfer=(*COORDINATOR, status),
    )


def sweep(database: Database, clock: Clock) -> None:
    with database.session() as session:
        sweep_follow_ups(session, clock())


def item_id(database: Database) -> int:
    with database.session() as session:
        return session.scalars(select(FollowUp.id)).one()


def test_the_spool_runs_the_sweep(staff_app: FastAPI) -> None:
    assert run_sweep in staff_app.state.spool.periodic


def test_a_navigator_works_an_item_from_missed_call_to_closed(
    client: AppClient, navigator: str, recorder: Recorder, database: Database, clock: Clock
) -> None:
    missed_call(recorder, "CA" + "1" * 32, 0, "busy")
    missed_call(recorder, "CA" + "2" * 32, 30, "no-answer")
    sweep(database, clock)
    signed_in(client, navigator)

    page = client.get("/staff/follow-ups")
    assert page.status_code == 200
    assert 'Follow-ups <span class="count">(1 open)</span>' in page.text
    rows = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page.text, re.S)
    assert len(rows) == 1  # one item for the number, not one per call
    row = rows[0]
    assert "•••-•••-1001" in row
    assert "Transfer not answered" in row
    assert "Patient referral coordinator, VCU Massey" in row
    assert '<td data-label="Attempts" class="num">2</td>' in row
    assert "nobody yet" in row
    assert "2026-11-24 12:00" in row and "2026-11-24 12:30" in row
    assert CALLER not in page.text and CALLER[2:] not in page.text

    ident = item_id(database)
    item_page = f"/staff/follow-ups/{ident}"
    page = client.get(item_page)
    assert "Follow-up: •••-•••-1001" in page.text
    assert page.text.count("/staff/calls/") == 2  # the number's history: both calls
    assert "busy" in page.text and "no-answer" in page.text
    # The path in the menus' names, not node ids.
    assert f"Main menu {ARROW} Find another doctor" in page.text and "main&gt;" not in page.text

    answer = post_form(client, item_page, f"{item_page}/claim")
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert "You have claimed this follow-up." in page.text
    assert f"claimed by {NAVIGATOR}" in page.text

    answer = post_form(client, item_page, f"{item_page}/notes", note="Tried at 9, no answer.")
    assert answer.status_code == 303
    page = client.get(item_page)
    assert "Tried at 9, no answer." in page.text
    assert f"{NAVIGATOR}, 2026-11-24" in page.text

    page = post_form(client, item_page, f"{item_page}/reveal")
    assert page.status_code == 200
    assert f'<strong class="revealed"><a href="tel:{CALLER}">{CALLER}</a></strong>' in page.text
    with database.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).one()
    assert audit.actor == NAVIGATOR
    assert audit.detail == f"number of follow-up {ident} (•••-•••-1001)"
    assert CALLER not in (audit.detail or "")

    answer = post_form(client, item_page, f"{item_page}/close", outcome="reached")
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert "The follow-up is closed." in page.text
    assert f"Reached, by {NAVIGATOR}" in page.text
    assert "Claim" not in page.text
    page = client.get("/staff/follow-ups")
    assert "Nobody is waiting for a call back." in page.text
    assert "(0 open)" in page.text
    page = client.get("/staff/follow-ups?show=closed")
    assert "Reached" in page.text and "•••-•••-1001" in page.text


def test_closing_needs_an_outcome_and_a_closed_item_takes_no_more(
    client: AppClient, navigator: str, recorder: Recorder, database: Database, clock: Clock
) -> None:
    missed_call(recorder, "CA" + "3" * 32, 0)
    sweep(database, clock)
    signed_in(client, navigator)
    item_page = f"/staff/follow-ups/{item_id(database)}"
    page = post_form(client, item_page, f"{item_page}/close", outcome="")
    assert page.status_code == 400
    assert "Choose how the follow-up ended" in page.text
    page = post_form(client, item_page, f"{item_page}/notes", note="   ")
    assert page.status_code == 400
    assert "Write the note before adding it." in page.text
    assert (
        post_form(client, item_page, f"{item_page}/close", outcome="wrong-number").status_code
        == 303
    )
    token_page = client.get("/staff/follow-ups")
    page = post_form(client, "/staff/follow-ups", f"{item_page}/claim")
    assert token_page.status_code == 200
    assert page.status_code == 400
    assert "This follow-up is closed already." in page.text


def test_a_viewer_reads_the_list_but_cannot_work_it(
    client: AppClient, recorder: Recorder, database: Database, clock: Clock
) -> None:
    missed_call(recorder, "CA" + "4" * 32, 0)
    sweep(database, clock)
    signed_in(client, VIEWER)
    item_page = f"/staff/follow-ups/{item_id(database)}"
    page = client.get(item_page)
    assert page.status_code == 200
    assert "Reveal the number" not in page.text and ">Claim<" not in page.text
    for action in ("claim", "reveal", "close"):
        answer = post_form(client, item_page, f"{item_page}/{action}", outcome="reached")
        assert answer.status_code == 403
        assert "for navigators and administrators" in answer.text
    with database.session() as session:
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).all() == []


def test_a_navigator_is_not_an_admin(client: AppClient, navigator: str) -> None:
    signed_in(client, navigator)
    assert client.get("/staff/audit").status_code == 403
    assert client.get("/staff/admin").status_code == 403


def test_an_unknown_item_is_a_404_page(client: AppClient, navigator: str) -> None:
    signed_in(client, navigator)
    for path in ("/staff/follow-ups/999", "/staff/follow-ups/abc"):
        page = client.get(path)
        assert page.status_code == 404
        assert "Follow-up not found" in page.text


def test_an_item_closes_itself_when_the_number_reaches_a_person(
    client: AppClient, navigator: str, recorder: Recorder, database: Database, clock: Clock
) -> None:
    missed_call(recorder, "CA" + "5" * 32, 0)
    sweep(database, clock)
    record_call(
        recorder, "CA" + "6" * 32, CALLER, NOW - timedelta(minutes=10),
        transfer=(*COORDINATOR, "completed"),
    )  # fmt: skip
    sweep(database, clock)
    signed_in(client, navigator)
    page = client.get("/staff/follow-ups?show=closed")
    assert "Reached a person on a later call" in page.text
    assert "system" in page.text


@pytest.fixture
def runner(database: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()  # type: ignore[misc]
    get_settings.cache_clear()


def test_phoneline_staff_add_a_navigator(runner: CliRunner, database: Database) -> None:
    result = runner.invoke(
        cli_app,
        ["staff", "add", "nora", "--role", "navigator", "--password-stdin"],
        input="a long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert "Added navigator nora." in result.output
    with database.session() as session:
        assert (
            session.scalars(select(StaffUser.role).where(StaffUser.username == "nora")).one()
            == "navigator"
        )


def test_a_texter_who_asked_for_a_person_is_on_the_list_with_their_texts(
    client: AppClient, navigator: str, recorder: Recorder, database: Database, clock: Clock
) -> None:
    texter = "+18045557001"
    with database.session() as session:
        save_conversation(session, texter, LINE, node="reach", language="es", now=NOW)
    recorder.message_received(
        "SM" + "1" * 32, texter, LINE, "Alguien me llama al 804 555 7001?",
        intent="asked_for_person", at=NOW - timedelta(minutes=5),
    )  # fmt: skip
    sweep(database, clock)
    signed_in(client, navigator)
    page = client.get("/staff/follow-ups")
    row = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page.text, re.S)[0]
    assert "•••-•••-7001" in row
    assert "Asked for a person by text" in row
    assert "Find another doctor (text menu)" in row
    assert '<td data-label="Language">Spanish</td>' in row
    page = client.get(f"/staff/follow-ups/{item_id(database)}")
    assert "Alguien me llama al •••-•••-7001?" in page.text  # the texter's words, masked
    assert "asked for person" in page.text
    assert texter not in page.text and "555 7001" not in page.text


def text(client: AppClient, phone: str, body: str, sid: str) -> str:
    """A text through the signed SMS webhook; the line's answer."""
    params = {"MessageSid": sid, "From": phone, "To": LINE, "Body": body}
    response = client.twilio("/twilio/sms", params)
    assert response.status_code == 200, response.text
    return response.text


def test_a_crisis_text_and_a_crisis_said_on_a_call_are_urgent_and_first(
    client: AppClient, navigator: str, recorder: Recorder, database: Database
) -> None:
    from service.models import utcnow
    from tests.voice.caller import Caller

    now = utcnow()
    record_call(
        recorder, "CA" + "1" * 32, CALLER, now - timedelta(hours=3),
        keys=[("main", "2", "reach"), ("reach", "1", "")], transfer=(*COORDINATOR, "busy"),
    )  # fmt: skip  (waiting longest)
    texter, speaker = "+18045557002", "+18045557003"
    answer = text(client, texter, "i dont want to live anymore", "SM" + "a" * 32)
    assert "988" in answer and answer.index("988") < answer.index("911")
    caller = Caller(client, call_sid="CA" + "b" * 32, caller=speaker, called=LINE)
    caller.call()
    heard = caller.say("me duele mucho el pecho")
    assert heard.words[0].startswith("Si es una emergencia, cuelgue y marque el 9 1 1")
    with database.session() as session:
        sweep_follow_ups(session, utcnow())
    signed_in(client, navigator)
    page = client.get("/staff/follow-ups")
    rows = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page.text, re.S)
    assert len(rows) == 3
    # Urgent first (in the order they came), then the missed transfer that waited longest.
    urgent = [row for row in rows if '<span class="tag urgent">Urgent</span>' in row]
    assert rows[:2] == urgent
    assert any("suicide or self-harm" in row and "•••-•••-7002" in row for row in urgent)
    assert any("medical emergency" in row and "•••-•••-7003" in row for row in urgent)
    assert "•••-•••-1001" in rows[2] and "Urgent" not in rows[2]
    with database.session() as session:
        item = session.scalars(select(FollowUp).where(FollowUp.phone == texter)).one()
    page = client.get(f"/staff/follow-ups/{item.id}")
    assert "Urgent: this number wrote or said words about suicide or self-harm" in page.text


def test_thanks_and_ok_never_open_a_follow_up(
    client: AppClient, navigator: str, database: Database
) -> None:
    """Two texts in a day the line did not understand open an item; courtesy is understood."""
    from service.models import utcnow

    texter = "+18045557004"
    text(client, texter, "hi", "SM" + "c" * 32)
    for n, body in enumerate(["thanks", "ok", "👍", "gracias"]):
        answer = text(client, texter, body, f"SM{n:032d}")
        assert "911" not in answer and "understand" not in answer and "entend" not in answer
    with database.session() as session:
        sweep_follow_ups(session, utcnow())
        assert session.scalars(select(FollowUp)).all() == []
