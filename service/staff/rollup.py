"""The overview's numbers by the clinic's day, rolled up, so that a range of a year reads a few
hundred rows instead of counting a million calls.

What is rolled up, per day in the zone (TIMEZONE) and kept in `overview_day_counts`: in the
day's one day row (counts as JSON, sets as one blob), calls, calls that reached a person and
transfers not answered, follow-ups opened and closed, each by language; the distinct callers,
the conversations with a text in and the numbers opted out (by the language of their latest
conversation), each by language, as bitmaps (`Callers`, `BitMap64`), so that a range counts
each once; how long each follow-up closed that day waited (sorted, so that a range's median is
found without merging them: `ranked`). In rows of their own, for the charts: calls with no
transfer by their last menu (drop-off), transfers by contact and dial outcome, keys pressed by
menu and key (by the time the key was pressed) and texts. The follow-ups still open are
counted live from their few rows. Each process keeps the day rows it decoded (`_DECODED`)
until the day is written again (each write has a token of its own).

The numbers are those of counting the rows (`service.staff.queries.overview` and
`service.staff.headlines.headline_numbers`, which stay the definition), because:

- a day is taken from the rollup only when it is over (before today), or for today's part up
  to a whole hour at least PART_BEHIND ago (the rest of today counted live), and none of its
  rows changed after it was counted. Every write of a call sets `calls.updated_at`
  (`service/calls/store.py`), every write of a text, conversation, opt-out or follow-up its
  `stored_at` (the server's clock: `service.models.base.written_now`), so the days a changed
  row touches are known (`changed_days`): a call's, from its start to when it was last heard
  of; a text's; a follow-up's, opened and closed; an opt-out's; every day with a text in of a
  conversation (its language may have changed); and every day that holds a number whose
  opt-out, or whose conversation's language, changed (`changed_opt_outs`). The rollup of a
  zone is known current for changes before `checked_through - MARGIN` (MARGIN covers a write
  that committed a while after it took its time: one that commits more than MARGIN after it
  would not be seen); a request counts the days changed since then live, and the periodic job
  counts them again and writes them back;
- `phoneline purge` forgets the rolled-up days of the calls and texts it deletes
  (`forget_days`), in the transaction that deletes them;
- a day not rolled up (a changed day, a new zone, a job that has not run, a day row an older
  worker wrote in another form) is counted live, with the same grouped queries the job uses.

`roll_up` (the spool thread's periodic job, and `phoneline staff rollup`) counts the changed
days again, adds days not rolled up yet, newest first, DAYS_PER_RUN at a time, and rolls up
today's part again when its hour moves on.
"""

from __future__ import annotations

import json
import sys
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import chain
from math import isqrt
from typing import Any

from pyroaring import BitMap64
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

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
    OptOut,
    OverviewDayCount,
    OverviewRollup,
    utcnow,
)
from service.staff.headlines import (
    MAX_DAYS,
    Headlines,
    Range,
    count_still_open,
    language_of_phone,
)
from service.staff.localtime import zone_named
from service.staff.queries import Overview, add_purged, day_start

MARGIN = timedelta(minutes=10)
"""A write of a call is taken to commit within this of the time it gives `updated_at`."""
DAYS_PER_RUN = 31
"""Days not rolled up yet that one run of the periodic job adds (a month: ~90,000 calls)."""
DAY = "day"
"""The measure of the row that says a day is rolled up, and holds its headline numbers."""
FORMAT = "3"
"""The `detail` of a day row of the form this code writes and reads. A day row of another
(one an older worker wrote during a SIGHUP restart) is a day not rolled up: it is counted live
and rolled up again."""
UNTIL = " until "
"""The detail of the day row of a part of a day: FORMAT, UNTIL and the end of the part (ISO)."""
PART_BEHIND = timedelta(hours=1)
"""Today is rolled up up to a whole hour at least this long ago (its calls are over; what is
later is counted live), again when that hour moves on."""
CALLS, REACHED, NOT_ANSWERED, CALLERS = "calls", "reached", "not_answered", "callers"
DROP_OFF, TRANSFERS, OPTIONS, TEXTS = "drop_off", "transfers", "options", "texts"
OPENED, CLOSED = "follow_ups_opened", "follow_ups_closed"
CONVERSATIONS, OPT_OUTS, WAITS = "conversations", "opt_outs", "waits"
CHART_MEASURES = (DROP_OFF, TRANSFERS, OPTIONS, TEXTS)
"""Kept as rows of their own, read for the charts' days; the other measures of a day are in
its day row (a year of days is then a few hundred rows, not six thousand)."""
_LOCK = 7_281_406_515  # pg_advisory_xact_lock key: one roll-up at a time


def _e164_digits(caller: str) -> int | None:
    """An E.164 number ('+' and up to 15 digits, the first not 0) as the integer of its digits
    (one number, one integer, both ways), else None."""
    digits = caller[1:]
    if (
        caller[:1] == "+"
        and 0 < len(digits) <= 15
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
    ):
        return int(digits)
    return None


@dataclass
class Callers:
    """A set of callers (or texters): E.164 numbers as integers in a roaring bitmap (a year of
    days' callers, about a million numbers, is joined in milliseconds where a set of strings
    took 100 ms and more), anything else (a withheld or SIP caller) as itself."""

    numbers: BitMap64 = field(default_factory=BitMap64)
    others: set[str] = field(default_factory=set)

    def add(self, caller: str) -> None:
        number = _e164_digits(caller)
        if number is None:
            self.others.add(caller)
        else:
            self.numbers.add(number)

    def __len__(self) -> int:
        return len(self.numbers) + len(self.others)

    def __contains__(self, caller: str) -> bool:
        number = _e164_digits(caller)
        return caller in self.others if number is None else number in self.numbers

    @classmethod
    def union(cls, sets: Iterable[Callers]) -> Callers:
        sets = list(sets)
        return cls(
            BitMap64().union(*(each.numbers for each in sets)),
            set().union(*(each.others for each in sets)),
        )


def _part_until(form: str) -> datetime | None:
    """The end of the part of a day that a day row of `form` (its detail) holds; None when it
    holds no part (a whole day, or a row of another form)."""
    if not form.startswith(FORMAT + UNTIL):
        return None
    return datetime.fromisoformat(form.removeprefix(FORMAT + UNTIL))


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
    """What the overview counts of one day: its calls, texts, follow-ups and opt-outs."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(measure, key, detail) -> count; keys and details '' when NULL."""
    callers: dict[str, Callers] = field(default_factory=lambda: defaultdict(Callers))
    """language ('' when not known) -> the callers of the day."""
    conversations: dict[str, BitMap64] = field(default_factory=lambda: defaultdict(BitMap64))
    """language -> the ids of the conversations with a text in on the day."""
    opt_outs: dict[str, Callers] = field(default_factory=lambda: defaultdict(Callers))
    """language -> the numbers opted out on the day (and opted out still)."""
    waits: list[int] | array[int] = field(default_factory=list)
    """How long each follow-up closed on the day waited, in microseconds (read back sorted)."""
    until: datetime | None = None
    """The counts are of the day up to this time (today's, rolled up an hour behind), not of
    the whole day."""

    def rows(self) -> Iterator[tuple[str, str, str, int, bytes | None, str | None]]:
        """The day row (the headline numbers: counts in JSON, sets in one blob) and a row for
        each count of the charts."""
        counts = [[*key, n] for key, n in self.counts.items() if key[0] not in CHART_MEASURES]
        parts: list[tuple[str, str, bytes]] = []
        others: list[tuple[str, str, list[str]]] = []
        for measure, sets in ((CALLERS, self.callers), (OPT_OUTS, self.opt_outs)):
            for language, found in sets.items():
                numbers, strings = found.numbers.serialize(), sorted(found.others)
                parts.append((measure, language, numbers))
                if strings:
                    others.append((measure, language, strings))
        for language, ids in self.conversations.items():
            parts.append((CONVERSATIONS, language, ids.serialize()))
        if self.waits:
            parts.append((WAITS, "", _waits_stored(self.waits)))
        index = [(measure, language, len(blob)) for measure, language, blob in parts]
        packed = json.dumps({"counts": counts, "parts": index, "others": others})
        written = uuid.uuid4().hex  # tells this write of the day from any other
        form = FORMAT if self.until is None else f"{FORMAT}{UNTIL}{self.until.isoformat()}"
        yield DAY, written, form, 0, b"".join(blob for *_, blob in parts), packed
        for (measure, key, detail), count in self.counts.items():
            if measure in CHART_MEASURES:
                yield measure, key, detail, count, None, None

    def unpack(self, blob: bytes, packed: str) -> None:
        """The day row's numbers, into this (empty) DayCounts."""
        found = json.loads(packed)
        for measure, key, detail, count in found["counts"]:
            self.counts[(measure, key, detail)] = count
        at, view = 0, memoryview(blob)
        for measure, language, length in found["parts"]:
            part = view[at : at + length].tobytes()
            at += length
            if measure == CONVERSATIONS:
                self.conversations[language] = BitMap64.deserialize(part)
            elif measure == WAITS:
                self.waits = _waits_read(part)
            else:
                sets = self.callers if measure == CALLERS else self.opt_outs
                sets[language] = Callers(BitMap64.deserialize(part))
        for measure, language, strings in found["others"]:
            sets = self.callers if measure == CALLERS else self.opt_outs
            sets[language].others.update(strings)

    def plus(self, other: DayCounts) -> DayCounts:
        """The counts of both (the part of a day rolled up and the rest of it, counted live);
        neither is changed (a part may be one `_DECODED` holds)."""
        both = DayCounts(Counter(self.counts), waits=[*self.waits, *other.waits])
        both.counts.update(other.counts)
        for mine, theirs, joined in (
            (self.callers, other.callers, both.callers),
            (self.opt_outs, other.opt_outs, both.opt_outs),
        ):
            for language in {*mine, *theirs}:
                joined[language] = Callers.union(
                    found for part in (mine, theirs) if (found := part.get(language))
                )
        for language in {*self.conversations, *other.conversations}:
            ids = (part.get(language) for part in (self.conversations, other.conversations))
            both.conversations[language] = BitMap64().union(*(found for found in ids if found))
        return both

    def holds_opt_out(self, phones: Iterable[str]) -> bool:
        return any(phone in found for found in self.opt_outs.values() for phone in phones)


# -- counting the rows, by day ----------------------------------------------------------------


def _by_day(
    session: Session,
    column: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    zone: tzinfo,
    start: datetime,
    end: datetime | None,
    keys: tuple[Any, ...],
    counted: tuple[Any, ...],
    *where: ColumnElement[bool],
) -> Iterator[tuple[date, tuple[Any, ...], tuple[int, ...]]]:
    """(day in `zone`, keys, counts) of the rows with `start <= column < end` (no end: all
    after start). PostgreSQL converts each time to the zone; SQLite, which knows no zones,
    groups by UTC quarter-hour, each of which falls on one local day in any zone (offsets are
    whole quarter-hours); a (day, keys) may then come more than once, to be added up."""
    condition = [column >= start, *where]
    if end is not None:
        condition.append(column < end)
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
    session: Session, zone: tzinfo, start: datetime, end: datetime | None
) -> dict[date, DayCounts]:
    """The overview's counts of the calls that started (and keys pressed) from `start` to `end`
    (None: everything after `start`), by day in `zone`."""
    days: dict[date, DayCounts] = defaultdict(DayCounts)
    reached = func.count(case((Call.outcome == CallOutcome.REACHED.value, 1)))
    not_answered = func.count(case((Call.outcome == CallOutcome.NOT_ANSWERED.value, 1)))
    for day, (language, caller), (calls, n_reached, n_not_answered) in _by_day(
        session,
        Call.started_at,
        zone,
        start,
        end,
        (Call.language, Call.caller),
        (func.count(), reached, not_answered),
    ):
        counts, lang = days[day].counts, language or ""
        counts[(CALLS, lang, "")] += calls
        counts[(REACHED, lang, "")] += n_reached
        counts[(NOT_ANSWERED, lang, "")] += n_not_answered
        if caller is not None:
            days[day].callers[lang].add(caller)
    for day, (node,), (count,) in _by_day(
        session,
        Call.started_at,
        zone,
        start,
        end,
        (Call.last_node,),
        (func.count(),),
        Call.outcome.in_([CallOutcome.HUNG_UP.value, CallOutcome.LISTENED.value]),
    ):
        days[day].counts[(DROP_OFF, node or "", "")] += count
    for day, (contact, dial_outcome), (count,) in _by_day(
        session,
        Call.started_at,
        zone,
        start,
        end,
        (Call.transferred_contact, Call.dial_outcome),
        (func.count(),),
        Call.transferred_contact.is_not(None),
    ):
        days[day].counts[(TRANSFERS, contact or "", dial_outcome or "")] += count
    for day, (node, key), (count,) in _by_day(
        session,
        CallEvent.at,
        zone,
        start,
        end,
        (CallEvent.node, CallEvent.detail),
        (func.count(),),
        CallEvent.kind == CallEventKind.KEY.value,
    ):
        days[day].counts[(OPTIONS, node or "", key or "")] += count
    _count_texts_and_follow_ups(session, zone, start, end, days)
    return days


def _count_texts_and_follow_ups(
    session: Session,
    zone: tzinfo,
    start: datetime,
    end: datetime | None,
    days: dict[date, DayCounts],
) -> None:
    """Into `days`: texts (with a body) and text conversations (with a text in) by the day of
    the message, follow-ups opened and closed (and how long the closed ones waited) by the day
    of each, and the numbers opted out by the day they did."""
    # Literals, which the partial indexes on messages match.
    for day, (), (count,) in _by_day(
        session, Message.created_at, zone, start, end, (), (func.count(),),
        Message.body != literal_column("''"),
    ):  # fmt: skip
        days[day].counts[(TEXTS, "", "")] += count
    for day, (language, conversation_id), _ in _by_day(
        session, Message.created_at, zone, start, end,
        (Conversation.language, Message.conversation_id), (func.count(),),
        Message.direction == literal_column(f"'{Direction.IN.value}'"),
        Message.conversation_id == Conversation.id,
    ):  # fmt: skip
        days[day].conversations[language or ""].add(conversation_id)
    for day, (language,), (count,) in _by_day(
        session, FollowUp.opened_at, zone, start, end, (FollowUp.language,), (func.count(),)
    ):
        days[day].counts[(OPENED, language or "", "")] += count
    for day, (language, first, closed), (count,) in _by_day(
        session, FollowUp.closed_at, zone, start, end,
        (FollowUp.language, FollowUp.first_attempt_at, FollowUp.closed_at), (func.count(),),
    ):  # fmt: skip
        days[day].counts[(CLOSED, language or "", "")] += count
        waits = days[day].waits
        assert isinstance(waits, list)
        waits.extend([_microseconds(closed - first)] * count)
    for day, (language, phone), _ in _by_day(
        session, OptOut.changed_at, zone, start, end, (language_of_phone(), OptOut.phone),
        (func.count(),), OptOut.opted_out.is_(True),
    ):  # fmt: skip
        days[day].opt_outs[language or ""].add(phone)


def _microseconds(wait: timedelta) -> int:
    return (wait.days * 86_400 + wait.seconds) * 1_000_000 + wait.microseconds


# -- reading the rollup -----------------------------------------------------------------------


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", "UTC"))


def changed_days(session: Session, zone: tzinfo, since: datetime, before: datetime) -> set[date]:
    """The days (in `zone`) of the rows that tell of times before `before` (the start of
    today, or the end of today's rolled-up part) and changed at or after `since`. A call's days
    are those from the day it started to the day it was last heard of (its events, and any
    start it had before, lie between). Only calls that started before `before` are read:
    under a busy line's load, the few late facts of older calls rather than every call of the
    last minutes."""
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
    # Texts, follow-ups and opt-outs: the days of those written since (a follow-up's days are
    # those it opened and closed on), and every day with a text in of a conversation written
    # since (its language, by which those days count it, may have changed). The day an opt-out
    # was on before it changed, and those of a number whose language changed, are the days
    # that hold the number (`changed_opt_outs`).
    changed_conversations = select(Conversation.id).where(Conversation.stored_at >= since)
    for at, changed in (
        (Message.created_at, Message.stored_at >= since),
        (
            Message.created_at,
            Message.conversation_id.in_(changed_conversations)
            & (Message.direction == Direction.IN.value),
        ),
        (FollowUp.opened_at, FollowUp.stored_at >= since),
        (FollowUp.closed_at, FollowUp.stored_at >= since),
        (OptOut.changed_at, OptOut.stored_at >= since),
    ):
        for (time,) in session.execute(select(at).where(changed, at < before)):
            if time is not None:  # (closed_at: NULL is never before)
                days.add(time.astimezone(zone).date())
    return days


def changed_opt_outs(session: Session, since: datetime) -> set[str]:
    """The numbers with an opt-out whose opt-out, or a conversation of which (its language,
    the opt-out's), was written at or after `since`."""
    return set(
        session.scalars(
            select(OptOut.phone)
            .where(OptOut.stored_at >= since)
            .union(
                select(OptOut.phone).where(
                    OptOut.phone.in_(
                        select(Conversation.phone).where(Conversation.stored_at >= since)
                    )
                )
            )
        )
    )


@dataclass(frozen=True)
class _Decoded:
    written: str
    """The day row's `key`: a token of the write, new each time the day is rolled up."""
    counts: DayCounts


_DECODED: dict[tuple[str, date], _Decoded] = {}
"""(zone, day) -> the day row as last read in this process: a day is read from the database
again only when it was rolled up again (another token), so that a year of days is not a few
megabytes fetched and decoded at every request. Never changed once in (see _read_rolled)."""
_DECODED_DAYS = 4 * MAX_DAYS
"""Days kept (a year of days of two zones, and some); all are dropped when there are more."""


def _read_rolled(
    session: Session, zone: str, first: date, last: date, headlines_only_before: date | None
) -> dict[date, DayCounts]:
    """The days from `first` to `last` rolled up (in this code's form), each with its
    headline numbers and, from `headlines_only_before` on (None: from `first`), its charts'."""
    # On the session's connection: Core's rows (the ORM's cost more).
    connection = session.connection()
    day_rows = (
        OverviewDayCount.zone == zone,
        OverviewDayCount.day >= first,
        OverviewDayCount.day <= last,
        OverviewDayCount.measure == DAY,
        (OverviewDayCount.detail == FORMAT) | OverviewDayCount.detail.startswith(FORMAT + UNTIL),
    )
    days: dict[date, DayCounts] = {}
    to_read: list[date] = []
    for day, written in connection.execute(
        select(OverviewDayCount.day, OverviewDayCount.key).where(*day_rows)
    ):
        decoded = _DECODED.get((zone, day))
        if decoded is not None and decoded.written == written:
            days[day] = decoded.counts
        else:
            to_read.append(day)
    if len(_DECODED) + len(to_read) > _DECODED_DAYS:
        _DECODED.clear()
    for run_first, run_last in _runs(to_read):
        for day, written, form, blob, packed in connection.execute(
            select(
                OverviewDayCount.day,
                OverviewDayCount.key,
                OverviewDayCount.detail,
                OverviewDayCount.member_ids,
                OverviewDayCount.members,
            ).where(*day_rows, OverviewDayCount.day.between(run_first, run_last))
        ):
            counts = DayCounts()
            counts.unpack(blob or b"", packed or "{}")
            counts.until = _part_until(form)
            _DECODED[(zone, day)] = _Decoded(written, counts)
            days[day] = counts
    charts_from = max(first, headlines_only_before or first)
    with_charts: set[date] = set()
    for day, measure, key, detail, count in connection.execute(
        select(
            OverviewDayCount.day,
            OverviewDayCount.measure,
            OverviewDayCount.key,
            OverviewDayCount.detail,
            OverviewDayCount.count,
        ).where(
            OverviewDayCount.zone == zone,
            OverviewDayCount.day >= charts_from,
            OverviewDayCount.day <= last,
            OverviewDayCount.measure.in_(CHART_MEASURES),
        )
    ):
        if day not in days:
            continue
        if day not in with_charts:  # a copy: what _DECODED holds is never changed
            with_charts.add(day)
            days[day] = replace(days[day], counts=Counter(days[day].counts))
        days[day].counts[(measure, key, detail)] = count
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


def day_counts(
    session: Session,
    zone: tzinfo,
    first: date,
    last: date,
    today: date,
    *,
    open_ended: bool = False,
    headlines_only_before: date | None = None,
) -> dict[date, DayCounts]:
    """The counts of the days `first` to `last` (and, when `open_ended`, of everything after
    `last`): rolled-up days where they are current (of a part of a day, the rest of the day
    counted live), the others counted live. Rolled-up days before `headlines_only_before` are
    read for the headline measures alone (their day rows), without the charts'."""
    rollup = session.get(OverviewRollup, _zone_name(zone))
    usable: dict[date, DayCounts] = {}
    if rollup is not None and first <= today:
        rolled = _read_rolled(
            session, _zone_name(zone), first, min(last, today), headlines_only_before
        )
        since = rollup.checked_through - MARGIN
        before = max([day_start(today, zone), *(c.until for c in rolled.values() if c.until)])
        stale = changed_days(session, zone, since, before)
        phones = changed_opt_outs(session, since)
        usable = {
            day: counts
            for day, counts in rolled.items()
            if day not in stale
            and not counts.holds_opt_out(phones)
            and (day < today or counts.until is not None)
        }
    found = dict(usable)

    def counted_live(start: datetime, last_day: date) -> dict[date, DayCounts]:
        """The days from `start` to the end of `last_day` (when open-ended, everything after)."""
        end = None if open_ended and last_day == last else day_start(last_day + timedelta(1), zone)
        return count_days(session, zone, start, end)

    for day, part in usable.items():
        if part.until is not None:  # the part of the day after it, counted live
            rest = counted_live(part.until, day)
            found.update(rest)
            found[day] = part.plus(rest.get(day, DayCounts()))
    wanted = (first + timedelta(days=n) for n in range((last - first).days + 1))
    for run_first, run_last in _runs(day for day in wanted if day not in usable):
        found.update(counted_live(day_start(run_first, zone), run_last))
    return found


# -- keeping it ---------------------------------------------------------------------------------


def _write_days(session: Session, zone: str, days: dict[date, DayCounts]) -> None:
    if not days:
        return
    session.execute(
        delete(OverviewDayCount).where(
            OverviewDayCount.zone == zone, OverviewDayCount.day.in_(sorted(days))
        )
    )
    rows = [
        {
            "zone": zone,
            "day": day,
            "measure": measure,
            "key": key,
            "detail": detail,
            "count": count,
            "member_ids": member_ids,
            "members": members,
        }
        for day, counts in days.items()
        for measure, key, detail, count, member_ids, members in counts.rows()
    ]
    session.execute(insert(OverviewDayCount), rows)


@dataclass
class RollupReport:
    recounted: int = 0
    added: int = 0
    to_add: int = 0
    part_until: datetime | None = None
    """The end of today's part rolled up (None: none is)."""


def roll_up(
    session: Session, zone: tzinfo, now: datetime | None = None, *, days: int = DAYS_PER_RUN
) -> RollupReport:
    """Count again the rolled-up days whose rows changed, and roll up at most `days` of the days
    over (before today in `zone`) that are not rolled up yet, newest first, from the first day
    with rows (or the first day of the longest range, when that is earlier).
    Takes a session and never commits; one roll-up at a time (PostgreSQL: an advisory lock;
    SQLite writes one transaction at a time)."""
    report = RollupReport()
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK}
    ):
        return report
    now = now or utcnow()
    name = _zone_name(zone)
    today = now.astimezone(zone).date()
    rollup = session.get(OverviewRollup, name)
    today_starts = day_start(today, zone)
    forms = dict(
        session.execute(
            select(OverviewDayCount.day, OverviewDayCount.detail).where(
                OverviewDayCount.zone == name, OverviewDayCount.measure == DAY
            )
        ).all()
    )
    rolled = {day for day, form in forms.items() if form == FORMAT}
    part_until = _part_until(forms.get(today, ""))  # of today's part rolled up
    stale = set()
    if rollup is not None and forms:
        since = rollup.checked_through - MARGIN
        stale = changed_days(session, zone, since, max(today_starts, part_until or today_starts))
        phones = changed_opt_outs(session, since)
        if phones:  # the days that hold them (their day rows alone: after `today`, no chart)
            held = _read_rolled(session, name, min(forms), today, today + timedelta(1))
            stale |= {day for day, counts in held.items() if counts.holds_opt_out(phones)}
        stale &= rolled | {today}
    firsts = [
        session.scalar(select(func.min(column)))
        for column in (Call.started_at, Message.created_at, FollowUp.opened_at, OptOut.changed_at)
    ]
    first_row = min((first for first in firsts if first is not None), default=None)
    missing: list[date] = []
    if first_row is not None:
        day = today - timedelta(days=1)
        # Days with no rows too, as far back as the longest range (so that it reads no day
        # live but today).
        earliest = min(first_row.astimezone(zone).date(), today - timedelta(days=MAX_DAYS))
        while day >= earliest:
            if day not in rolled:
                missing.append(day)
            day -= timedelta(days=1)
    report.to_add = max(len(missing) - days, 0)
    counted: dict[date, DayCounts] = {}
    for run_first, run_last in _runs([*(stale - {today}), *missing[:days]]):
        start, end = day_start(run_first, zone), day_start(run_last + timedelta(1), zone)
        found = count_days(session, zone, start, end)
        day = run_first
        while day <= run_last:
            counted[day] = found.get(day, DayCounts())
            day += timedelta(days=1)
    report.recounted, report.added = len(stale - {today}), len(counted) - len(stale - {today})
    # Today up to a whole hour PART_BEHIND ago, when that hour moved on or what is rolled up
    # of today changed.
    until = (now - PART_BEHIND).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    report.part_until = part_until
    if until > today_starts and (part_until is None or part_until < until or today in stale):
        part = count_days(session, zone, today_starts, until).get(today, DayCounts())
        part.until = report.part_until = until
        counted[today] = part
    elif today in stale or (part_until is not None and until <= today_starts):
        forget = delete(OverviewDayCount).where(  # a stale part (a clock gone back): dropped
            OverviewDayCount.zone == name, OverviewDayCount.day == today
        )
        session.execute(forget)
        report.part_until = None
    _write_days(session, name, counted)
    stamp = upsert(session, OverviewRollup).values(zone=name, checked_through=now)
    session.execute(
        stamp.on_conflict_do_update(
            index_elements=["zone"], set_={"checked_through": stamp.excluded.checked_through}
        )
    )
    return report


def forget_days(session: Session, first: datetime, last: datetime) -> None:
    """Drop the rolled-up days, in every zone, that calls started from `first` to `last` can
    fall on (a zone's day is within a day of the UTC one)."""
    session.execute(
        delete(OverviewDayCount).where(
            OverviewDayCount.day >= first.astimezone(UTC).date() - timedelta(days=1),
            OverviewDayCount.day <= last.astimezone(UTC).date() + timedelta(days=1),
        )
    )


def periodic_roll_up(timezone: str) -> Callable[[Session, datetime], None]:
    """The spool's periodic form of `roll_up`, for the clinic's zone `timezone`."""
    zone = zone_named(timezone)

    def run(session: Session, now: datetime) -> None:
        roll_up(session, zone, now)

    return run


# -- the overview from the rollup ------------------------------------------------------------------


def rolled_overview(
    session: Session,
    today: date,
    zone: tzinfo,
    days: int = 30,
    counted: dict[date, DayCounts] | None = None,
) -> Overview:
    """`service.staff.queries.overview`, its calls and keys read from the rollup (or from
    `counted`, the day counts of its days and every one after, as `page_numbers` shares)."""
    first = today - timedelta(days=days - 1)
    result = Overview(days=[first + timedelta(days=n) for n in range(days)])
    if counted is None:
        # Like the live count, everything from the first day on (a clock behind the line's too).
        counted = day_counts(session, zone, first, today, today, open_ended=True)
    for day, counts in counted.items():
        if day < first:
            continue
        for (measure, key, detail), count in counts.counts.items():
            if measure == CALLS:
                result.calls_per_day[day] = result.calls_per_day.get(day, 0) + count
            elif measure == OPTIONS:
                result.options[(key or "?", detail or "?")] += count
            elif measure == DROP_OFF:
                result.drop_off[key or "(before the first menu)"] += count
            elif measure == TRANSFERS:
                result.transfers[key or "?"][detail or "no result"] += count
            elif measure == TEXTS:
                result.texts_per_day[day] = result.texts_per_day.get(day, 0) + count
    add_purged(session, result)
    return result


def rolled_headlines(
    session: Session,
    chosen: Range,
    today: date,
    counted: dict[date, DayCounts] | None = None,
) -> Headlines:
    """`service.staff.headlines.headline_numbers`, read from the rollup (or from `counted`,
    day counts that include the range's), but for the follow-ups still open."""
    result = Headlines(chosen)
    summed = (CALLS, REACHED, NOT_ANSWERED, OPENED, CLOSED)
    for measure in (*summed, CALLERS, CONVERSATIONS, OPT_OUTS):
        result.counts[measure] = Counter()
    if counted is None:
        counted = day_counts(
            session,
            chosen.zone,
            chosen.first,
            chosen.last,
            today,
            headlines_only_before=today,  # no chart
        )
    callers: dict[str, list[Callers]] = defaultdict(list)
    opt_outs: dict[str, list[Callers]] = defaultdict(list)
    conversations: dict[str, list[BitMap64]] = defaultdict(list)
    waits: list[Sequence[int]] = []
    for day, counts in counted.items():
        if not chosen.first <= day <= chosen.last:
            continue
        for (measure, key, _detail), count in counts.counts.items():
            if measure in summed:
                result.counts[measure][key] += count
        for language, of_the_day in counts.callers.items():
            callers[language].append(of_the_day)
        for language, of_the_day in counts.opt_outs.items():
            opt_outs[language].append(of_the_day)
        for language, ids in counts.conversations.items():
            conversations[language].append(ids)
        if counts.waits:
            waits.append(counts.waits if isinstance(counts.waits, array) else sorted(counts.waits))
    joined = {language: Callers.union(days) for language, days in callers.items()}
    for language, of_the_range in joined.items():
        result.counts[CALLERS][language] = len(of_the_range)
    # A number's opt-out is on one day, a conversation counted in one language: the one it has
    # now (a day that counts it in another is not current; see changed_days).
    for language, numbers in opt_outs.items():
        result.counts[OPT_OUTS][language] = len(Callers.union(numbers))
    for language, days in conversations.items():
        result.counts[CONVERSATIONS][language] = len(BitMap64().union(*days))
    result.median_wait, result.longest_wait = median_and_longest(waits)
    count_still_open(session, result)
    for measure, by_language in result.counts.items():
        result.totals[measure] = sum(by_language.values())
    result.totals[CALLERS] = len(Callers.union(joined.values()))
    return result


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


def page_numbers(
    session: Session, today: date, chosen: Range, days: int = 30
) -> tuple[Overview, Headlines]:
    """The overview's charts (the last `days` days) and the headline numbers of `chosen`,
    the day counts read once when the two ranges meet."""
    zone, first = chosen.zone, today - timedelta(days=days - 1)
    if chosen.first > today + timedelta(days=1) or chosen.last < first - timedelta(days=1):
        return rolled_overview(session, today, zone, days), rolled_headlines(session, chosen, today)
    counted = day_counts(
        session,
        zone,
        min(first, chosen.first),
        max(today, chosen.last),
        today,
        open_ended=True,
        headlines_only_before=first,
    )
    return (
        rolled_overview(session, today, zone, days, counted),
        rolled_headlines(session, chosen, today, counted),
    )
