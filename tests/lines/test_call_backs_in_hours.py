"""A call back asked for while the coordinator is closed (CALL, LLAMAME) waits until it opens,
spread over the first half hour, and the texter is told when, in their language; one asked for
while it is open goes out at once. Signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.lines.closures import add_closure
from service.lines.revisions import publish_text
from service.models import OutboxMessage
from service.texts.router import spread_out
from tests.lines.conftest import shipped_text
from tests.lines.test_two_lines import SHIPPED_NUMBER, app  # noqa: F401
from tests.sms.conftest import Texter
from tests.support import app_client

HOURS = """    hours:
      timezone: America/New_York
      open:
        - {days: [mon, tue, wed, thu, fri, sat, sun], from: "08:00", to: "17:00"}
      description: {en: every day 8 to 5, es: todos los días de 8 a 5}
"""


def with_hours() -> str:
    """The shipped flow, its coordinator keeping hours every day from 8 to 5."""
    text = shipped_text()
    anchor = '      - number: "+18048287999"\n        display: (804) 828-7999\n'
    assert text.count(anchor) == 1
    return text.replace(anchor, anchor + HOURS)


def test_a_call_back_asked_for_while_closed_waits_for_the_opening_and_says_when(
    app: FastAPI, database: Database  # noqa: F811
) -> None:
    zone = ZoneInfo("America/New_York")
    today = datetime.now(UTC).astimezone(zone).date()
    with database.session() as session:
        publish_text(session, "second-opinion", with_hours(), author="test", message="hours")
        add_closure(session, "second-opinion", "coordinator", today.isoformat(), by="test")
    assert app.state.book.refresh()
    opening = datetime.combine(today + timedelta(days=1), time(8), zone)
    with app_client(app) as client:
        english = Texter(client, phone="+18045550811", line=SHIPPED_NUMBER)
        english.reply("hi")
        said = english.reply("CALL")
        assert "is closed now. We will call you tomorrow after 8 a.m." in said, said
        spanish = Texter(client, phone="+18045550812", line=SHIPPED_NUMBER)
        spanish.reply("hola")
        said = spanish.reply("LLAMAME")
        assert "Le llamaremos mañana a partir de las 8 de la mañana" in said, said
        assert app.state.spool.drain(15)
    with database.session(read_only=True) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "call")).all()
    assert len(rows) == 2
    for row in rows:
        assert row.status == "pending"
        assert opening <= row.next_attempt_at < opening + timedelta(minutes=30)
        assert row.next_attempt_at == spread_out(opening, row.to_number)


def test_call_backs_after_one_opening_are_spread_over_its_first_half_hour() -> None:
    opening = datetime(2026, 12, 8, 13, 0, tzinfo=UTC)
    minutes = {
        (spread_out(opening, f"+1804555{n:04d}") - opening).seconds // 60  # type: ignore[operator]
        for n in range(200)
    }
    assert min(minutes) == 0 and max(minutes) == 29 and len(minutes) == 30
    assert spread_out(None, "+18045550100") is None
