"""A database failure never reaches a caller: recording logs, counts and returns."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.exc import DatabaseError

from service import migrate
from service.calls.facts import CallEventHappened, CallStarted
from service.db import Database
from service.models import CallEventKind, utcnow
from tests.recorder import Recorder


def db_errors() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "phoneline_db_errors":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def record_a_whole_call(recorder: Recorder, call_sid: str) -> None:
    recorder.call_started(call_sid, "+18045550100", "+18048287999", language="en")
    recorder.call_event(call_sid, "menu", node="main")
    recorder.call_transferred(call_sid, "coordinator", "+18048287999")
    recorder.dial_result(call_sid, "completed")
    recorder.call_status(call_sid, "completed", duration=12)
    recorder.message_received("SM" + call_sid, "+18045550100", "+18048287999", "STOP")
    recorder.message_status("SM" + call_sid, "delivered")


@pytest.fixture
def live_sqlite(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "phoneline.db"
    migrate.upgrade(f"sqlite:///{path}")
    return Database(f"sqlite:///{path}"), path


def test_recording_survives_the_sqlite_file_being_deleted(
    live_sqlite: tuple[Database, Path], caplog: pytest.LogCaptureFixture
) -> None:
    database, path = live_sqlite
    recorder = Recorder(database)
    try:
        record_a_whole_call(recorder, "CA-before")
        before = db_errors()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

        with caplog.at_level(logging.WARNING, logger="tests.recorder"):
            record_a_whole_call(recorder, "CA-after")

        assert db_errors() >= before + 7
        assert "recording CallStarted failed" in caplog.text
        assert "+18045550100" not in caplog.text
        assert "STOP" not in caplog.text

        # Once the schema is back (as `phoneline serve` does on start), recording resumes.
        migrate.upgrade(f"sqlite:///{path}")
        after = db_errors()
        record_a_whole_call(recorder, "CA-restored")
        assert db_errors() == after
    finally:
        database.dispose()


def test_recording_survives_the_sqlite_file_being_replaced_by_garbage(
    live_sqlite: tuple[Database, Path],
) -> None:
    database, path = live_sqlite
    recorder = Recorder(database)
    try:
        record_a_whole_call(recorder, "CA-before")
        before = db_errors()
        replace_with_garbage(path, os.urandom(max(path.stat().st_size, 8192)))

        record_a_whole_call(recorder, "CA-after")

        assert db_errors() >= before + 7
    finally:
        database.dispose()


def test_a_file_replaced_while_a_connection_opens_is_not_written_through_it(
    live_sqlite: tuple[Database, Path],
) -> None:
    """A connection opened on the old file just as it was replaced (another thread connecting
    at that moment) must not pass for one of the new file: it would read and write a file no
    one else sees."""
    database, path = live_sqlite
    replaced: list[bool] = []

    def replace_once_opened(dbapi_connection: object, record: object) -> None:
        if not replaced:  # after SQLite opened the old file, before the service looks at it
            replaced.append(True)
            replace_with_garbage(path, b"this is not a database, it was replaced\n" * 200)

    event.listen(database.engine, "connect", replace_once_opened, insert=True)
    try:
        with (
            pytest.raises(DatabaseError, match="not a database"),
            database.session(read_only=True) as session,
        ):
            session.execute(text("SELECT count(*) FROM calls")).scalar_one()
        assert replaced
    finally:
        database.dispose()


def test_recording_survives_an_unreachable_postgres() -> None:
    database = Database(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}
    )
    recorder = Recorder(database)
    before = db_errors()
    try:
        record_a_whole_call(recorder, "CA1")
    finally:
        database.dispose()
    assert db_errors() == before + 7


def test_an_opt_out_taken_while_the_database_is_down_is_applied_later(
    migrated_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from service.optouts.store import OptOutChanged, is_opted_out
    from service.spool.spool import Kept, Spool
    from service.stores import STORES

    database = Database(migrated_url)
    down = Database(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}
    )
    is_down = True
    spool = Spool(
        tmp_path / "spool", lambda: down if is_down else database, linger=0.01, stores=STORES
    )
    t0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    try:
        for phone in ("(804) 555-0100", "+18045550101", "+18045550102"):
            assert spool.submit([OptOutChanged(phone, True, "STOP", t0)], durable=True) is Kept.DISK
        [segment] = spool.directory.segments()
        assert segment.stat().st_mode & 0o077 == 0  # it holds phone numbers: owner only
        # A START stored after the spooled STOP wins over it.
        assert Recorder(database).opt_out("+18045550102", False, "START", at=t0 + timedelta(1))
        is_down = False
        assert spool.drain(10)
        with database.session() as session:
            assert is_opted_out(session, "+18045550100", None)
            assert is_opted_out(session, "+18045550101", None)
            assert not is_opted_out(session, "+18045550102", None)
    finally:
        spool.close(timeout=2)
        down.dispose()
        database.dispose()


def test_is_ready(migrated_url: str, tmp_path: Path) -> None:
    database = Database(migrated_url)
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    down = Database(
        "postgresql+psycopg://postgres@127.0.0.1:1/x", connect_args={"connect_timeout": 2}
    )
    try:
        assert database.is_ready()
        assert not empty.is_ready()
        assert not down.is_ready()
    finally:
        for db in (database, empty, down):
            db.dispose()


def test_a_batch_is_one_transaction_and_a_failure_inside_it_is_swallowed(
    live_sqlite: tuple[Database, Path],
) -> None:
    database, path = live_sqlite
    recorder = Recorder(database)
    at = utcnow()
    try:
        recorder.record(
            CallStarted("CA-batch", at, "+18045550100", "+18048287999", language="en"),
            CallEventHappened("CA-batch", at, CallEventKind.MENU, "main"),
            CallEventHappened("CA-batch", at, CallEventKind.KEY, "main", "2"),
        )
        assert not recorder.failed
        with database.session() as session:
            count = session.execute(text("SELECT count(*) FROM call_events")).scalar_one()
        assert count == 2

        before = db_errors()
        replace_with_garbage(path, b"not a database" * 1000)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        recorder.record(CallEventHappened("CA-batch", at, CallEventKind.MENU, "reach"))
        assert recorder.failed
        assert db_errors() == before + 1
    finally:
        database.dispose()


def replace_with_garbage(path: Path, garbage: bytes) -> None:
    """Put a file that is not a database where the SQLite file was (a new file, as an editor
    or a restore would leave it)."""
    replacement = path.with_name(path.name + ".new")
    replacement.write_bytes(garbage)
    replacement.replace(path)
