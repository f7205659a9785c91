"""With the database down (a corrupted SQLite file) a texter still gets the coordinator's number,
and a STOP is confirmed, journaled, obeyed and applied once the database is back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service import migrate
from service.config import Settings
from service.db import Database, set_database
from service.lines.book import EMPTY
from service.main import create_app
from service.models import OptOut, OutboxKind, OutboxMessage
from service.optouts.store import OptOutChanged, is_opted_out
from service.outbound.outbox import enqueue
from service.spool.codec import decode
from service.spool.segments import read_lines
from service.spool.spool import Spool
from service.stores import STORES
from tests.db.test_failures import replace_with_garbage
from tests.sms.conftest import LINE, TEXTER, FakeTwilio, Texter, make_settings
from tests.sms.test_worker import worker_for
from tests.support import app_client


class Outage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def corrupt(self) -> None:
        replace_with_garbage(self.path, os.urandom(max(self.path.stat().st_size, 8192)))

    def restore(self) -> None:
        # The shared-memory file first: a connection that opened an empty file at the path
        # meanwhile would take the old one over and truncate it under the connections of the
        # process that still map it (SIGBUS).
        for suffix in ("-shm", "-wal", ""):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        migrate.upgrade(self.url)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[Outage, Database, Settings]]:
    outage = Outage(tmp_path / "phoneline.db")
    migrate.upgrade(outage.url)
    database = Database(outage.url)
    previous = set_database(database)
    try:
        yield outage, database, make_settings(outage.url, tmp_path / "var")
    finally:
        set_database(previous)
        database.dispose()


def opt_out_state(database: Database) -> bool | None:
    with database.session() as session:
        if not session.scalar(select(func.count()).where(OptOut.phone == TEXTER)):
            return None
        return is_opted_out(session, TEXTER, LINE)


def spooled_opt_outs(settings: Settings) -> list[tuple[str, bool, str | None]]:
    """The opt-outs waiting in the spool's durable stream (on disk, for every process)."""
    found = []
    for path in sorted(settings.spool_dir.glob("durable-*.spool")):
        for _, line in read_lines(path):
            for record in decode(line)[1]:
                if isinstance(record, OptOutChanged):
                    found.append((record.phone, record.opted_out, record.keyword))
    return found


def app_with_a_patient_spool(settings: Settings) -> FastAPI:
    """The app, its spool trying the database again only when drained (so that a test can look
    at what waits)."""
    app = create_app(settings)
    app.state.spool = Spool(settings.spool_dir, retry_delays=(60,), linger=0, stores=STORES)
    return app


def test_a_text_gets_the_coordinators_number_and_a_stop_is_never_lost(
    outage: tuple[Outage, Database, Settings], fake_twilio: FakeTwilio
) -> None:
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        assert "1 Why a second opinion" in texter.reply("hi")
        broken.corrupt()

        [fixed] = texter.send("2")
        assert "not available right now" in fixed
        assert "(804) 828-7999" in fixed

        [confirmation] = texter.send("STOP")
        assert "No more messages will be sent" in confirmation
        assert spooled_opt_outs(settings) == [(TEXTER, True, "STOP")]
        assert app.state.spool.healthy, "on disk: /readyz stays ready as far as the spool goes"

        # Still down: the spool is read before anything is sent.
        assert texter.send("hi") == []
        assert worker_for(database, settings, fake_twilio).run_once().handled == 0

        broken.restore()
        assert app.state.spool.drain(10)
        assert opt_out_state(database) is True
        assert spooled_opt_outs(settings) == [], "written, and gone from the spool"
        assert texter.send("hi") == []
        assert "subscribed" in texter.reply("START")
        assert opt_out_state(database) is False
    assert fake_twilio.requests == []


def test_a_stop_the_database_does_not_have_yet_is_obeyed_by_the_worker(
    outage: tuple[Outage, Database, Settings], fake_twilio: FakeTwilio
) -> None:
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        broken.corrupt()
        [confirmation] = texter.send("parar")
        assert "No le enviaremos más mensajes" in confirmation
        broken.restore()
        # Queued after the database came back, before the spool wrote the STOP.
        with database.session() as session:
            queued = enqueue(session, OutboxKind.SMS, TEXTER, "numbers", from_number=LINE).id
        report = worker_for(database, settings, fake_twilio).run_once()
        assert report.sent == 0 and report.suppressed == 1
        assert fake_twilio.requests == []
        with database.session() as session:
            assert session.get(OutboxMessage, queued).status == "suppressed"  # type: ignore[union-attr]
        assert app.state.spool.drain(10)
    assert opt_out_state(database) is True


def test_a_start_while_down_is_kept_too(
    outage: tuple[Outage, Database, Settings],
) -> None:
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        texter.send("STOP")
        assert opt_out_state(database) is True
        broken.corrupt()
        assert "subscribed" in texter.reply("START")
        assert "not available right now" in texter.reply("hi")  # the spool says: opted in
        broken.restore()
        assert app.state.spool.drain(10)
        assert "1 Why a second opinion" in texter.reply("hi")
    assert opt_out_state(database) is False


def test_call_while_down_queues_the_call_back_for_when_the_database_answers(
    outage: tuple[Outage, Database, Settings],
) -> None:
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        broken.corrupt()
        [reply] = texter.send("CALL")
        assert "We will call you in a moment" in reply
        broken.restore()
        assert app.state.spool.drain(10)
    with database.session() as session:
        [call_back] = session.scalars(select(OutboxMessage)).all()
    assert (call_back.kind, call_back.to_number, call_back.status) == ("call", TEXTER, "pending")
    assert "<Dial" in call_back.body


def test_without_a_flow_a_text_still_gets_the_coordinators_number(
    outage: tuple[Outage, Database, Settings],
) -> None:
    _, database, settings = outage
    app = create_app(settings)
    app.state.book.snapshot = EMPTY  # no line's flow could be loaded at start
    with app_client(app) as client:
        texter = Texter(client)
        [fixed] = texter.send("hi")
        assert "Second Opinion Line" in fixed
        assert "(804) 828-7999" in fixed
        assert "No more messages will be sent" in texter.reply("STOP")
        assert opt_out_state(database) is True  # the database was up: recorded at once
        assert texter.send("hi") == []


def test_call_from_a_premium_number_is_refused_while_the_database_is_down(
    outage: tuple[Outage, Database, Settings],
) -> None:
    """The destination rules need no database: the texter is told to call, not promised a
    call-back (and the refused row is kept for staff once the database answers)."""
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        broken.corrupt()
        reply = Texter(client, phone="+19005551234").reply("CALL")
        assert reply.startswith("We can't call this number back. Please call us:")
        assert "Patient referral coordinator, VCU Massey: (804) 828-7999" in reply
        broken.restore()
        assert app.state.spool.drain(10)
    with database.session() as session:
        assert session.scalars(select(OutboxMessage.status)).all() == ["refused"]


def test_a_stop_the_database_lacks_is_obeyed_by_replies_and_a_start_after_it_wins(
    outage: tuple[Outage, Database, Settings],
) -> None:
    """MENU, STOP while the database is down, the database back (the spooled STOP not written
    yet): MENU gets nothing, START is honoured and recorded, and once the STOP is written too
    the texter who said START last is opted in."""
    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)  # it tries the database again only in 60 s
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        assert "1 Why a second opinion" in texter.reply("MENU")
        broken.corrupt()
        assert "No more messages will be sent" in texter.reply("STOP")
        broken.restore()
        assert opt_out_state(database) is None, "the STOP still waits in the spool"
        assert texter.send("MENU") == [], "the spool's STOP is obeyed by the reply"
        assert "subscribed to VCU Massey Second Opinion Line again" in texter.reply("START")
        assert opt_out_state(database) is False
        assert app.state.spool.drain(10)
        assert opt_out_state(database) is False, "the older STOP, written late, changes nothing"
        assert "1 Why a second opinion" in texter.reply("MENU")


def test_a_start_from_a_number_that_never_stopped_is_recorded_and_wins_over_an_older_stop(
    outage: tuple[Outage, Database, Settings],
) -> None:
    """A STOP spooled on another host (this host cannot see it) and a START here after it: the
    START is recorded even though this host knew of no STOP, so it wins when the STOP arrives."""
    from datetime import timedelta

    from service.models import utcnow
    from service.stores import write_records

    _, database, settings = outage
    app = create_app(settings)
    with app_client(app) as client:
        stopped_elsewhere = utcnow() - timedelta(seconds=5)
        assert "1 Why a second opinion" in Texter(client).reply("START")
        with database.session() as session:
            write_records(
                session, [OptOutChanged(TEXTER, True, "STOP", stopped_elsewhere)], now=utcnow()
            )
    assert opt_out_state(database) is False


def test_with_neither_the_disk_nor_the_database_no_call_back_is_promised_and_a_stop_is_obeyed(
    outage: tuple[Outage, Database, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.voice.test_failures import refuse_the_disk

    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        broken.corrupt()
        refuse_the_disk(monkeypatch)
        reply = texter.reply("CALL")
        assert "We will call you" not in reply
        assert "not available right now" in reply and "(804) 828-7999" in reply
        assert "No more messages will be sent" in texter.reply("STOP")
        assert texter.send("hi") == [], "this process obeys the STOP it holds in memory"
        assert not app.state.spool.healthy
        monkeypatch.undo()
        broken.restore()
        assert app.state.spool.drain(10)
    assert opt_out_state(database) is True
    with database.session() as session:
        assert session.scalars(select(OutboxMessage)).all() == [], "no call-back was promised"


def test_a_crisis_while_down_is_answered_and_filed_as_urgent_when_the_database_answers(
    outage: tuple[Outage, Database, Settings],
) -> None:
    from service.followups.sweep import sweep_follow_ups
    from service.models import FollowUp, Message, utcnow

    broken, database, settings = outage
    app = app_with_a_patient_spool(settings)
    with app_client(app, wait_for_records=False) as client:
        texter = Texter(client)
        broken.corrupt()
        reply = texter.reply("quiero morirme")
        assert reply.startswith("¿Piensa en el suicidio o en hacerse daño?")
        assert reply.index("988") < reply.index("911") < reply.index("(804) 828-7999")
        assert "not available" not in reply and "no está disponible" not in reply
        broken.restore()
        assert app.state.spool.drain(10)
    with database.session() as session:
        [message] = session.scalars(select(Message).where(Message.direction == "in")).all()
        assert message.intent == "crisis"
        sweep_follow_ups(session, utcnow())
        [item] = session.scalars(select(FollowUp)).all()
    assert item.urgent and item.reason == "crisis" and item.phone == TEXTER
