"""With the database down (a corrupted SQLite file) a texter still gets the coordinator's number,
and a STOP is confirmed, journaled, obeyed and applied once the database is back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service import migrate
from service.config import Settings
from service.db import Database, set_database
from service.main import create_app
from service.models import OptOut, OutboxKind, OutboxMessage
from service.outbound.outbox import enqueue
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
        for suffix in ("", "-wal", "-shm"):
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
        return session.scalar(select(OptOut.opted_out).where(OptOut.phone == TEXTER))


def test_a_text_gets_the_coordinators_number_and_a_stop_is_never_lost(
    outage: tuple[Outage, Database, Settings], fake_twilio: FakeTwilio
) -> None:
    broken, database, settings = outage
    journal = settings.var_dir / "opt-out-journal.jsonl"
    with app_client(create_app(settings)) as client:
        texter = Texter(client)
        assert "1 Learn why" in texter.reply("hi")
        broken.corrupt()

        [fixed] = texter.send("2")
        assert "not available right now" in fixed
        assert "(804) 828-7999" in fixed

        [confirmation] = texter.send("STOP")
        assert "No more messages will be sent" in confirmation
        [entry] = [json.loads(line) for line in journal.read_text().splitlines()]
        assert (entry["phone"], entry["opted_out"], entry["keyword"]) == (TEXTER, True, "STOP")

        # Still down: the journal is read before anything is sent.
        assert texter.send("hi") == []
        assert worker_for(database, settings, fake_twilio).run_once().handled == 0

        broken.restore()
        # The next request replays the journal into the database first.
        assert texter.send("hi") == []
        assert opt_out_state(database) is True
        assert not journal.exists()
        assert "subscribed" in texter.reply("START")
        assert opt_out_state(database) is False
    assert fake_twilio.requests == []


def test_a_journaled_stop_is_applied_by_the_worker_before_it_sends(
    outage: tuple[Outage, Database, Settings], fake_twilio: FakeTwilio
) -> None:
    broken, database, settings = outage
    with app_client(create_app(settings)) as client:
        texter = Texter(client)
        broken.corrupt()
        [confirmation] = texter.send("parar")
        assert "No le enviaremos más mensajes" in confirmation
    broken.restore()
    # Queued after the database came back but before anything replayed the journal.
    with database.session() as session:
        queued = enqueue(session, OutboxKind.SMS, TEXTER, "numbers", from_number=LINE).id
    report = worker_for(database, settings, fake_twilio).run_once()
    assert report.sent == 0
    assert fake_twilio.requests == []
    assert opt_out_state(database) is True
    with database.session() as session:
        assert session.get(OutboxMessage, queued).status == "suppressed"  # type: ignore[union-attr]


def test_a_start_while_down_is_journaled_too(
    outage: tuple[Outage, Database, Settings],
) -> None:
    broken, database, settings = outage
    with app_client(create_app(settings)) as client:
        texter = Texter(client)
        texter.send("STOP")
        assert opt_out_state(database) is True
        broken.corrupt()
        assert "subscribed" in texter.reply("START")
        assert "not available right now" in texter.reply("hi")  # the journal says: opted in
        broken.restore()
        assert "1 Learn why" in texter.reply("hi")
    assert opt_out_state(database) is False


def test_without_a_flow_a_text_still_gets_the_coordinators_number(
    outage: tuple[Outage, Database, Settings],
) -> None:
    _, database, settings = outage
    app = create_app(settings)
    app.state.flow = None  # the flow file was broken at start
    with app_client(app) as client:
        texter = Texter(client)
        [fixed] = texter.send("hi")
        assert "Second Opinion Line" in fixed
        assert "(804) 828-7999" in fixed
        assert "No more messages will be sent" in texter.reply("STOP")
        assert opt_out_state(database) is True  # the database was up: recorded at once
        assert texter.send("hi") == []
