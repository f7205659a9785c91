"""The engine settings and the one session boundary."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from service.db import Database, get_database, make_engine, reset_database, set_database
from service.models import AuditEntry


def test_sqlite_is_tuned_for_a_web_server(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    statements: list[str] = []
    from sqlalchemy import event

    @event.listens_for(database.engine, "before_cursor_execute")
    def remember(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    try:
        with database.session() as session:
            session.execute(text("SELECT 1"))
        with database.session(read_only=True) as session:
            session.execute(text("SELECT 1"))
    finally:
        database.dispose()
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]


def test_a_second_sqlite_writer_waits_instead_of_failing(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        held = threading.Event()

        def slow_writer() -> None:
            with database.session() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
                held.set()
                time.sleep(0.3)

        thread = threading.Thread(target=slow_writer)
        thread.start()
        held.wait(5)
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
        thread.join()
        with database.session() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        database.dispose()


def test_the_session_commits_at_the_boundary_and_rolls_back_on_error(
    database: Database,
) -> None:
    with database.session() as session:
        session.add(AuditEntry(actor="system", action="test", detail="kept"))

    def fail_midway() -> None:
        with database.session() as session:
            session.add(AuditEntry(actor="system", action="test", detail="dropped"))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()

    with database.session() as session:
        details = session.scalars(select(AuditEntry.detail)).all()
    assert details == ["kept"]


def test_timestamps_come_back_as_the_same_instant_in_utc(database: Database) -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2026, 3, 8, 1, 30, 15, 250000, tzinfo=eastern)
    with database.session() as session:
        session.add(AuditEntry(actor="system", action="test", at=moment))
    with database.session() as session:
        stored = session.scalars(select(AuditEntry.at)).one()
        before = session.scalar(
            select(func.count()).where(AuditEntry.at < moment + timedelta(seconds=1))
        )
    assert stored == moment
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == datetime(2026, 3, 8, 6, 30, 15, 250000, tzinfo=UTC)
    assert before == 1


def test_the_app_database_is_built_from_settings_and_resettable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.config import get_settings

    previous = set_database(None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    get_settings.cache_clear()
    try:
        first = get_database()
        assert get_database() is first
        assert first.url.database == str(tmp_path / "app.db")
        reset_database()
        assert get_database() is not first
        reset_database()
    finally:
        get_settings.cache_clear()
        set_database(previous)


def test_another_process_touching_the_sqlite_file_loses_nothing(tmp_path: Path) -> None:
    """A process that opens and closes the database (the `sqlite3` shell, `phoneline staff
    list`) while the service writes must not make the service's writes vanish. It did when the
    service itself opened the file outside SQLite on every checkout: closing that descriptor
    dropped the service's POSIX locks, so the other process, believing it was alone, deleted
    the live WAL."""
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "x.db"
    database = Database(f"sqlite:///{path}")
    reader = (
        "import sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1])\n"
        "connection.execute('SELECT count(*) FROM t').fetchall()\n"
        "connection.close()\n"
    )
    try:
        with database.session() as session:
            session.execute(text("CREATE TABLE t (n INTEGER)"))
        for n in range(30):
            with database.session() as session:  # a checkout, then a write in the WAL
                session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            subprocess.run([sys.executable, "-c", reader, str(path)], check=True, timeout=30)
        assert Path(f"{path}-wal").exists(), "the live WAL was deleted under the service"
    finally:
        database.dispose()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (30,)
