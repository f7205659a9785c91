"""`phoneline purge`: old rows go, in batches; recent rows stay; daily counts stay right."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select, update
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.db import Database
from service.models import (
    AuditEntry,
    Call,
    CallEvent,
    Conversation,
    DailyAggregate,
    Message,
    OutboxMessage,
)
from service.outbound.outbox import enqueue
from service.purge import parse_age, purge
from tests.recorder import Recorder

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OLD_DAY_1 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
OLD_DAY_2 = datetime(2026, 7, 2, 23, 30, tzinfo=UTC)
RECENT = NOW - timedelta(days=10)


def counts(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Call, CallEvent, Message, Conversation, OutboxMessage)
        }


def aggregates(database: Database) -> dict[tuple[date, str, str, str], int]:
    with database.session() as session:
        rows = session.scalars(select(DailyAggregate)).all()
    return {(r.day, r.channel, r.metric, r.key): r.count for r in rows}


def add_call(recorder: Recorder, sid: str, at: datetime, how: str) -> None:
    recorder.call_started(sid, "+18045550100", "+18048287999", at=at)
    recorder.call_event(sid, "menu", node="main", at=at + timedelta(seconds=1))
    if how == "transferred":
        recorder.call_transferred(sid, "coordinator", "+18048287999", at=at + timedelta(seconds=5))
        recorder.dial_result(sid, "completed", at=at + timedelta(seconds=60))
    elif how == "no-answer":
        recorder.call_event(sid, "key", node="main", detail="2", at=at + timedelta(seconds=3))
        recorder.call_transferred(sid, "library", "+18048288709", at=at + timedelta(seconds=5))
        recorder.dial_result(sid, "no-answer", at=at + timedelta(seconds=30))
    recorder.call_status(sid, "completed", duration=61, at=at + timedelta(seconds=61))


@pytest.fixture
def history(recorder: Recorder, database: Database) -> Database:
    """25 old calls over two days, 3 recent ones; old and recent texts and outbox rows."""
    for n in range(10):
        add_call(recorder, f"CA-1-{n}", OLD_DAY_1 + timedelta(minutes=n), "transferred")
    for n in range(10):
        add_call(recorder, f"CA-2-{n}", OLD_DAY_2 + timedelta(minutes=n), "no-answer")
    for n in range(5):
        add_call(recorder, f"CA-3-{n}", OLD_DAY_2 + timedelta(minutes=20 + n), "silent")
    for n in range(3):
        add_call(recorder, f"CA-new-{n}", RECENT + timedelta(minutes=n), "transferred")

    with database.session() as session:
        session.add(
            Conversation(
                phone="+18045550111",
                line="+18048287999",
                state={},
                started_at=OLD_DAY_1,
                last_activity_at=OLD_DAY_1,
            )
        )
        enqueue(session, "sms", "+18045550111", "old numbers", now=OLD_DAY_1)
        enqueue(session, "sms", "+18045550112", "waiting", now=OLD_DAY_1)
    with database.session() as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.body == "old numbers").values(status="sent")
        )
    for n in range(4):
        recorder.message_received(f"SMo{n}", "+18045550111", "+18048287999", "1", at=OLD_DAY_1)
    for n in range(3):
        recorder.message_sent(f"SMp{n}", "+18045550111", "+18048287999", "Menu", at=OLD_DAY_1)
    recorder.message_received("SMnew", "+18045550111", "+18048287999", "1", at=RECENT)
    return database


def test_parse_age() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("36h") == timedelta(hours=36)
    for bad in ("90", "d", "-1d", "3w", ""):
        with pytest.raises(ValueError, match="90d"):
            parse_age(bad)


def test_purge_deletes_old_rows_in_batches_and_keeps_daily_counts(history: Database) -> None:
    assert counts(history) == {
        "calls": 28,
        "call_events": 10 * 3 + 10 * 4 + 5 * 1 + 3 * 3,
        "messages": 8,
        "conversations": 1,
        "outbox": 2,
    }
    transactions: list[object] = []
    event.listen(history.engine, "commit", transactions.append)

    report = purge(history, timedelta(days=90), batch_size=7, now=NOW)

    assert (report.calls, report.messages, report.conversations, report.outbox) == (25, 7, 0, 1)
    assert report.call_events == 10 * 3 + 10 * 4 + 5 * 1
    assert report.batches == 4 + 1 + 1  # 25 calls by 7, 7 messages, 1 outbox row
    assert len(transactions) >= report.batches
    # Recent calls and their events stay; the conversation still has a recent message.
    assert counts(history) == {
        "calls": 3,
        "call_events": 3 * 3,
        "messages": 1,
        "conversations": 1,
        "outbox": 1,
    }
    day1, day2 = OLD_DAY_1.date(), OLD_DAY_2.date()
    assert aggregates(history) == {
        (day1, "voice", "calls", ""): 10,
        (day1, "voice", "outcome", "reached"): 10,
        (day1, "voice", "transfers", "coordinator"): 10,
        (day1, "voice", "dial_outcome", "completed"): 10,
        (day2, "voice", "calls", ""): 15,
        (day2, "voice", "outcome", "not-answered"): 10,
        (day2, "voice", "outcome", "hung-up"): 5,
        (day2, "voice", "transfers", "library"): 10,
        (day2, "voice", "dial_outcome", "no-answer"): 10,
        (day1, "sms", "messages_in", ""): 4,
        (day1, "sms", "messages_out", ""): 3,
    }
    with history.session() as session:
        audit = session.scalars(select(AuditEntry)).one()
    assert (audit.actor, audit.action) == ("system", "purge")
    assert "25 calls" in (audit.detail or "")


def test_purged_rows_are_counted_on_the_clinics_day(history: Database) -> None:
    """The charts draw the clinic's days (TIMEZONE): a purged call or text is counted on the
    day it happened there, not in UTC. 10:00 UTC on 1 July is already 2 July in Kiribati, and
    23:30 UTC on 2 July is 3 July; in New York (the default) both stay on their UTC day."""
    purge(history, timedelta(days=90), now=NOW, zone=ZoneInfo("Pacific/Kiritimati"))

    day_counts = {
        (day, metric): count
        for (day, channel, metric, key), count in aggregates(history).items()
        if metric in ("calls", "messages_in")
    }
    assert day_counts == {
        (date(2026, 7, 2), "calls"): 10,
        (date(2026, 7, 3), "calls"): 15,
        (date(2026, 7, 2), "messages_in"): 4,
    }


def test_purging_again_adds_to_the_same_daily_counts(history: Database, recorder: Recorder) -> None:
    purge(history, timedelta(days=90), now=NOW)
    add_call(recorder, "CA-late", OLD_DAY_1 + timedelta(hours=5), "transferred")

    again = purge(history, timedelta(days=90), now=NOW)

    assert again.calls == 1
    day1 = OLD_DAY_1.date()
    assert aggregates(history)[(day1, "voice", "calls", "")] == 11
    assert aggregates(history)[(day1, "voice", "outcome", "reached")] == 11


def test_nothing_to_purge_still_leaves_an_audit_entry(database: Database) -> None:
    report = purge(database, timedelta(days=90), now=NOW)
    assert (report.calls, report.messages, report.batches) == (0, 0, 0)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1


@pytest.fixture
def app_database(history: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("DATABASE_URL", history.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield history
    get_settings.cache_clear()


def test_the_purge_command(app_database: Database) -> None:
    result = CliRunner().invoke(app, ["purge", "--older-than", "90d"])

    assert result.exit_code == 0, result.output
    assert "25 calls" in result.output
    assert "7 messages" in result.output
    assert counts(app_database)["calls"] == 3


def test_the_purge_command_rejects_a_bad_age(app_database: Database) -> None:
    result = CliRunner().invoke(app, ["purge", "--older-than", "ninety"])

    assert result.exit_code == 2
    assert counts(app_database)["calls"] == 28
