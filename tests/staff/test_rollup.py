"""The overview's rollup gives the numbers of counting the rows (`overview`, `headline_numbers`),
on SQLite and PostgreSQL, however the rows change after a day was rolled up: a fact that comes
late for an old call, a call recorded hours after it happened, a start that moves to the day
before, follow-ups opened and closed, a text replayed late, a texter's language changed, a
purge, and another TIMEZONE."""

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
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service import recording
from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.models import Conversation, FollowUp, Message, OptOut, OverviewDayCount
from service.models import base as models_base
from service.purge import purge
from service.staff.headlines import Range, headline_numbers
from service.staff.queries import overview
from service.staff.rollup import (
    FORMAT,
    UNTIL,
    Callers,
    DayCounts,
    median_and_longest,
    page_numbers,
    ranked,
    roll_up,
    rolled_headlines,
    rolled_overview,
)
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import LINE, NOW, VIEWER, record_call, signed_in
from tests.support import AppClient

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: its days and New York's differ at every hour
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
            for row in session.query(OverviewDayCount).filter_by(
                zone=str(zone), measure="day", detail=FORMAT
            )
        }


def rolled_up_then_counted(database: Database, now: datetime) -> None:
    """The periodic job runs at `now`; the numbers are still those of counting the rows."""
    with database.session() as session:
        roll_up(session, NEW_YORK, now)
    assert_as_counted(database)


def part_until(database: Database, zone: tzinfo = NEW_YORK) -> datetime | None:
    """The end of the part of today (at NOW) rolled up."""
    today = NOW.astimezone(zone).date()
    with database.session() as session:
        form = session.scalar(
            select(OverviewDayCount.detail).filter_by(zone=str(zone), day=today, measure="day")
        )
    if form is None or not form.startswith(FORMAT + UNTIL):
        return None
    return datetime.fromisoformat(form.removeprefix(FORMAT + UNTIL))


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
    # Today up to the whole hour an hour ago (14:00 UTC; New York's day began at 05:00).
    assert part_until(database) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
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
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))

    # Follow-ups open and close, on days rolled up: the days they opened and closed on change.
    write_clock.now += timedelta(hours=1)
    with database.session() as session:
        sweep_follow_ups(session, NOW + timedelta(hours=6))
        for n, row in enumerate(worklist.list_items(session)[:3]):
            # Closed at a time of its own: one of them two days ago (a clock behind).
            closed = NOW + timedelta(hours=6) if n else NOW - timedelta(days=2)
            worklist.close(session, row.item.id, "nina", "reached", closed)
    assert_as_counted(database)
    # A text of eight days ago replayed only now, and a texter of three days ago who now texts
    # in another language: the conversations' days change.
    recorder.message_received("SM" + "8" * 32, CALLERS[0], LINE, "hola", at=NOW - timedelta(8))
    with database.session() as session:
        save_conversation(session, CALLERS[1], LINE, node="main", language="en",
                          now=NOW + timedelta(hours=6))  # fmt: skip
    assert_as_counted(database)
    # The number that opted out three days ago (and whose language just changed) opts in
    # again the day before yesterday, after the day was rolled up, and another opts out a
    # week ago, replayed late: the opt-outs' days and languages change.
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=30))
    write_clock.now += timedelta(hours=1)
    recorder.opt_out(CALLERS[1], False, "START", at=NOW - timedelta(days=2))
    assert_as_counted(database)
    recorder.opt_out(CALLERS[3], True, "STOP", at=NOW - timedelta(days=7))
    assert_as_counted(database)
    rolled_up_then_counted(database, write_clock.now + timedelta(minutes=30))
    # That texter (who texted nine days ago) now texts in English: their opt-out's language.
    write_clock.now += timedelta(hours=1)
    with database.session() as session:
        save_conversation(session, CALLERS[3], LINE, node="main", language="en",
                          now=NOW + timedelta(hours=6))  # fmt: skip
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

    # A purge of everything older than three weeks, and another zone.
    purge(database, timedelta(days=21), now=NOW + timedelta(hours=7), zone=NEW_YORK)
    assert_as_counted(database)
    for zone in (KOLKATA, ZoneInfo("UTC")):
        assert_as_counted(database, zone)
        with database.session() as session:
            roll_up(session, zone, write_clock.now + timedelta(hours=1), days=400)
        assert_as_counted(database, zone)
    assert_as_counted(database)


def in_all(page: str, measure: str = "calls") -> int:
    found = re.search(rf'<tr id="headline-{measure}"><th[^>]*>[^<]+</th><td[^>]*>([0-9]+)<', page)
    assert found, f"no headline of {measure}"
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
    assert in_all(before.text) == expected.totals["calls"]
    assert in_all(before.text, "follow_ups_opened") == expected.totals["follow_ups_opened"]
    with database.session() as session:
        add_to_day_row(session, today - timedelta(days=2), "calls", "en", 1000)
        # (The history's items opened today, which is never rolled up.)
        add_to_day_row(session, today - timedelta(days=10), "follow_ups_opened", "en", 1000)
    after = client.get(url)
    assert in_all(after.text) == expected.totals["calls"] + 1000
    assert in_all(after.text, "follow_ups_opened") == expected.totals["follow_ups_opened"] + 1000


def add_to_day_row(session: Session, day: date, measure: str, key: str, more: int) -> None:
    """Change a count the day row of `day` (UTC) holds in its JSON (a new write of the row:
    its token too)."""
    row = session.scalars(
        select(OverviewDayCount).filter_by(zone="UTC", day=day, measure="day")
    ).one()
    packed = json.loads(row.members or "{}")
    counts = packed["counts"]
    found = [entry for entry in counts if entry[:2] == [measure, key]]
    if found:
        found[0][3] += more
    else:
        counts.append([measure, key, "", more])
    row.members = json.dumps(packed)
    row.key = uuid.uuid4().hex


CALLER_STRINGS = st.one_of(
    st.integers(min_value=1, max_value=10**15 - 1).map(lambda n: f"+{n}"),
    st.from_regex(r"\A\+?[0-9]{0,17}\Z"),
    st.text(max_size=12),
)


@given(st.lists(st.lists(CALLER_STRINGS, max_size=12), max_size=6))
def test_callers_are_the_set_of_their_strings(days: list[list[str]]) -> None:
    """However callers (and texters who opted out) are spelled, a day's sets stored in its
    day row and read back, and the union of days, count what sets of the strings count: E.164
    numbers and anything else, never one for another."""
    read_back = []
    for callers in days:
        of_the_day = DayCounts()
        for caller in callers:
            of_the_day.callers["en"].add(caller)
            of_the_day.opt_outs["es"].add(caller)
        assert len(of_the_day.callers["en"]) == len(set(callers))
        (_, _, form, _, blob, packed), *_ = of_the_day.rows()
        assert form == FORMAT
        read = DayCounts()
        read.unpack(blob or b"", packed or "")
        for found in (read.callers["en"], read.opt_outs["es"]):
            assert len(found) == len(set(callers))
            assert all(caller in found for caller in callers)
        assert read.holds_opt_out(callers[:1]) == bool(callers)
        read_back.append(read.callers["en"])
    assert len(Callers.union(read_back)) == len(set().union(*map(set, days)))


def test_a_day_row_of_another_form_is_counted_again(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """A day an older worker rolled up during a SIGHUP restart (its day row of another form,
    without the measures this code reads) is counted live, and rolled up again by the job."""
    record_history(recorder, database)
    write_clock.now = NOW + timedelta(minutes=20)
    with database.session() as session:
        roll_up(session, NEW_YORK, write_clock.now, days=400)
    day = (NOW - timedelta(days=3)).astimezone(NEW_YORK).date()
    with database.session() as session:
        session.execute(delete(OverviewDayCount).filter_by(zone=str(NEW_YORK), day=day))
        for measure, detail, count in (("day", "", 0), ("calls", "", 1000)):
            session.add(OverviewDayCount(zone=str(NEW_YORK), day=day, measure=measure, key="en",
                                         detail=detail, count=count))  # fmt: skip
    assert day not in rolled_days(database)
    assert_as_counted(database)
    with database.session() as session:
        report = roll_up(session, NEW_YORK, write_clock.now + timedelta(minutes=1))
    assert report.added == 1
    assert day in rolled_days(database)
    assert_as_counted(database)


def test_every_write_the_rollup_watches_stamps_the_row(
    recorder: Recorder, database: Database, write_clock: WriteClock
) -> None:
    """Texts (received, sent, a status before its send, a status), conversations, opt-outs and
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
    for n, opted_out in enumerate((True, False)):
        at = tick()
        recorder.opt_out(CALLERS[0], opted_out, at=long_ago + timedelta(minutes=n))
        assert stamped(OptOut, phone=CALLERS[0]) == at

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
