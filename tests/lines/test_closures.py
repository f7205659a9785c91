"""Closures kept by staff (`phoneline hours close|list|reopen`): a closed coordinator is never
dialled; a caller hears that it is closed, the closure's message and when it opens again, in
English and Spanish; the other line is not touched; the change is live once the line book
refreshes (every second in a running service), without publishing, and audited. Signed
webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli
from service.db import Database
from service.models import AuditEntry
from tests.lines.test_two_lines import (  # noqa: F401
    SHIPPED_NUMBER,
    TRIALS_NUMBER,
    app,
    call_to,
)
from tests.support import AppClient, app_client

HOLIDAY_EN = "We are closed today for the holiday."
HOLIDAY_ES = "Hoy cerramos por el feriado."


@pytest.fixture
def client(app: FastAPI) -> Iterator[AppClient]:  # noqa: F811
    with app_client(app) as client:
        yield client


def today(app: FastAPI) -> str:  # noqa: F811
    zone = ZoneInfo(app.state.settings.timezone)
    return datetime.now(UTC).astimezone(zone).date().isoformat()


def press_0(client: AppClient, number: str, *first: str) -> str:
    """What a caller who presses 0 hears, and "<Dial" when they are put through."""
    caller = call_to(client, number)
    caller.call()
    for key in first:
        caller.press(key)
    heard = caller.press("0")
    return heard.text + ("\n<Dial" if heard.dial is not None else "")


def test_a_closed_coordinator_is_not_dialled_and_callers_hear_when_it_opens(
    client: AppClient,
    app: FastAPI,  # noqa: F811
    database: Database,
) -> None:
    assert "<Dial" in press_0(client, SHIPPED_NUMBER)
    runner = CliRunner()
    closed = runner.invoke(
        cli, ["hours", "close", "coordinator", "--on", today(app), "--line", "second-opinion",
              "--message-en", HOLIDAY_EN, "--message-es", HOLIDAY_ES],
    )  # fmt: skip
    assert closed.exit_code == 0, closed.output
    assert f"second-opinion: coordinator closed {today(app)}" in closed.output
    assert app.state.book.refresh()

    heard = press_0(client, SHIPPED_NUMBER)
    assert "<Dial" not in heard
    assert "is closed right now." in heard and HOLIDAY_EN in heard
    assert "They are open again tomorrow at midnight." in heard
    spanish = press_0(client, SHIPPED_NUMBER, "9")
    assert "<Dial" not in spanish and HOLIDAY_ES in spanish
    assert "Vuelve a abrir mañana a la medianoche." in spanish
    assert "<Dial" in press_0(client, TRIALS_NUMBER)  # another line's coordinator

    listed = runner.invoke(cli, ["hours", "list"]).output
    closure_id = listed.split("\t")[0]
    assert f"\tsecond-opinion\tcoordinator\t{today(app)}\t{HOLIDAY_EN}" in listed
    reopened = runner.invoke(cli, ["hours", "reopen", closure_id])
    assert reopened.exit_code == 0, reopened.output
    assert app.state.book.refresh()
    assert "<Dial" in press_0(client, SHIPPED_NUMBER)
    with database.session(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("closure%"))
        ).all()
    assert actions == ["closure", "closure-removed"]


@pytest.mark.parametrize(
    ("when", "said"),
    [
        ("12-25", "every December 25"),
        ("4th thu of nov", "the fourth Thursday of November, every year"),
        ("last mon of May", "the last Monday of May, every year"),
    ],
)
def test_yearly_closures_are_read_and_said_plainly(client: AppClient, when: str, said: str) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["hours", "close", "coordinator", "--on", when])
    assert added.exit_code == 0, added.output
    assert said in added.output and said in runner.invoke(cli, ["hours", "list"]).output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nobody", "--on", "2026-12-24"], "has no contact 'nobody'"),
        (["coordinator", "--on", "tomorrow"], "is not a day"),
        (["coordinator", "--on", "02-30"], "is not a day of the year"),
        (["coordinator", "--on", "5th thu of nov"], "is not a day"),
        (["coordinator", "--on", "2026-12-24", "--from", "25:00"], "is not a time of day"),
        (["coordinator", "--on", "2026-12-24", "--line", "no-such-line"], "no-such-line"),
        (["coordinator", "--on", "2026-12-24", "--message-en", "x" * 301], "at most 300"),
    ],
)
def test_a_closure_that_cannot_be_is_refused_and_nothing_changes(
    client: AppClient, args: list[str], error: str
) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli, ["hours", "close", *args])
    assert refused.exit_code == 1 and error in refused.output, refused.output
    assert "No closures" in runner.invoke(cli, ["hours", "list"]).output
    assert runner.invoke(cli, ["hours", "reopen", "99"]).exit_code == 1


def test_staff_add_and_remove_closures_at_staff_hours_and_see_the_next_14_days(
    client: AppClient,
    app: FastAPI,  # noqa: F811
    database: Database,
) -> None:
    from service.models import StaffUser
    from service.staff.auth import limit_to_lines
    from tests.staff.conftest import csrf_of, password_hash, post_form, signed_in

    with database.session() as session:
        for name, role in (("nina", "navigator"), ("vic", "viewer"), ("tia", "navigator")):
            session.add(StaffUser(username=name, password_hash=password_hash(), role=role))
        session.flush()
        limit_to_lines(session, "tia", ["clinical-trials"])
    with app_client(app) as viewer, app_client(app) as trials_only:
        signed_in(client, "nina")
        signed_in(viewer, "vic")
        signed_in(trials_only, "tia")
        page = client.get("/staff/hours")
        assert page.status_code == 200 and "No closures." in page.text
        added = client.post(
            "/staff/hours/closures",
            data={"csrf_token": csrf_of(page), "line": "second-opinion", "contact": "coordinator",
                  "on": today(app), "message_en": HOLIDAY_EN},
        )  # fmt: skip
        assert added.status_code == 303
        page = client.get(added.headers["location"])
        assert "The closure is added" in page.text
        assert f"closed ({HOLIDAY_EN})" in page.text  # today, among the next 14 days
        assert app.state.book.refresh()
        assert "<Dial" not in press_0(client, SHIPPED_NUMBER)
        bad = post_form(client, "/staff/hours", "/staff/hours/closures",
                        line="second-opinion", contact="coordinator", on="someday")  # fmt: skip
        assert bad.status_code == 400 and "is not a day" in bad.text

        seen = viewer.get("/staff/hours").text
        assert HOLIDAY_EN in seen and "Add a closure" not in seen
        refused = viewer.post(
            "/staff/hours/closures", data={"csrf_token": csrf_of(viewer.get("/staff/hours"))}
        )
        assert refused.status_code == 403
        assert HOLIDAY_EN not in trials_only.get("/staff/hours").text
        closure_id = page.text.split("/staff/hours/closures/")[1].split("/")[0]
        other = post_form(trials_only, "/staff/hours", f"/staff/hours/closures/{closure_id}/remove")
        assert other.status_code == 404

        removed = post_form(client, "/staff/hours", f"/staff/hours/closures/{closure_id}/remove")
        assert removed.status_code == 303
        assert "No closures." in client.get("/staff/hours").text
    with database.session(read_only=True) as session:
        audited = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action.like("closure%"))
        ).all()
    assert audited == ["nina", "nina"]


def test_no_way_of_asking_reaches_a_closed_coordinator_and_a_message_can_be_left(
    client: AppClient,
    app: FastAPI,  # noqa: F811
) -> None:
    """0, the menu's "be connected now", the words "talk to someone", and three silences at
    the start (which put a caller through to a person) never dial the closed coordinator; the
    caller can leave a message instead, in either language."""
    closed = CliRunner().invoke(cli, ["hours", "close", "coordinator", "--on", today(app),
                                      "--line", "second-opinion"])  # fmt: skip
    assert closed.exit_code == 0, closed.output
    assert app.state.book.refresh()
    asks: list[list[tuple[str, str]]] = [
        [("key", "0")],
        [("key", "2"), ("key", "1"), ("key", "1")],
        [("words", "I want to talk to someone")],
        [("silence", "")] * 3,
        [("key", "9"), ("words", "quiero hablar con alguien")],
    ]
    for n, ask in enumerate(asks):
        caller = call_to(client, SHIPPED_NUMBER)
        caller.call_sid = f"CA{n + 700:032d}"
        heard = caller.call()
        for kind, value in ask:
            if kind == "key":
                heard = caller.press(value)
            elif kind == "words":
                heard = caller.say(value)
            else:
                heard = caller.silence()
        assert heard.dial is None and caller.dialed == [], (ask, heard.text)
        assert "is closed right now" in heard.text or "está cerrado" in heard.text, heard.text
        assert "They are open again" in heard.text or "Vuelve a abrir" in heard.text
        message = caller.press("3")
        assert message.record is not None, (ask, message.text)
        left = caller.post(caller.url, RecordingSid=f"RE{n + 700:032d}", RecordingDuration="9")
        assert left.hangup
        assert "We got your message" in left.text or "Recibimos su mensaje" in left.text
        assert "tomorrow after midnight" in left.text or "mañana a partir de la medianoche" in (
            left.text
        )
