"""The overview's numbers are those of counting the rows (`tests.staff.counting`), for ranges
of a day, a month, a year and one crossing a change of clock, rolled up or counted live, on
SQLite and PostgreSQL, however the rows change after a day was rolled up: a fact that comes
late for an old call, a call recorded hours after it happened, a start that moves to the day
before, follow-ups opened and closed, a text replayed late, a texter's language changed, a
STOP and a START, a purge, and another TIMEZONE; and for one line of the clinic's."""

from __future__ import annotations

import json
import re
import statistics
import uuid
from array import array
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from service import migrate
from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.models import (
    CallEventKind,
    Conversation,
    FollowUp,
    Message,
    OutboxKind,
    OverviewDay,
)
from service.models import base as models_base
from service.models.calls import AFTER_HOURS
from service.outbound.outbox import OutboxQueued
from service.purge import purge
from service.staff.headlines import Range, overview_report
from service.staff.rollup import (
    FORMAT,
    LOCK_KEY,
    DayCounts,
    Numbers,
    median_and_longest,
    ranked,
    roll_up,
)
from service.texts.conversations import save_conversation
from service.voicemail.records import VoicemailLeft
from tests import recorder as recording
from tests.recorder import Recorder
from tests.staff.conftest import LINE, NOW, VIEWER, record_call, signed_in
from tests.staff.counting import counted_by_hand
from tests.support import AppClient

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: its days and New York's differ at every hour
OTHER_LINE = "+18045550111"
"""The clinic's second number."""
CALLERS = [f"+1804555{n:04d}" for n in range(12)]
ODD_CALLERS = ["anonymous", CALLERS[1][1:], "client:nina", "+0123", "+\uff11\uff18", "anonymous"]
CONTACTS = [("coordinator", "+18048287999"), ("library", "+18048280000")]
DIALS = ["completed", "busy", "no-answer", "failed"]


class WriteClock:
    """The time the call writer gives `calls.updated_at`, and every row its `stored_at` (the
    tests move it)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def write_clock(monkeypatch: pytest.MonkeyPatch) -> WriteClock:
    clock = WriteClock()
    monkeypatch.setattr(recording, "utcnow", clock)  # what the Recorder writes with
    monkeypatch.setattr(models_base, "utcnow", clock)  # what written_now gives stored_at
    return clock


def text_in(
    recorder: Recorder,
    sid: str,
    phone: str,
    at: datetime,
    body: str = "1",
    line: str = LINE,
    intent: str | None = None,
) -> None:
    """A text in, as the SMS webhook records it (a STOP or START with its opt-out change)."""
    recorder.message_received(sid, phone, line, body, intent=intent, at=at)
    if intent in ("opt_out", "opt_in"):
        recorder.opt_out(phone, intent == "opt_out", body, at=at)


def record_history(recorder: Recorder, database: Database, *, unfinished: bool = True) -> None:
    """Forty days of varied calls to two lines (two languages, callers who call again, in both
    languages, transfers of every result, keys, calls around midnight in New York and in
    Kolkata, calls with no final status unless not `unfinished`), texts (conversations that
    go quiet for a day and start again, on both lines, a STOP and a START), and the follow-ups
    the sweep files."""
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
            line=OTHER_LINE if n % 7 == 0 else LINE,
        )
    for n, at in enumerate([datetime(2026, 11, 20, 4, 59), datetime(2026, 11, 20, 18, 29)]):
        # A minute before midnight in New York and in Kolkata, the call going on past it.
        started = at.replace(tzinfo=NOW.tzinfo)
        record_call(recorder, f"CB{n:032d}", CALLERS[n], started,
                    keys=[("main", "2", "why")] * 30, transfer=(*CONTACTS[0], "busy"))  # fmt: skip
    with database.session() as session:
        sweep_follow_ups(session, NOW)
        for n, phone in enumerate(CALLERS[:4]):
            line = OTHER_LINE if n == 3 else LINE
            save_conversation(session, phone, line, node="main", language="es" if n % 2 else "en",
                              now=NOW - timedelta(days=n * 3))  # fmt: skip
    for n, phone in enumerate(CALLERS[:4]):
        line = OTHER_LINE if n == 3 else LINE
        first = NOW - timedelta(days=n * 3 + 20, hours=n)
        # A conversation, a text 23 hours later (the same one), 25 hours after that (a new
        # one), and a few across the days since, around midnight too.
        for k, after in enumerate((0, 23, 48, 50, 24 * 8 + 2, 24 * 15 + 19, 24 * 19)):
            at = first + timedelta(hours=after)
            if at < NOW:
                text_in(recorder, f"SM{n:02d}{k:030d}", phone, at, "hi", line)
                recorder.message_sent(f"SM{n:02d}{k:030d}OUT"[:34], phone, line, "Reply 1 to 4",
                                      status="delivered", at=at + timedelta(seconds=2))  # fmt: skip
    # A STOP three days ago, and a START of another number that stopped in October.
    text_in(recorder, "SM" + "5" * 32, CALLERS[1], NOW - timedelta(days=3), "STOP",
            intent="opt_out")  # fmt: skip
    text_in(recorder, "SM" + "6" * 32, CALLERS[2], NOW - timedelta(days=30), "PARAR",
            intent="opt_out")  # fmt: skip
    text_in(recorder, "SM" + "7" * 32, CALLERS[2], NOW - timedelta(days=1), "START",
            intent="opt_in")  # fmt: skip
    # Messages left, call-backs asked for while closed by phone and by text (placed at the
    # opening, or still waiting for one), and one asked for while open.
    for n in range(6):
        sid, caller = f"CA{n * 5:032d}", CALLERS[(n * 25) % len(CALLERS)]
        at = NOW - timedelta(days=n * 6, hours=n)
        language = "es" if n % 2 else "en"
        recorder.record(VoicemailLeft(f"RE{n:032d}", sid, at, caller, None, "coordinator",
                                      language, 20 + n))  # fmt: skip
        recorder.call_event(sid, CallEventKind.CALLBACK_REQUEST, node="main",
                            detail=f"{AFTER_HOURS}coordinator", at=at)  # fmt: skip
        opening = at + timedelta(hours=10) if n % 3 else datetime(2030, 1, 1, tzinfo=UTC)
        recorder.record(OutboxQueued(OutboxKind.CALL, caller, "<Response/>",
                                     OTHER_LINE if n % 2 else LINE, f"call-back:{n}", at,
                                     language, None, opening, "coordinator"))  # fmt: skip
    recorder.record(OutboxQueued(OutboxKind.CALL, CALLERS[0], "<Response/>", LINE,
                                 "call-back:open", NOW - timedelta(days=2), "en"))  # fmt: skip
    # Callers that are not E.164 numbers, one of them the digits of one that is.
    for n, caller in enumerate(ODD_CALLERS):
        record_call(recorder, f"CE{n:032d}", caller, NOW - timedelta(days=2 + n % 3, hours=n),
                    language="es" if n % 2 else "en")  # fmt: skip


def ranges(zone: tzinfo) -> Iterator[Range]:
    today = NOW.astimezone(zone).date()
    for first, last in [
        (today - timedelta(days=29), today),  # the default
        (date(2026, 11, 1), date(2026, 11, 30)),  # a month, today in it
        (date(2026, 10, 1), date(2026, 10, 31)),  # a month over
        (today - timedelta(days=365), today),  # a year
        (date(2026, 10, 25), date(2026, 11, 7)),  # New York's clocks go back on November 1
        (today, today),
        (today - timedelta(days=4), today - timedelta(days=4)),
        (today - timedelta(days=89), today - timedelta(days=3)),
        (today - timedelta(days=200), today - timedelta(days=100)),
    ]:
        yield Range(first, last, zone)


def assert_as_counted(
    database: Database, zone: tzinfo = NEW_YORK, *, every_range: bool = False
) -> None:
    """Every headline and chart of the ranges are those of counting the rows, for all the
    lines and for each. Between the checks of `every_range`, a year (every day of the
    history), today, and one line: what a change can make wrong."""
    today = NOW.astimezone(zone).date()
    chosen_ranges = list(ranges(zone))
    line_checks: list[list[str]] = [[LINE], [OTHER_LINE], [""]]
    if not every_range:
        chosen_ranges = [r for r in chosen_ranges if r.first.year == 2025 or r.first == today]
        line_checks = [[OTHER_LINE]]
    with database.session() as session:
        for chosen in chosen_ranges:
            assert overview_report(session, chosen, today) == counted_by_hand(session, chosen)
        for lines in line_checks:
            chosen = Range(today - timedelta(days=45), today, zone)
            by_line = overview_report(session, chosen, today, lines)
            assert by_line == counted_by_hand(session, chosen, lines)


def rolled_days(database: Database, zone: tzinfo = NEW_YORK) -> set[date]:
    with database.session() as session:
        return set(
            session.scalars(
                select(OverviewDay.day).filter_by(zone=str(zone), line="", until=None, form=FORMAT)
            )
        )


def rolled_up_then_counted(database: Database, now: datetime) -> None:
    """The periodic job runs at `now`; the numbers are still those of counting the rows."""
    with database.session() as session:
        roll_up(session, NEW_YORK, now)
    assert_as_counted(database)


def part_until(database: Database, zone: tzinfo = NEW_YORK) -> datetime | None:
    """The end of the part of today (at NOW) rolled up."""
    today = NOW.astimezone(zone).date()
    with database.session() as session:
        return session.scalar(
            select(OverviewDay.until).filter_by(zone=str(zone), day=today, line="")
        )


def test_the_numbers_are_those_of_the_rows_whatever_changes(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    record_history(recorder, database)
    year = Range(date(2025, 11, 24), date(2026, 11, 24), NEW_YORK)
    with database.session() as session:
        counted = counted_by_hand(session, year)
    # The history has every kind of number in it (follow-ups are closed below), in both
    # languages, on both lines.
    assert {m for m, n in counted.totals.items() if not n} == {"follow_ups_closed"}
    assert counted.counts["texters"]["es"] and counted.counts["conversations"]["en"] >= 8
    assert_as_counted(database, every_range=True)  # nothing rolled up: all counted live
    write_clock.now = NOW + timedelta(minutes=20)
    with database.session() as session:
        report = roll_up(session, NEW_YORK, write_clock.now, days=400)
    assert report.added >= 40
    assert (NOW - timedelta(days=12)).astimezone(NEW_YORK).date() in rolled_days(database)
    # Today up to the whole hour an hour ago (14:00 UTC; New York's day began at 05:00).
    assert part_until(database) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert_as_counted(database, every_range=True)

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
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))

    # Follow-ups open and close, on days rolled up: the days they opened and closed on change.
    write_clock.now += timedelta(hours=1)
    with database.session() as session:
        sweep_follow_ups(session, NOW + timedelta(hours=6))
        for n, row in enumerate(worklist.list_items(session)[:3]):
            # Closed at a time of its own: one of them two days ago (a clock behind).
            closed = NOW + timedelta(hours=6) if n else NOW - timedelta(days=2)
            worklist.close(session, row.item.id, "nina", "reached", closed)
    with database.session() as session:
        assert counted_by_hand(session, year).totals["follow_ups_closed"] == 3
    assert_as_counted(database)
    # A text of the day before yesterday replayed only now (the text 16 hours after it,
    # yesterday in New York, no longer starts a conversation), and a texter who now texts in
    # another language: the days of their conversations change.
    text_in(recorder, "SM" + "8" * 32, CALLERS[0], NOW - timedelta(hours=40), "hola")
    with database.session() as session:
        save_conversation(session, CALLERS[1], LINE, node="main", language="en",
                          now=NOW + timedelta(hours=6))  # fmt: skip
    assert_as_counted(database)
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))
    # The number that stopped three days ago starts again the day before yesterday, and
    # another stops a week ago, replayed late: the STOPs of the days change, the numbers opted
    # out at the end of each range too.
    write_clock.now += timedelta(hours=1)
    text_in(recorder, "SM" + "9" * 32, CALLERS[1], NOW - timedelta(days=2), "START",
            intent="opt_in")  # fmt: skip
    assert_as_counted(database)
    text_in(recorder, "SM" + "a" * 32, CALLERS[3], NOW - timedelta(days=7), "STOP",
            line=OTHER_LINE, intent="opt_out")  # fmt: skip
    assert_as_counted(database)
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))
    # A transfer not answered four days ago, recorded now, and a sweep whose clock is behind:
    # an item opened on a day rolled up.
    four_days = NOW - timedelta(days=4)
    record_call(recorder, "CF" + "1" * 32, CALLERS[6], four_days, language="es",
                transfer=(*CONTACTS[0], "busy"))  # fmt: skip
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=30))
    write_clock.now += timedelta(hours=1)
    with database.session() as session:
        sweep_follow_ups(session, four_days + timedelta(hours=1))
    assert_as_counted(database)
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))

    # A call of this morning (in the part of today rolled up) recorded only now; the roll-up
    # an hour later counts the part again, up to a later hour.
    earlier = part_until(database)
    write_clock.now += timedelta(hours=1)
    record_call(recorder, "CG" + "1" * 32, CALLERS[7], NOW - timedelta(hours=8), language="es",
                keys=[("main", "1", "why")], transfer=(*CONTACTS[1], "failed"))  # fmt: skip
    assert_as_counted(database)
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=30))
    assert earlier is not None and part_until(database) == earlier + timedelta(hours=1)
    assert_as_counted(database)
    # And once more within the hour: the part is counted again though its hour stays.
    with database.session() as session:
        roll_up(session, NEW_YORK, NOW + timedelta(hours=11, minutes=1))
    hour = part_until(database)
    write_clock.now = NOW + timedelta(hours=11, minutes=2)
    record_call(recorder, "CH" + "1" * 32, CALLERS[8], NOW - timedelta(hours=7), language="es")
    with database.session() as session:
        roll_up(session, NEW_YORK, NOW + timedelta(hours=11, minutes=15))
    assert part_until(database) == hour
    assert_as_counted(database)

    # A purge of everything older than three weeks, and other zones.
    purge(database, timedelta(days=21), now=NOW + timedelta(hours=7), zone=NEW_YORK)
    assert_as_counted(database, every_range=True)
    for zone in (KOLKATA, ZoneInfo("UTC")):
        assert_as_counted(database, zone)
        with database.session() as session:
            roll_up(session, zone, write_clock.now + timedelta(hours=1), days=400)
        assert_as_counted(database, zone, every_range=True)


def test_a_month_keeps_its_opt_outs_when_a_number_opts_back_in_later(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """November's STOPs and the numbers opted out at its end stay what they were when a
    number that stopped in November starts again in December, rolled up or not."""
    november = Range(date(2026, 11, 1), date(2026, 11, 30), NEW_YORK)
    today = date(2026, 12, 10)
    with database.session() as session:
        save_conversation(session, CALLERS[0], LINE, node="main", language="es",
                          now=datetime(2026, 11, 5, 15, tzinfo=UTC))  # fmt: skip
    text_in(recorder, "SM" + "1" * 32, CALLERS[0], datetime(2026, 11, 5, 15, tzinfo=UTC), "PARAR",
            intent="opt_out")  # fmt: skip
    text_in(recorder, "SM" + "2" * 32, CALLERS[1], datetime(2026, 11, 6, 15, tzinfo=UTC), "STOP",
            intent="opt_out")  # fmt: skip

    def stops_and_opted_out() -> tuple[int, int, int]:
        with database.session() as session:
            report = overview_report(session, november, today)
            assert report == counted_by_hand(session, november)
        return report.totals["stops"], report.totals["opted_out"], report.counts["opted_out"]["es"]

    assert stops_and_opted_out() == (2, 2, 1)
    write_clock.now = datetime(2026, 12, 3, 15, tzinfo=UTC)
    text_in(recorder, "SM" + "3" * 32, CALLERS[0], datetime(2026, 12, 3, 15, tzinfo=UTC), "START",
            intent="opt_in")  # fmt: skip
    assert stops_and_opted_out() == (2, 2, 1)
    with database.session() as session:
        roll_up(session, NEW_YORK, datetime(2026, 12, 10, 15, tzinfo=UTC), days=400)
    assert stops_and_opted_out() == (2, 2, 1)
    # December's end, though, has one number opted out.
    december = Range(date(2026, 12, 1), date(2026, 12, 10), NEW_YORK)
    with database.session() as session:
        assert overview_report(session, december, today).totals["opted_out"] == 1


def in_all(page: str, measure: str = "calls") -> int:
    found = re.search(
        rf'<tr id="headline-{measure}"><th[^>]*>.*?</th><td[^>]*>([0-9]+)<', page, re.S
    )
    assert found, f"no headline of {measure}"
    return int(found.group(1))


def test_the_page_reads_the_days_rolled_up(
    client: AppClient, recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """The overview reads a rolled-up day from its rows, not from the calls (so that the tests
    above compare the two): a count changed in a day's row shows on the page."""
    # Every call finished: the server's reconciliation (its spool thread, on the real clock)
    # would otherwise mark the unfinished ones unknown meanwhile, and their days changed.
    record_history(recorder, database, unfinished=False)
    zone = ZoneInfo("UTC")  # the tests' TIMEZONE
    with database.session() as session:
        roll_up(session, zone, NOW + timedelta(minutes=20), days=400)
    signed_in(client, VIEWER)
    today = NOW.date()
    chosen = Range(today - timedelta(days=365), today, zone)
    url = f"/staff/?from={chosen.first}&to={today}"
    with database.session() as session:
        expected = counted_by_hand(session, chosen)
    before = client.get(url)
    assert in_all(before.text) == expected.totals["calls"]
    assert in_all(before.text, "follow_ups_opened") == expected.totals["follow_ups_opened"]
    with database.session() as session:
        add_to_day(session, today - timedelta(days=2), LINE, ("calls", "en", ""), 1000)
        # (The history's items opened today, which is never rolled up.)
        add_to_day(session, today - timedelta(days=10), "", ("follow_ups_opened", "en", ""), 1000)
    after = client.get(url)
    assert in_all(after.text) == expected.totals["calls"] + 1000
    assert in_all(after.text, "follow_ups_opened") == expected.totals["follow_ups_opened"] + 1000


def add_to_day(
    session: Session, day: date, line: str, key: tuple[str, str, str], more: int
) -> None:
    """Change a count a day's row (UTC) holds in its JSON (a new write of the day: its token
    too)."""
    row = session.scalars(select(OverviewDay).filter_by(zone="UTC", day=day, line=line)).one()
    counts = DayCounts.unpacked(row.counts, row.sets)
    counts.counts[key] += more
    row.counts, row.sets = counts.packed()
    written = uuid.uuid4().hex
    for of_the_day in session.scalars(select(OverviewDay).filter_by(zone="UTC", day=day)):
        of_the_day.written = written


NUMBER_STRINGS = st.one_of(
    st.integers(min_value=1, max_value=10**15 - 1).map(lambda n: f"+{n}"),
    st.from_regex(r"\A\+?[0-9]{0,17}\Z"),
    st.text(max_size=12),
)


@given(st.lists(st.lists(NUMBER_STRINGS, max_size=12), max_size=6))
def test_numbers_are_the_set_of_their_strings(days: list[list[str]]) -> None:
    """However callers and texters are spelled, a day's sets stored in its row and read back,
    and the union of days, count what sets of the strings count: E.164 numbers and anything
    else, never one for another."""
    read_back = []
    for callers in days:
        of_the_day = DayCounts()
        for caller in callers:
            of_the_day.callers["en"].add(caller)
            of_the_day.texters["es"].add(caller)
        assert len(of_the_day.callers["en"]) == len(set(callers))
        read = DayCounts.unpacked(*of_the_day.packed())
        for found in (read.callers["en"], read.texters["es"]):
            assert len(found) == len(set(callers))
            assert all(caller in found for caller in callers)
        read_back.append(read.callers["en"])
    assert len(Numbers.union(read_back)) == len(set().union(*map(set, days)))


def test_a_day_of_another_form_is_counted_again(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """A day an older worker rolled up during a SIGHUP restart (rows of another form, which
    this code cannot read) is counted live, and rolled up again by the job."""
    record_history(recorder, database)
    write_clock.now = NOW + timedelta(minutes=20)
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now, days=400)
    day = (NOW - timedelta(days=3)).astimezone(NEW_YORK).date()
    with database.session() as session:
        session.execute(delete(OverviewDay).filter_by(zone=str(NEW_YORK), day=day))
        session.add(OverviewDay(zone=str(NEW_YORK), day=day, line="", written="x", form="3",
                                counts=json.dumps({"calls": 1000}), sets=b""))  # fmt: skip
    assert day not in rolled_days(database)
    assert_as_counted(database)
    with database.session() as session:
        report = roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=1))
    assert report.added == 1
    assert day in rolled_days(database)
    with database.session() as session:
        assert {row.form for row in session.scalars(select(OverviewDay))} == {FORMAT}
    assert_as_counted(database)


def test_every_write_the_rollup_watches_stamps_the_row(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """Texts (received, sent, a status before its send, a status), conversations and
    follow-ups (opened by the sweep, joined, claimed, closed by hand and by the sweep) get
    `stored_at` from the server's clock at every write, whatever time the write tells of:
    it is how the rollup finds a day that a late write changed."""

    def stamped(model: Any, **where: Any) -> datetime | None:
        with database.session() as session:
            return session.scalars(select(model.stored_at).filter_by(**where)).one()

    def tick() -> datetime:
        write_clock.now += timedelta(minutes=7)
        return write_clock.now

    long_ago = NOW - timedelta(days=30)
    at = tick()
    with database.session() as session:
        save_conversation(session, CALLERS[0], LINE, node="main", language="es", now=long_ago)
    assert stamped(Conversation, phone=CALLERS[0]) == at
    at = tick()
    with database.session() as session:
        save_conversation(session, CALLERS[0], LINE, node="main", language="en", now=long_ago)
    assert stamped(Conversation, phone=CALLERS[0]) == at
    at = tick()
    recorder.message_received("SM" + "1" * 32, CALLERS[0], LINE, "hola", at=long_ago)
    assert stamped(Message, message_sid="SM" + "1" * 32) == at
    at = tick()
    recorder.message_status("SM" + "2" * 32, "sent", at=long_ago)  # before the send's record
    assert stamped(Message, message_sid="SM" + "2" * 32) == at
    at = tick()
    recorder.message_sent("SM" + "2" * 32, CALLERS[0], LINE, "Reply 1 to 4", at=long_ago)
    assert stamped(Message, message_sid="SM" + "2" * 32) == at
    at = tick()
    recorder.message_status("SM" + "2" * 32, "delivered", at=long_ago)
    assert stamped(Message, message_sid="SM" + "2" * 32) == at

    record_call(recorder, "CA" + "1" * 32, CALLERS[1], NOW - timedelta(hours=2),
                transfer=(*CONTACTS[0], "busy"))  # fmt: skip
    at = tick()
    with database.session() as session:
        sweep_follow_ups(session, NOW)
    assert stamped(FollowUp, phone=CALLERS[1]) == at
    record_call(recorder, "CA" + "2" * 32, CALLERS[1], NOW - timedelta(hours=1),
                transfer=(*CONTACTS[0], "no-answer"))  # fmt: skip
    at = tick()
    with database.session() as session:
        sweep_follow_ups(session, NOW)  # the second call joins the item
    assert stamped(FollowUp, phone=CALLERS[1]) == at
    with database.session() as session:
        item_id = session.scalars(select(FollowUp.id).filter_by(phone=CALLERS[1])).one()
    at = tick()
    with database.session() as session:
        worklist.claim(session, item_id, "nina", NOW)
    assert stamped(FollowUp, id=item_id) == at
    at = tick()
    with database.session() as session:
        worklist.close(session, item_id, "nina", "reached", NOW)
    assert stamped(FollowUp, id=item_id) == at

    # An item the sweep closes: its number reached a person.
    record_call(recorder, "CA" + "3" * 32, CALLERS[2], NOW - timedelta(hours=2),
                transfer=(*CONTACTS[0], "busy"))  # fmt: skip
    with database.session() as session:
        sweep_follow_ups(session, NOW)
    record_call(recorder, "CA" + "4" * 32, CALLERS[2], NOW - timedelta(minutes=30),
                transfer=(*CONTACTS[0], "completed"))  # fmt: skip
    at = tick()
    with database.session() as session:
        sweep_follow_ups(session, NOW)
    with database.session() as session:
        closed = session.scalars(select(FollowUp).filter_by(phone=CALLERS[2])).one()
        assert closed.closed_at is not None and closed.stored_at == at


WAITS = st.one_of(st.integers(-3, 3), st.integers(0, 10**12))


@given(st.lists(st.lists(WAITS, min_size=1, max_size=60), min_size=1, max_size=40), st.data())
def test_a_range_of_days_waits_has_the_median_of_all_its_waits(
    days: list[list[int]], data: st.DataObject
) -> None:
    """The waits of a range, kept sorted by day, give the values at any ranks, the median and
    the longest of all of them merged (ties and a few days with many waits included), without
    merging them."""
    runs = [array("q", sorted(day)) for day in days]
    merged = sorted(wait for day in days for wait in day)
    first = data.draw(st.integers(0, len(merged) - 1))
    last = data.draw(st.integers(first, len(merged) - 1))
    assert ranked(list(runs), first, last) == merged[first : last + 1]
    median = statistics.median(wait / 1e6 for wait in merged)
    assert median_and_longest(list(runs)) == (
        timedelta(seconds=median),
        timedelta(microseconds=merged[-1]),
    )
    assert median_and_longest([array("q")]) == (None, None)


@pytest.mark.postgres
def test_one_roll_up_at_a_time_in_a_schema(postgres_schema_url: str) -> None:
    """On PostgreSQL a roll-up holds its schema's advisory lock: another at the same time
    skips (the periodic job's), and a roll-up in another schema of the database (as the tests
    have) does not stop it. (SQLite writes one transaction at a time.)"""
    migrate.upgrade(postgres_schema_url)
    database = Database(postgres_schema_url)
    try:
        record_call(Recorder(database), "CA" + "1" * 32, CALLERS[0], NOW - timedelta(days=2))
        with database.session() as session:
            schema = session.scalar(text("SELECT current_schema()"))
        with database.engine.connect() as connection:
            for held_by, rolls_up in ((f"{schema}_other", True), (schema, False)):
                with connection.begin():
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key, hashtext(:schema))"),
                        {"key": LOCK_KEY, "schema": held_by},
                    )
                    with database.session() as session:
                        report = roll_up(session, NEW_YORK, NOW, days=400)
                        session.rollback()
                    assert (report.added > 0) is rolls_up
    finally:
        database.dispose()
