"""The overview's rollup gives the numbers of counting the rows (`overview`, `headline_numbers`),
on SQLite and PostgreSQL, however the rows change after a day was rolled up: a fact that comes
late for an old call, a call recorded hours after it happened, a start that moves to the day
before, follow-ups opened and closed, a purge, and another TIMEZONE."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from service import recording
from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.models import OverviewDayCount
from service.purge import purge
from service.recording import Recorder
from service.staff.headlines import Range, headline_numbers
from service.staff.queries import overview
from service.staff.rollup import (
    Callers,
    page_numbers,
    roll_up,
    rolled_headlines,
    rolled_overview,
)
from service.texts.conversations import save_conversation
from tests.staff.conftest import LINE, NOW, VIEWER, record_call, signed_in
from tests.support import AppClient

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: its days and New York's differ at every hour
CALLERS = [f"+1804555{n:04d}" for n in range(12)]
ODD_CALLERS = ["anonymous", CALLERS[1][1:], "client:nina", "+0123", "+\uff11\uff18", "anonymous"]
CONTACTS = [("coordinator", "+18048287999"), ("library", "+18048280000")]
DIALS = ["completed", "busy", "no-answer", "failed"]


class WriteClock:
    """The time the call writer gives `calls.updated_at` (the tests move it)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def write_clock(monkeypatch: pytest.MonkeyPatch) -> WriteClock:
    clock = WriteClock()
    monkeypatch.setattr(recording, "utcnow", clock)  # what the Recorder writes with
    return clock


def record_history(recorder: Recorder, database: Database, *, unfinished: bool = True) -> None:
    """Forty days of varied calls (two languages, callers who call again, in both languages,
    transfers of every result, keys, calls around midnight in New York and in Kolkata, calls
    with no final status unless not `unfinished`), texts, opt-outs and the follow-ups the sweep
    files."""
    for n in range(160):
        started = NOW - timedelta(days=n % 40, hours=(n * 7) % 24, minutes=(n * 13) % 60)
        transfer = None
        if n % 3 == 0:
            contact, number = CONTACTS[n % 2]
            transfer = (contact, number, DIALS[n % 4])
        keys = [("main", str(1 + n % 3), "why")] if n % 4 else []
        record_call(
            recorder,
            f"CA{n:032d}",
            CALLERS[(n * 5) % len(CALLERS)],
            started,
            language="es" if n % 5 == 0 else "en",
            keys=keys,
            transfer=transfer,
            duration=None if unfinished and n % 11 == 0 else 40,
        )
    for n, at in enumerate([datetime(2026, 11, 20, 4, 59), datetime(2026, 11, 20, 18, 29)]):
        # A minute before midnight in New York and in Kolkata, the call going on past it.
        started = at.replace(tzinfo=NOW.tzinfo)
        record_call(recorder, f"CB{n:032d}", CALLERS[n], started,
                    keys=[("main", "2", "why")] * 30, transfer=(*CONTACTS[0], "busy"))  # fmt: skip
    with database.session() as session:
        sweep_follow_ups(session, NOW)
        for n, phone in enumerate(CALLERS[:4]):
            save_conversation(session, phone, LINE, node="main", language="es" if n % 2 else "en",
                              now=NOW - timedelta(days=n * 3))  # fmt: skip
    for n, phone in enumerate(CALLERS[:4]):
        recorder.message_received(f"SM{n:032d}", phone, LINE, "hi", at=NOW - timedelta(days=n * 3))
    recorder.opt_out(CALLERS[1], True, "STOP", at=NOW - timedelta(days=3))
    # Callers that are not E.164 numbers, one of them the digits of one that is.
    for n, caller in enumerate(ODD_CALLERS):
        record_call(recorder, f"CE{n:032d}", caller, NOW - timedelta(days=2 + n % 3, hours=n),
                    language="es" if n % 2 else "en")  # fmt: skip


def ranges(zone: tzinfo) -> Iterator[Range]:
    today = NOW.astimezone(zone).date()
    for first, last in [
        (today - timedelta(days=29), today),
        (today - timedelta(days=89), today),
        (today - timedelta(days=365), today),
        (today - timedelta(days=20), today - timedelta(days=3)),
        (today - timedelta(days=4), today + timedelta(days=30)),
        (today - timedelta(days=4), today - timedelta(days=4)),
        (today - timedelta(days=200), today - timedelta(days=100)),
    ]:
        yield Range(first, last, zone)


def assert_as_counted(database: Database, zone: tzinfo = NEW_YORK) -> None:
    """The overview and every range's headline numbers are those of counting the rows."""
    today = NOW.astimezone(zone).date()
    with database.session() as session:
        counted = overview(session, today, zone=zone)
        assert rolled_overview(session, today, zone) == counted
        for chosen in ranges(zone):
            assert rolled_headlines(session, chosen, today) == headline_numbers(session, chosen)
            assert page_numbers(session, today, chosen) == (
                counted,
                headline_numbers(session, chosen),
            )


def rolled_days(database: Database, zone: tzinfo = NEW_YORK) -> set[date]:
    with database.session() as session:
        return {
            row.day
            for row in session.query(OverviewDayCount).filter_by(zone=str(zone), measure="day")
        }


def test_the_rollup_gives_the_counted_numbers_whatever_changes(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    record_history(recorder, database)
    assert_as_counted(database)  # nothing rolled up: all counted live
    write_clock.now = NOW + timedelta(minutes=20)
    with database.session() as session:
        report = roll_up(session, NEW_YORK, write_clock.now, days=400)
    assert report.added >= 40
    assert (NOW - timedelta(days=12)).astimezone(NEW_YORK).date() in rolled_days(database)
    assert_as_counted(database)

    # The spool replays an old call's dial result hours late: its outcome changes.
    write_clock.now += timedelta(hours=3)
    old = NOW - timedelta(days=12, hours=(12 * 7) % 24, minutes=(12 * 13) % 60)
    contact, number = CONTACTS[0]
    recorder.dial_result(f"CA{12:032d}", "completed", contact=contact, number=number,
                         node="reach", at=old + timedelta(seconds=40))  # fmt: skip
    assert_as_counted(database)
    # A call of five days ago recorded only now, and a start that comes late and moves a
    # call of nine days ago to the day before.
    record_call(recorder, "CC" + "1" * 32, CALLERS[3], NOW - timedelta(days=5), language="es",
                keys=[("main", "3", "reach")], transfer=(*CONTACTS[1], "no-answer"))  # fmt: skip
    nine_days = datetime(2026, 11, 15, 5, 2, tzinfo=NOW.tzinfo)  # 00:02 in New York
    record_call(recorder, "CD" + "1" * 32, CALLERS[4], nine_days)
    assert_as_counted(database)
    write_clock.now += timedelta(hours=1)
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now)
    write_clock.now += timedelta(hours=1)
    recorder.call_started("CD" + "1" * 32, CALLERS[5], LINE, language="es",
                          at=nine_days - timedelta(minutes=5))  # fmt: skip
    recorder.call_status(f"CA{22:032d}", "completed", duration=40, at=NOW - timedelta(days=22))
    assert_as_counted(database)
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=30))
    assert_as_counted(database)

    # Follow-ups open and close (counted live, the waits with them).
    with database.session() as session:
        sweep_follow_ups(session, NOW + timedelta(hours=6))
        for row in worklist.list_items(session)[:2]:
            worklist.close(session, row.item.id, "nina", "reached", NOW + timedelta(hours=6))
    assert_as_counted(database)

    # A purge of everything older than three weeks, and another zone.
    purge(database, timedelta(days=21), now=NOW + timedelta(hours=7), zone=NEW_YORK)
    assert_as_counted(database)
    for zone in (KOLKATA, ZoneInfo("UTC")):
        assert_as_counted(database, zone)
        with database.session() as session:
            roll_up(session, zone, write_clock.now + timedelta(hours=1), days=400)
        assert_as_counted(database, zone)
    assert_as_counted(database)


def calls_in_all(page: str) -> int:
    found = re.search(r'<tr id="headline-calls"><th[^>]*>Calls</th><td[^>]*>([0-9]+)<', page)
    assert found, "no headline of calls"
    return int(found.group(1))


def test_the_page_reads_the_days_rolled_up(
    client: AppClient, recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """The overview reads a rolled-up day from the rollup, not from the calls (so that the test
    above compares the two): a count changed in the rollup shows on the page."""
    # Every call finished: the server's reconciliation (its spool thread, on the real clock)
    # would otherwise mark the unfinished ones unknown meanwhile, and their days changed.
    record_history(recorder, database, unfinished=False)
    zone = ZoneInfo("UTC")  # the tests' TIMEZONE
    with database.session() as session:
        roll_up(session, zone, NOW + timedelta(minutes=20), days=400)
    signed_in(client, VIEWER)
    today = NOW.date()
    url = f"/staff/?from={today - timedelta(days=365)}&to={today}"
    with database.session() as session:
        expected = headline_numbers(session, Range(today - timedelta(days=365), today, zone))
    before = client.get(url)
    assert calls_in_all(before.text) == expected.totals["calls"]
    with database.session() as session:
        session.execute(
            update(OverviewDayCount)
            .where(
                OverviewDayCount.measure == "calls",
                OverviewDayCount.key == "en",
                OverviewDayCount.day == today - timedelta(days=2),
            )
            .values(count=OverviewDayCount.count + 1000)
        )
    after = client.get(url)
    assert calls_in_all(after.text) == expected.totals["calls"] + 1000


CALLER_STRINGS = st.one_of(
    st.integers(min_value=1, max_value=10**15 - 1).map(lambda n: f"+{n}"),
    st.from_regex(r"\A\+?[0-9]{0,17}\Z"),
    st.text(max_size=12),
)


@given(st.lists(st.lists(CALLER_STRINGS, max_size=12), max_size=6))
def test_callers_are_the_set_of_their_strings(days: list[list[str]]) -> None:
    """However callers are spelled, a day's `Callers` stored and read back, and the union of
    days, count what sets of the strings count: E.164 numbers and anything else, never one
    for another."""
    read_back = []
    for callers in days:
        of_the_day = Callers()
        for caller in callers:
            of_the_day.add(caller)
        assert len(of_the_day) == len(set(callers))
        read_back.append(Callers.read(*of_the_day.stored()))
        assert len(read_back[-1]) == len(set(callers))
    assert len(Callers.union(read_back)) == len(set().union(*map(set, days)))


def test_a_day_rolled_up_before_the_bitmap_reads_as_its_numbers() -> None:
    """Rows of the form before `member_ids` (every caller in `members`) read the same."""
    numbers = ["+18045550001", "+18045550002", "anonymous", "18045550001", "+18045550002"]
    old_form = Callers.read(None, "\n".join(numbers))
    assert len(old_form) == 4
    assert len(Callers.union([old_form, Callers.read(None, "+18045550003")])) == 5
    assert len(Callers.union([old_form, Callers.read(*old_form.stored())])) == 4
