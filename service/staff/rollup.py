"""The overview's numbers of each of the clinic's days and lines: counted from the rows
(`count_days`, the one definition of each), and rolled up for the days that are over, so that
a range of a year reads a few hundred rows instead of counting half a million calls (counted
live, a big clinic's year took over 3 s: bench/README.md).

What a day counts, for each line (the clinic's number a call or text came to; '' for what
belongs to no line: follow-ups), in one `DayCounts`:

- calls, calls that reached a person, transfers not answered, by language (the call's), and
  the day's callers (`Numbers`, so that a range counts each caller once); calls with no
  transfer by their last menu (drop-off), transfers by contact and dial outcome, and keys
  pressed by menu and key (by the time the key was pressed);
- texts (with a body, both ways); texts in: the conversations they started (a conversation
  is what the line calls one: a number's texts to a line until 24 quiet hours,
  `CONVERSATION_TTL`), the STOPs among them and the day's texters, by the language of the
  texter's conversation;
- follow-ups opened and closed, by language, and how long each closed one waited (sorted:
  a range's median is found without merging them, `ranked`).

Each day and line is one row of `overview_days` (counts as JSON, sets in one blob). The
numbers of a range are always those of counting the rows, because:

- a day is read from its rows only when it is over (or, for today's part, up to a whole hour
  at least PART_BEHIND ago; the rest of today is counted live) and none of its rows changed
  after it was counted. Every write of a call sets `calls.updated_at`, every write of a text,
  conversation or follow-up its `stored_at` (the server's clock:
  `service.models.base.written_now`), so the days a changed row touches are known
  (`changed_days`). The rollup of a zone is known current for changes before
  `checked_through - MARGIN`; a request counts the days changed since then live, and the
  periodic job counts them again and writes them back;
- `phoneline purge` forgets the days of the calls and texts it deletes
  (`service.models.rollups.forget_days`), in the transaction that deletes them;
- a day not rolled up (changed, in a new zone, not reached by the job yet, or written by an
  older worker in another FORMAT) is counted live by `count_days`.

`roll_up` (the spool thread's periodic job, and `phoneline staff rollup`) counts the changed
days again, adds days not rolled up yet, newest first, DAYS_PER_RUN at a time, and rolls up
today's part again when its hour moves on. Each process keeps the days it decoded
(`_DECODED`) until they are written again (each write has a token of its own).
"""

from __future__ import annotations

import json
import struct
import sys
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cached_property
from itertools import chain
from math import isqrt
from typing import Any

from pyroaring import BitMap
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.config import zone_named
from service.db import upsert
from service.models import (
    Call,
    CallEvent,
    CallEventKind,
    CallOutcome,
    Conversation,
    Direction,
    FollowUp,
    Message,
    OverviewDay,
    OverviewRollup,
    utcnow,
)
from service.staff.queries import day_start
from service.texts.conversations import CONVERSATION_TTL

MAX_DAYS = 366
"""The longest range the overview offers."""
MARGIN = timedelta(minutes=10)
"""A write is taken to commit within this of the time it stamps on its row."""
DAYS_PER_RUN = 31
"""Days not rolled up yet that one run of the periodic job adds (a month: ~45,000 calls)."""
FORMAT = "4"
"""The `form` of the rows this code writes and reads."""
PART_BEHIND = timedelta(hours=1)
"""Today is rolled up up to a whole hour at least this long ago (its calls are over; what is
later is counted live), again when that hour moves on."""
NO_LINE = ""
ALL_LINES = "*"
"""The line of a part that holds every line's counts of a day."""
CALLS, REACHED, NOT_ANSWERED = "calls", "reached", "not_answered"
CONVERSATIONS, STOPS, TEXTS = "conversations", "stops", "texts"
OPENED, CLOSED = "follow_ups_opened", "follow_ups_closed"
DROP_OFF, TRANSFERS, OPTIONS = "drop_off", "transfers", "options"
CALLERS, TEXTERS, WAITS = "callers", "texters", "waits"
LOCK_KEY = 728_140_651
_SCHEMA_LOCK = ":key, hashtext(current_schema())"
"""One roll-up at a time in a schema: the keys of its advisory lock (several schemas, as the
tests have, may share a database)."""


def _e164_digits(number: str) -> int | None:
    """An E.164 number ('+' and up to 15 digits, the first not 0) as the integer of its digits
    (one number, one integer, both ways), else None."""
    digits = number[1:]
    if (
        number[:1] == "+"
        and 0 < len(digits) <= 15
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
    ):
        return int(digits)
    return None


_LOW = 1 << 32
_HEADER = struct.Struct("<II")
"""A part of a serialized set of numbers: its high bits and the length of its bitmap."""


@dataclass
class Numbers:
    """A set of phone numbers (callers, texters): E.164 numbers as the integers of their
    digits, kept as roaring bitmaps of their low 32 bits by their high bits (a year of days'
    callers, about half a million numbers, is joined in milliseconds: pyroaring's 32-bit
    bitmaps join ten times faster than its 64-bit ones, and a set of strings takes 100 ms and
    more); anything else (a withheld or SIP caller) as itself."""

    numbers: dict[int, BitMap] = field(default_factory=dict)
    others: set[str] = field(default_factory=set)

    def add(self, number: str) -> None:
        digits = _e164_digits(number)
        if digits is None:
            self.others.add(number)
        else:
            high, low = divmod(digits, _LOW)
            self.numbers.setdefault(high, BitMap()).add(low)

    def __len__(self) -> int:
        return sum(len(low) for low in self.numbers.values()) + len(self.others)

    def __contains__(self, number: str) -> bool:
        digits = _e164_digits(number)
        if digits is None:
            return number in self.others
        high, low = divmod(digits, _LOW)
        return low in self.numbers.get(high, ())

    @classmethod
    def union(cls, sets: Iterable[Numbers]) -> Numbers:
        by_high: dict[int, list[BitMap]] = defaultdict(list)
        others: set[str] = set()
        for each in sets:
            for high, low in each.numbers.items():
                by_high[high].append(low)
            others |= each.others
        return cls({high: BitMap.union(*lows) for high, lows in by_high.items()}, others)

    def serialized(self) -> bytes:
        """The numbers (not the others): each high part and its bitmap."""
        parts = []
        for high, low in sorted(self.numbers.items()):
            blob = low.serialize()
            parts += [_HEADER.pack(high, len(blob)), blob]
        return b"".join(parts)

    @classmethod
    def deserialized(cls, stored: bytes) -> Numbers:
        numbers, at = {}, 0
        while at < len(stored):
            high, length = _HEADER.unpack_from(stored, at)
            at += _HEADER.size
            numbers[high] = BitMap.deserialize(stored[at : at + length])
            at += length
        return cls(numbers)


def _waits_stored(waits: Iterable[int]) -> bytes:
    """Waits in microseconds, sorted, as little-endian int64s."""
    stored = array("q", sorted(waits))
    if sys.byteorder != "little":
        stored.byteswap()
    return stored.tobytes()


def _waits_read(stored: bytes) -> array[int]:
    waits = array("q")
    waits.frombytes(stored)
    if sys.byteorder != "little":
        waits.byteswap()
    return waits


@dataclass
class DayCounts:
    """What the overview counts of one day and one line."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(measure, key, detail) -> count: a language for the headline measures ('' when not
    known), a menu and key, a contact and dial outcome for the charts."""
    callers: dict[str, Numbers] = field(default_factory=lambda: defaultdict(Numbers))
    """language -> the numbers that called."""
    texters: dict[str, Numbers] = field(default_factory=lambda: defaultdict(Numbers))
    """language -> the numbers that texted in."""
    waits: list[int] | array[int] = field(default_factory=list)
    """How long each follow-up closed on the day waited, in microseconds (read back sorted)."""

    @cached_property
    def in_all(self) -> Counter[str]:
        """Each measure's count, whatever its key (the day's calls, its texts): worked out
        once for a day a process keeps."""
        totals: Counter[str] = Counter()
        for (measure, _, _), count in self.counts.items():
            totals[measure] += count
        return totals

    def packed(self) -> tuple[str, bytes]:
        """The counts as JSON and the sets (and waits) in one blob, indexed in the JSON."""
        parts: list[tuple[str, str, bytes]] = []
        others: list[tuple[str, str, list[str]]] = []
        for name, sets in ((CALLERS, self.callers), (TEXTERS, self.texters)):
            for language, found in sets.items():
                parts.append((name, language, found.serialized()))
                if found.others:
                    others.append((name, language, sorted(found.others)))
        if self.waits:
            parts.append((WAITS, "", _waits_stored(self.waits)))
        counts = [[*key, n] for key, n in self.counts.items() if n]
        index = [(name, language, len(blob)) for name, language, blob in parts]
        packed = json.dumps({"counts": counts, "parts": index, "others": others})
        return packed, b"".join(blob for *_, blob in parts)

    @classmethod
    def unpacked(cls, packed: str, blob: bytes) -> DayCounts:
        found = json.loads(packed)
        result = cls(Counter({(m, k, d): n for m, k, d, n in found["counts"]}))
        at, view = 0, memoryview(blob)
        for name, language, length in found["parts"]:
            part = view[at : at + length].tobytes()
            at += length
            if name == WAITS:
                result.waits = _waits_read(part)
            else:
                sets = result.callers if name == CALLERS else result.texters
                sets[language] = Numbers.deserialized(part)
        for name, language, strings in found["others"]:
            sets = result.callers if name == CALLERS else result.texters
            sets[language].others.update(strings)
        return result

    @classmethod
    def combined(cls, days: Iterable[DayCounts]) -> DayCounts:
        """The counts of all of `days` together (the lines of a day)."""
        days = list(days)
        result = cls()
        for day in days:
            result.counts.update(day.counts)
        for mine, theirs in ((result.callers, "callers"), (result.texters, "texters")):
            by_language: dict[str, list[Numbers]] = defaultdict(list)
            for day in days:
                for language, numbers in getattr(day, theirs).items():
                    by_language[language].append(numbers)
            for language, sets in by_language.items():
                mine[language] = Numbers.union(sets)
        result.waits = array("q", sorted(chain.from_iterable(day.waits for day in days)))
        return result


@dataclass(frozen=True)
class Part:
    """The counts of one line on one day (a day may have two parts of a line: today's
    rolled-up part and the rest of it, counted live)."""

    day: date
    line: str
    counts: DayCounts


# -- counting the rows, by day and line ------------------------------------------------------


def _by_day(
    session: Session,
    column: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    zone: tzinfo,
    start: datetime,
    end: datetime,
    keys: tuple[Any, ...],
    counted: tuple[Any, ...],
    *where: ColumnElement[bool],
) -> Iterator[tuple[date, tuple[Any, ...], tuple[int, ...]]]:
    """(day in `zone`, keys, counts) of the rows with `start <= column < end`. PostgreSQL
    converts each time to the zone; SQLite, which knows no zones, groups by UTC quarter-hour,
    each of which falls on one local day in any zone (offsets are whole quarter-hours): a
    (day, keys) may then come more than once, to be added up."""
    condition = (column >= start, column < end, *where)
    if session.get_bind().dialect.name == "postgresql":
        local = cast(func.timezone(getattr(zone, "key", "UTC"), column), Date)
        query = select(local, *keys, *counted).where(*condition).group_by(local, *keys)
        for row in session.execute(query):
            day = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0]))
            yield day, tuple(row[1 : 1 + len(keys)]), tuple(int(n) for n in row[1 + len(keys) :])
        return
    quarter = func.strftime("%Y-%m-%d %H:", column) + cast(
        cast(func.strftime("%M", column), Integer) // 15 * 15, String
    )
    days: dict[str, date] = {}
    query = select(quarter, *keys, *counted).where(*condition).group_by(quarter, *keys)
    for row in session.execute(query):
        stamp = str(row[0])
        if stamp not in days:
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            days[stamp] = at.astimezone(zone).date()
        yield (
            days[stamp],
            tuple(row[1 : 1 + len(keys)]),
            tuple(int(n) for n in row[1 + len(keys) :]),
        )


def count_days(
    session: Session, zone: tzinfo, start: datetime, end: datetime
) -> dict[tuple[date, str], DayCounts]:
    """What the overview counts of the rows from `start` to `end`, by (day in `zone`, line):
    the one definition of each of its numbers but the two counted for a whole range
    (`service.staff.headlines`: the follow-ups still open, the numbers opted out at its end)."""
    days: dict[tuple[date, str], DayCounts] = defaultdict(DayCounts)
    ended_in_a_menu = (CallOutcome.HUNG_UP.value, CallOutcome.LISTENED.value)
    # One group a caller's calls of a day that ended alike (few callers call twice a day).
    for day, (line, language, caller, outcome, node, contact, dial), (count,) in _by_day(
        session, Call.started_at, zone, start, end,
        (Call.called, Call.language, Call.caller, Call.outcome, Call.last_node,
         Call.transferred_contact, Call.dial_outcome),
        (func.count(),),
    ):  # fmt: skip
        counts, lang = days[(day, line or NO_LINE)], language or ""
        counts.counts[(CALLS, lang, "")] += count
        if outcome == CallOutcome.REACHED.value:
            counts.counts[(REACHED, lang, "")] += count
        elif outcome == CallOutcome.NOT_ANSWERED.value:
            counts.counts[(NOT_ANSWERED, lang, "")] += count
        elif outcome in ended_in_a_menu:
            counts.counts[(DROP_OFF, node or "", "")] += count
        if contact is not None:
            counts.counts[(TRANSFERS, contact, dial or "")] += count
        if caller is not None:
            counts.callers[lang].add(caller)
    for day, (line, node, key), (count,) in _by_day(
        session, CallEvent.at, zone, start, end, (Call.called, CallEvent.node, CallEvent.detail),
        (func.count(),), CallEvent.kind == CallEventKind.KEY.value, CallEvent.call_id == Call.id,
    ):  # fmt: skip
        days[(day, line or NO_LINE)].counts[(OPTIONS, node or "", key or "")] += count
    # A literal, which the partial index ix_messages_texts_created_at matches.
    for day, (line,), (count,) in _by_day(
        session, Message.created_at, zone, start, end, (Message.line,), (func.count(),),
        Message.body != literal_column("''"),
    ):  # fmt: skip
        days[(day, line or NO_LINE)].counts[(TEXTS, "", "")] += count
    _count_texts_in(session, zone, start, end, days)
    _count_follow_ups(session, zone, start, end, days)
    return days


def _count_texts_in(
    session: Session,
    zone: tzinfo,
    start: datetime,
    end: datetime,
    days: dict[tuple[date, str], DayCounts],
) -> None:
    """Into `days`, from the texts in: the numbers that texted, the conversations started (a
    text is the first of one when its number's text to that line before it came more than
    CONVERSATION_TTL earlier, or never) and the STOPs, by the language of the conversation."""
    # The language looked up by id for each text: PostgreSQL would rather hash every
    # conversation for the few texts of the rest of a day.
    language = (
        select(Conversation.language)
        .where(Conversation.id == Message.conversation_id)
        .scalar_subquery()
    )
    query = (
        select(Message.created_at, Message.phone, Message.line, Message.intent, language)
        .where(
            # A literal, which the partial index ix_messages_inbound_created_at matches.
            Message.direction == literal_column(f"'{Direction.IN.value}'"),
            Message.created_at >= start - CONVERSATION_TTL,
            Message.created_at < end,
        )
        .order_by(Message.phone, Message.line, Message.created_at, Message.id)
    )
    before: tuple[str | None, str | None, datetime | None] = (None, None, None)
    for at, phone, line, intent, language in session.execute(query):
        previous_phone, previous_line, previous_at = before
        starts = (
            (phone, line) != (previous_phone, previous_line)
            or previous_at is None
            or at - previous_at > CONVERSATION_TTL
        )
        before = (phone, line, at)
        if at < start:
            continue
        counts, lang = days[(at.astimezone(zone).date(), line or NO_LINE)], language or ""
        if phone is not None:
            counts.texters[lang].add(phone)
        if starts:
            counts.counts[(CONVERSATIONS, lang, "")] += 1
        if intent == "opt_out":
            counts.counts[(STOPS, lang, "")] += 1


def _count_follow_ups(
    session: Session,
    zone: tzinfo,
    start: datetime,
    end: datetime,
    days: dict[tuple[date, str], DayCounts],
) -> None:
    """Into `days` (line: none, a follow-up is a number's): follow-ups opened and closed by the
    day of each, and how long the closed ones waited (first attempt to closing)."""
    for day, (language,), (count,) in _by_day(
        session, FollowUp.opened_at, zone, start, end, (FollowUp.language,), (func.count(),)
    ):
        days[(day, NO_LINE)].counts[(OPENED, language or "", "")] += count
    for day, (language, first, closed), (count,) in _by_day(
        session, FollowUp.closed_at, zone, start, end,
        (FollowUp.language, FollowUp.first_attempt_at, FollowUp.closed_at), (func.count(),),
    ):  # fmt: skip
        counts = days[(day, NO_LINE)]
        counts.counts[(CLOSED, language or "", "")] += count
        assert isinstance(counts.waits, list)
        counts.waits.extend([_microseconds(closed - first)] * count)


def _microseconds(wait: timedelta) -> int:
    return (wait.days * 86_400 + wait.seconds) * 1_000_000 + wait.microseconds


# -- which rolled-up days changed ---------------------------------------------------------------


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", "UTC"))


def changed_days(session: Session, zone: tzinfo, since: datetime, before: datetime) -> set[date]:
    """The days (in `zone`) of the rows that tell of times before `before` (the start of
    today, or the end of today's rolled-up part) and changed at or after `since`.

    A call's days are those from the day it started to the day it was last heard of (its
    events lie between). Only calls that started before `before` are read: under a busy
    line's load, the few late facts of older calls rather than every call of the last minutes.
    A text's day, and the day after it (whether a later text started a conversation depends on
    it); every day with a text in of a conversation written since (its language, by which
    those days count it, may have changed); a follow-up's days, opened and closed."""
    days: set[date] = set()
    for started_at, last_seen_at in session.execute(
        select(Call.started_at, Call.last_seen_at).where(
            Call.updated_at >= since, Call.started_at < before
        )
    ):
        day = started_at.astimezone(zone).date()
        last = max(started_at, last_seen_at or started_at).astimezone(zone).date()
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    for (sent,) in session.execute(
        select(Message.created_at).where(Message.stored_at >= since, Message.created_at < before)
    ):
        days.update(
            {sent.astimezone(zone).date(), (sent + CONVERSATION_TTL).astimezone(zone).date()}
        )
    changed_conversations = select(Conversation.id).where(Conversation.stored_at >= since)
    for (sent,) in session.execute(
        select(Message.created_at).where(
            Message.conversation_id.in_(changed_conversations),
            Message.direction == Direction.IN.value,
            Message.created_at < before,
        )
    ):
        days.add(sent.astimezone(zone).date())
    for opened_at, closed_at in session.execute(
        select(FollowUp.opened_at, FollowUp.closed_at).where(FollowUp.stored_at >= since)
    ):
        for at in (opened_at, closed_at):
            if at is not None and at < before:  # (closed_at: NULL while it is open)
                days.add(at.astimezone(zone).date())
    return days


# -- reading the rollup -----------------------------------------------------------------------


@dataclass(frozen=True)
class RolledDay:
    written: str
    """A token of the write, new each time the day is rolled up."""
    until: datetime | None
    """Today's part: counted up to this time (None: the whole day)."""
    lines: dict[str, DayCounts]
    all_lines: DayCounts
    """The lines' counts together: what a range of every line adds up (a year of days, not
    of days and lines)."""


_DECODED: dict[tuple[str, date], RolledDay] = {}
"""(zone, day) -> the day as last read in this process: a day is read from the database again
only when it was rolled up again (another token), so that a year of days is not megabytes
fetched and decoded at every request. Never changed once in."""
_DECODED_DAYS = 4 * MAX_DAYS
"""Days kept (a year of days of two zones, and some); all are dropped when there are more."""


def _read_rolled(session: Session, zone: str, first: date, last: date) -> dict[date, RolledDay]:
    """The days from `first` to `last` rolled up (in this code's form)."""
    # On the session's connection: Core's rows (the ORM's cost more).
    connection = session.connection()
    of_the_range = (
        OverviewDay.zone == zone,
        OverviewDay.day >= first,
        OverviewDay.day <= last,
        OverviewDay.form == FORMAT,
    )
    days: dict[date, RolledDay] = {}
    to_read: list[date] = []
    for day, written in connection.execute(
        select(OverviewDay.day, OverviewDay.written).where(
            *of_the_range, OverviewDay.line == NO_LINE
        )
    ):
        decoded = _DECODED.get((zone, day))
        if decoded is not None and decoded.written == written:
            days[day] = decoded
        else:
            to_read.append(day)
    if len(_DECODED) + len(to_read) > _DECODED_DAYS:
        _DECODED.clear()
    found: dict[date, list[Any]] = defaultdict(list)
    for run_first, run_last in _runs(to_read):
        for row in connection.execute(
            select(
                OverviewDay.day,
                OverviewDay.line,
                OverviewDay.written,
                OverviewDay.until,
                OverviewDay.counts,
                OverviewDay.sets,
            ).where(*of_the_range, OverviewDay.day.between(run_first, run_last))
        ):
            found[row.day].append(row)
    for day, rows in found.items():
        lines = {row.line: DayCounts.unpacked(row.counts, row.sets) for row in rows}
        rolled = RolledDay(
            rows[0].written, rows[0].until, lines, DayCounts.combined(lines.values())
        )
        _DECODED[(zone, day)] = days[day] = rolled
    return days


def _runs(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Runs of consecutive days, as (first, last)."""
    run: list[date] = []
    for day in sorted(days):
        if run and day != run[-1] + timedelta(days=1):
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]


def day_parts(
    session: Session,
    zone: tzinfo,
    first: date,
    last: date,
    today: date,
    lines: Container[str] | None = None,
) -> list[Part]:
    """The counts of the days `first` to `last`, of `lines` (None: of every line, a rolled-up
    day's lines together): rolled-up days where they are current (of today's part, the rest
    of today counted live), the others counted live."""
    rollup = session.get(OverviewRollup, _zone_name(zone))
    usable: dict[date, RolledDay] = {}
    if rollup is not None and first <= today:
        rolled = _read_rolled(session, _zone_name(zone), first, min(last, today))
        since = rollup.checked_through - MARGIN
        before = max([day_start(today, zone), *(d.until for d in rolled.values() if d.until)])
        stale = changed_days(session, zone, since, before)
        usable = {
            day: rolled_day
            for day, rolled_day in rolled.items()
            if day not in stale and (day < today or rolled_day.until is not None)
        }
    parts = []
    for day, rolled_day in usable.items():
        if lines is None:
            parts.append(Part(day, ALL_LINES, rolled_day.all_lines))
        else:
            parts += [
                Part(day, line, counts)
                for line, counts in rolled_day.lines.items()
                if line in lines
            ]
    counted: list[dict[tuple[date, str], DayCounts]] = [
        count_days(session, zone, rolled_day.until, day_start(day + timedelta(1), zone))
        for day, rolled_day in usable.items()
        if rolled_day.until is not None  # the rest of the day, counted live
    ]
    wanted = (first + timedelta(days=n) for n in range((last - first).days + 1))
    for run_first, run_last in _runs(day for day in wanted if day not in usable):
        start, end = day_start(run_first, zone), day_start(run_last + timedelta(1), zone)
        counted.append(count_days(session, zone, start, end))
    for found in counted:
        parts += [
            Part(day, line, counts)
            for (day, line), counts in found.items()
            if lines is None or line in lines
        ]
    return parts


# -- keeping it ---------------------------------------------------------------------------------


def _write_days(
    session: Session,
    zone: str,
    days: dict[date, dict[str, DayCounts]],
    until: datetime | None = None,
) -> None:
    """Write `days` (each a day's counts by line), replacing what was rolled up of them."""
    if not days:
        return
    session.execute(
        delete(OverviewDay).where(OverviewDay.zone == zone, OverviewDay.day.in_(sorted(days)))
    )
    rows = []
    for day, lines in days.items():
        written = uuid.uuid4().hex  # tells this write of the day from any other
        for line, counts in {NO_LINE: DayCounts(), **lines}.items():
            packed, blob = counts.packed()
            rows.append(
                {
                    "zone": zone,
                    "day": day,
                    "line": line,
                    "written": written,
                    "form": FORMAT,
                    "until": until,
                    "counts": packed,
                    "sets": blob,
                }
            )
    session.execute(insert(OverviewDay), rows)


@dataclass
class RollupReport:
    recounted: int = 0
    added: int = 0
    to_add: int = 0
    part_until: datetime | None = None
    """The end of today's part rolled up (None: none is)."""


def roll_up(
    session: Session,
    zone: tzinfo,
    now: datetime | None = None,
    *,
    days: int = DAYS_PER_RUN,
    wait: bool = False,
) -> RollupReport:
    """Count again the rolled-up days whose rows changed, and roll up at most `days` of the days
    over (before today in `zone`) that are not rolled up yet, newest first, from the first day
    with rows (or the first day of the longest range, when that is earlier).
    Takes a session and never commits; one roll-up at a time (PostgreSQL: an advisory lock
    of the schema, which another process's roll-up holding it makes this one wait for, or,
    unless `wait`, skip; SQLite writes one transaction at a time)."""
    report = RollupReport()
    if session.get_bind().dialect.name == "postgresql":
        key = {"key": LOCK_KEY}
        if wait:
            session.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"), key)
        elif not session.scalar(text(f"SELECT pg_try_advisory_xact_lock({_SCHEMA_LOCK})"), key):
            return report
    now = now or utcnow()
    name = _zone_name(zone)
    today = now.astimezone(zone).date()
    rollup = session.get(OverviewRollup, name)
    today_starts = day_start(today, zone)
    rows: dict[date, datetime | None] = dict(
        session.execute(
            select(OverviewDay.day, OverviewDay.until).where(
                OverviewDay.zone == name, OverviewDay.line == NO_LINE, OverviewDay.form == FORMAT
            )
        ).all()
    )
    whole = {day for day, until in rows.items() if until is None and day != today}
    part_until = rows.get(today)  # the end of today's part rolled up
    stale = set()
    if rollup is not None and rows:
        since = rollup.checked_through - MARGIN
        stale = changed_days(session, zone, since, max(today_starts, part_until or today_starts))
        stale &= whole | {today}
    firsts = [
        session.scalar(select(func.min(column)))
        for column in (Call.started_at, Message.created_at, FollowUp.opened_at)
    ]
    first_row = min((first for first in firsts if first is not None), default=None)
    missing: list[date] = []
    if first_row is not None:
        day = today - timedelta(days=1)
        # Days with no rows too, as far back as the longest range (so that it reads no day
        # live but today).
        earliest = min(first_row.astimezone(zone).date(), today - timedelta(days=MAX_DAYS))
        while day >= earliest:
            if day not in whole:
                missing.append(day)
            day -= timedelta(days=1)
    report.to_add = max(len(missing) - days, 0)
    counted: dict[date, dict[str, DayCounts]] = {}
    for run_first, run_last in _runs([*(stale - {today}), *missing[:days]]):
        start, end = day_start(run_first, zone), day_start(run_last + timedelta(1), zone)
        found = count_days(session, zone, start, end)
        day = run_first
        while day <= run_last:
            counted[day] = {}
            day += timedelta(days=1)
        for (day, line), counts in found.items():
            counted[day][line] = counts
    report.recounted, report.added = len(stale - {today}), len(counted) - len(stale - {today})
    _write_days(session, name, counted)
    # Today up to a whole hour PART_BEHIND ago, when that hour moved on or what is rolled up
    # of today changed.
    until = (now - PART_BEHIND).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    report.part_until = part_until
    if until > today_starts and (part_until is None or part_until < until or today in stale):
        part = count_days(session, zone, today_starts, until)
        _write_days(session, name, {today: {line: c for (_, line), c in part.items()}}, until)
        report.part_until = until
    elif today in stale or (part_until is not None and until <= today_starts):
        forget = delete(OverviewDay).where(  # a stale part (a clock gone back): dropped
            OverviewDay.zone == name, OverviewDay.day == today
        )
        session.execute(forget)
        report.part_until = None
    stamp = upsert(session, OverviewRollup).values(zone=name, checked_through=now)
    session.execute(
        stamp.on_conflict_do_update(
            index_elements=["zone"], set_={"checked_through": stamp.excluded.checked_through}
        )
    )
    return report


def periodic_roll_up(timezone: str) -> Callable[[Session, datetime], None]:
    """The spool's periodic form of `roll_up`, for the clinic's zone `timezone`."""
    zone = zone_named(timezone)

    def run(session: Session, now: datetime) -> None:
        roll_up(session, zone, now)

    return run


# -- the waits of a range -------------------------------------------------------------------------


def median_and_longest(runs: list[Sequence[int]]) -> tuple[timedelta | None, timedelta | None]:
    """The median (of two middle values, their mean, as `statistics.median` of the waits in
    seconds) and the greatest of the waits, in microseconds, of sorted `runs` (a day's each)."""
    runs = [run for run in runs if run]
    total = sum(len(run) for run in runs)
    if not total:
        return None, None
    middle = [total // 2] if total % 2 else [total // 2 - 1, total // 2]
    values = [value / 1e6 for value in ranked(runs, middle[0], middle[-1])]
    median = values[0] if total % 2 else (values[0] + values[-1]) / 2
    return timedelta(seconds=median), timedelta(microseconds=max(run[-1] for run in runs))


def ranked(runs: list[Sequence[int]], first: int, last: int) -> list[int]:
    """The values of ranks `first` to `last` (from 0) of the sorted non-empty `runs` taken
    together, without merging them all (a year of days' waits merged takes over 30 ms).

    Every s-th value of each run makes a sorted sample. If c values of the sample are at most
    v, between s*c and s*c + (s-1)*len(runs) values of the runs are: so a value of the sample
    a little below the ranks wanted has at most `first` values at or below it, one a little
    above has more than `last`, and only the values between the two (about 2*s*len(runs),
    found by bisecting each run) are merged."""
    step = max(1, isqrt(sum(len(run) for run in runs) // len(runs)))
    sample = sorted(chain.from_iterable(run[step - 1 :: step] for run in runs))
    slack = (step - 1) * len(runs)
    below = (first - slack) // step - 1
    while below >= 0 and step * bisect_right(sample, sample[below]) + slack > first:
        below = bisect_left(sample, sample[below]) - 1  # below the values equal to it
    above = last // step  # step * (above + 1) > last
    starts = [bisect_right(run, sample[below]) if below >= 0 else 0 for run in runs]
    ends = [bisect_right(run, sample[above]) if above < len(sample) else len(run) for run in runs]
    before = sum(starts)
    window = sorted(
        chain.from_iterable(map(lambda run, start, end: run[start:end], runs, starts, ends))
    )
    return window[first - before : last - before + 1]
