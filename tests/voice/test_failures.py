"""When things break, a caller still hears the menu and still reaches a person."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from service.calls import router as voice_router
from service.db import Database, set_database
from service.lines.book import EMPTY
from service.main import create_app
from service.metrics import DB_ERRORS
from service.models import Call, CallEvent, OutboxMessage
from service.spool.spool import Spool
from service.stores import STORES
from tests.db.test_failures import replace_with_garbage
from tests.support import AppClient, app_client
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER, Caller, Heard, parse
from tests.voice.conftest import voice_settings

COORDINATOR = "+18048287999"


def db_errors() -> float:
    return sum(
        sample.value
        for metric in DB_ERRORS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def a_call_without_a_database(caller: Caller) -> None:
    """The menu, no text promised (the database cannot say whether the number said STOP): the
    numbers instead, the coordinator, the end of the call."""
    heard = caller.call()
    assert heard.gather is not None
    assert "To find another doctor, press 2." in heard.words
    heard = caller.press("2")
    assert heard.words[0].startswith("If your doctor cannot recommend a colleague")
    heard = caller.press("8")
    assert heard.words[0] == "Sorry, we can't send a text message right now."
    assert "To call the patient referral coordinator, press 1." in heard.words  # numbers instead
    heard = caller.press("0")
    assert heard.numbers == [COORDINATOR]
    assert heard.dial is not None and heard.dial["callerId"] == CALLER_NUMBER
    heard = caller.dial_ends("completed", duration="65")
    assert heard.hangup
    assert caller.hang_up() == 204


def test_a_replaced_sqlite_file_does_not_stop_a_call(
    sqlite_database: Database, tmp_path: Path
) -> None:
    path = Path(sqlite_database.url.database or "")
    app = create_app(voice_settings(tmp_path, str(sqlite_database.url)))
    app.state.spool = Spool(tmp_path / "spool", linger=0, retry_delays=(0.01,), stores=STORES)
    with app_client(app, wait_for_records=False) as client:
        caller = Caller(client)
        caller.call()  # the database works: the pool holds a connection to the real file
        replace_with_garbage(path, b"this is not a database, it was replaced\n" * 2000)
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        before = db_errors()
        a_call_without_a_database(Caller(client, call_sid="CA" + "3" * 32))
        wait_until(lambda: db_errors() > before)  # recording tried, failed and was counted
        assert app.state.spool.pending > 0, "what the caller did waits in the spool"


def test_an_unreachable_postgres_does_not_stop_a_call(tmp_path: Path) -> None:
    # Port 9 (discard) refuses connections: the database is down.
    url = "postgresql+psycopg://postgres@127.0.0.1:9/test"
    unreachable = Database(url)
    previous = set_database(unreachable)
    try:
        app = create_app(voice_settings(tmp_path, url))
        app.state.spool = Spool(tmp_path / "spool", linger=0, retry_delays=(0.01,), stores=STORES)
        with app_client(app, wait_for_records=False) as client:
            before = db_errors()
            a_call_without_a_database(Caller(client))
            wait_until(lambda: db_errors() > before)
            assert app.state.spool.pending > 0, "what the callers did waits in the spool"
    finally:
        set_database(previous)
        unreachable.dispose()


def fallback_is_heard(heard: Heard, number: str = COORDINATOR) -> None:
    assert heard.numbers == [number]
    assert heard.dial is not None and "action" not in heard.dial
    assert heard.words[0] == (
        "We're sorry, our phone menu is not working right now. "
        "Let me connect you with the patient referral coordinator."
    )
    assert heard.words[1] == "The number is 8 0 4, 8 2 8, 7 9 9 9."
    assert heard.words[2].startswith("Lo sentimos")
    assert heard.says[2].language == "es-US"
    assert heard.words[-1].startswith("Si nadie contestó")


def test_the_fallback_url_dials_the_coordinator_without_the_database(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_database(*args: object) -> Database:
        raise AssertionError("the fallback must not touch the database")

    class NoRecords:
        def submit(self, facts: object) -> None:
            raise AssertionError("the fallback must not record")

        def drain(self) -> bool:
            return True

        def close(self) -> None:
            pass

    monkeypatch.setattr("service.db.get_database", no_database)
    app.state.text_queue = no_database
    app.state.spool = NoRecords()
    with app_client(app) as client:
        params = {"CallSid": "CA" + "4" * 32, "From": CALLER_NUMBER, "To": LINE_NUMBER}
        params |= {"ErrorCode": "11200", "ErrorUrl": "https://line.example.org/twilio/voice"}
        response = client.twilio("/twilio/fallback", params)
        assert response.status_code == 200
        heard = parse(response.text)
        fallback_is_heard(heard)
        assert heard.dial is not None and heard.dial["callerId"] == CALLER_NUMBER


def test_without_a_flow_the_voice_webhook_answers_with_the_fallback(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    app.state.book.snapshot = EMPTY  # no line's flow could be loaded at start-up
    with app_client(app) as client, caplog.at_level(logging.ERROR):
        fallback_is_heard(Caller(client).call())
        response = client.twilio("/twilio/fallback", {"CallSid": "CA" + "5" * 32})
        fallback_is_heard(parse(response.text))
    assert "no flow is loaded" in caplog.text


def test_an_unexpected_error_gives_the_fallback_and_is_logged(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(voice_router, "take_turn", broken)
    with app_client(app) as client, caplog.at_level(logging.ERROR):
        fallback_is_heard(Caller(client).call())
    assert "the voice webhook failed" in caplog.text
    assert "something nobody expected" in caplog.text


def test_a_caller_without_a_valid_number_is_forwarded_with_the_line_as_caller_id(
    client: AppClient,
) -> None:
    for withheld in ("+266696687", "anonymous", "", "+1234"):
        caller = Caller(client, caller=withheld)
        caller.call()
        heard = caller.press("0")
        assert heard.dial is not None and heard.dial["callerId"] == LINE_NUMBER, withheld


def test_a_database_that_hangs_delays_no_caller_and_loses_nothing(
    app: FastAPI, sqlite_database: Database, tmp_path: Path
) -> None:
    # The spool's first batch waits on a database that does not answer (as a connect that
    # hangs); meanwhile callers are answered at once, the records beyond 3 in memory wait on
    # disk only, and once the database answers every one of them is written.
    waiting, answering = threading.Event(), threading.Event()

    def hanging_database() -> Database:
        waiting.set()
        answering.wait(30)
        return sqlite_database

    app.state.spool = Spool(
        tmp_path / "spool", hanging_database, linger=0, max_in_memory=3, stores=STORES
    )
    with app_client(app, wait_for_records=False) as client:
        caller = Caller(client)
        started = time.monotonic()
        assert caller.call().gather is not None
        assert waiting.wait(5)
        for key in ("2", "1", "2", "1", "*", "*"):
            assert caller.press(key).words
        assert caller.press("0").numbers == [COORDINATOR]
        assert time.monotonic() - started < 5
        answering.set()
        assert app.state.spool.drain()
    with sqlite_database.session(read_only=True) as session:
        call = session.scalars(select(Call)).one()
        kinds = session.scalars(select(CallEvent.kind).order_by(CallEvent.at, CallEvent.id)).all()
    assert call.call_sid == caller.call_sid
    assert kinds == [
        *("menu", "key", "menu", "key", "menu", "key", "key", "dial"),
        *("key", "menu", "key", "key", "dial"),
    ], "every turn recorded, once, though most of them waited on disk only"


def test_a_database_failure_is_retried_and_nothing_is_lost(
    app: FastAPI, sqlite_database: Database, tmp_path: Path
) -> None:
    # The database fails twice, then answers: nothing is lost.
    failures = iter([True, True])

    def flaky_database() -> Database:
        if next(failures, False):
            raise OperationalError("SELECT 1", {}, ConnectionError("the database restarted"))
        return sqlite_database

    app.state.spool = Spool(
        tmp_path / "spool", flaky_database, linger=0, retry_delays=(0.01,), stores=STORES
    )
    before = db_errors()
    with app_client(app) as client:
        caller = Caller(client)
        caller.call()
        caller.press("0")
    assert db_errors() == before + 2
    with sqlite_database.session(read_only=True) as session:
        call = session.scalars(select(Call)).one()
    assert (call.transferred_contact, call.path) == ("coordinator", "main")


def wait_until(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def refuse_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write to the spool's segments fails as a full disk does."""
    from service.spool import segments

    def full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(segments, "_write_all", full)


def test_with_the_disk_refusing_and_the_database_up_the_call_is_recorded_directly(
    sqlite_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(voice_settings(tmp_path, str(sqlite_database.url)))
    app.state.spool = Spool(tmp_path / "spool", linger=0, stores=STORES)
    refuse_the_disk(monkeypatch)
    with app_client(app, wait_for_records=False) as client:
        caller = Caller(client)
        heard = caller.call()
        assert "To find another doctor, press 2." in heard.words
        heard = caller.press("2")
        heard = caller.press("8")
        assert heard.words[0] == "We will send you a text message in a moment."
        assert app.state.spool.pending == 0, "written to the database, nothing held"
    with sqlite_database.session() as session:
        call = session.scalars(select(Call)).one()
        keys = session.scalars(
            select(CallEvent.detail).where(CallEvent.call_id == call.id, CallEvent.kind == "key")
        ).all()
        texts = session.scalars(select(OutboxMessage.status)).all()
    assert keys == ["2", "8"]
    assert texts == ["pending"]


def test_with_neither_the_disk_nor_the_database_a_caller_is_promised_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No place to keep what the caller does: the fallback (an apology, the coordinator), no
    menu whose choices would be lost, no text promised."""
    url = "postgresql+psycopg://postgres@127.0.0.1:9/test"
    unreachable = Database(url)
    previous = set_database(unreachable)
    try:
        app = create_app(voice_settings(tmp_path, url))
        app.state.spool = Spool(tmp_path / "spool", linger=0, retry_delays=(0.01,), stores=STORES)
        refuse_the_disk(monkeypatch)
        with app_client(app, wait_for_records=False) as client:
            fallback_is_heard(Caller(client).call())
            assert app.state.spool.pending == 0, "nothing held that was not promised"
            assert not app.state.spool.healthy
    finally:
        set_database(previous)
        unreachable.dispose()
