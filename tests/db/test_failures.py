"""A database failure never reaches a caller: recording logs, counts and returns."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from service import migrate
from service.db import Database
from service.recording import Recorder


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

        with caplog.at_level(logging.WARNING, logger="service.recording"):
            record_a_whole_call(recorder, "CA-after")

        assert db_errors() >= before + 7
        assert "recording call_started failed" in caplog.text
        assert "+18045550100" not in caplog.text
        assert "STOP" not in caplog.text

        # Once the schema is back (as `phoneline serve` does on start), recording resumes.
        migrate.upgrade(f"sqlite:///{path}")
        after = db_errors()
        record_a_whole_call(recorder, "CA-restored")
        assert db_errors() == after
    finally:
        database.dispose()


def test_recording_survives_the_sqlite_file_being_corrupted(
    live_sqlite: tuple[Database, Path],
) -> None:
    database, path = live_sqlite
    recorder = Recorder(database)
    try:
        record_a_whole_call(recorder, "CA-before")
        before = db_errors()
        size = max(path.stat().st_size, 8192)
        with open(path, "r+b") as file:
            file.write(os.urandom(size))

        record_a_whole_call(recorder, "CA-after")

        assert db_errors() >= before + 7
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
