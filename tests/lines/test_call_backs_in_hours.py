"""A call back asked for while the coordinator is closed (CALL, LLAMAME) waits until it opens,
spread over the first half hour, and the texter is told when, in their language; one asked for
while it is open goes out at once. Signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy import select

from service.channels.sender import TwilioSender
from service.config import Settings
from service.db import Database
from service.lines.closures import add_closure, remove_closure
from service.lines.revisions import line_named, publish_text
from service.models import OutboxKind, OutboxMessage
from service.outbound.outbox import enqueue
from service.outbound.worker import Worker
from service.spool.spool import Spool
from service.stores import STORES
from service.texts.opening import spread_out, wait_for_opening
from tests.lines.conftest import shipped_text
from tests.lines.test_two_lines import SHIPPED_NUMBER, app  # noqa: F401
from tests.ops.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, running_fake_twilio
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
    app: FastAPI,  # noqa: F811
    database: Database,
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


def test_a_call_back_whose_contact_closes_before_it_is_placed_waits_again(
    app: FastAPI,  # noqa: F811
    database: Database,
    tmp_path: Path,
) -> None:
    """Queued while the coordinator was open; a snow day is added before the worker places
    it: the worker does not call the texter (nor the closed office), it waits for the next
    opening; once the closure is taken back it is placed."""
    zone = ZoneInfo("America/New_York")
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=zone)  # in the hours, in the past
    with database.session() as session:
        publish_text(session, "second-opinion", with_hours(), author="test", message="hours")
        line_id = line_named(session, "second-opinion").id
        row_id = enqueue(
            session, OutboxKind.CALL, "+18045550813", "<Response/>", from_number=SHIPPED_NUMBER,
            line_id=line_id, contact="coordinator", now=tuesday,
        ).id  # fmt: skip
        snow_day = add_closure(session, "second-opinion", "coordinator", "2026-11-24", by="test")
    book = app.state.book
    assert book.refresh()
    with running_fake_twilio() as fake:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
            twilio_api_base=fake.base_url, twilio_from_number=SHIPPED_NUMBER,
        )  # fmt: skip
        spool = Spool(tmp_path / "worker-spool", lambda: database, stores=STORES)
        worker = Worker(
            TwilioSender(settings, timeout=2), settings, spool, database=database,
            hold=wait_for_opening(book, clock=lambda: tuesday),
        )  # fmt: skip
        try:
            report = worker.run_once()
            assert (report.postponed, report.sent) == (1, 0)
            assert fake.posts("/Calls.json") == []
            with database.session(read_only=True) as session:
                row = session.get(OutboxMessage, row_id)
                assert row is not None and row.status == "pending" and row.attempts == 0
                wednesday = datetime(2026, 11, 25, 8, 0, tzinfo=zone)
                assert row.next_attempt_at == spread_out(wednesday, "+18045550813")
            with database.session() as session:
                remove_closure(session, snow_day.id)
            assert book.refresh()
            report = worker.run_once()
            assert report.sent == 1 and len(fake.posts("/Calls.json")) == 1
        finally:
            spool.close()
