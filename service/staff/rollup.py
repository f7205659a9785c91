"""The overview's counts of calls by the clinic's day, rolled up for days that are over, so that
a range of a year reads a few thousand rows instead of counting a million calls.

What is rolled up, per day in the zone (TIMEZONE) and kept in `overview_day_counts`: calls,
calls that reached a person and transfers not answered, each by language; the day's distinct
callers of each language (the numbers themselves, as a bitmap: `Callers`, so that a range
counts each caller once); calls with no transfer by their last menu (drop-off); transfers by
contact and dial outcome; and keys pressed by menu and key (by the time the key was pressed).
Everything else on the overview (texts, follow-ups, opt-outs) is counted live from indexes.

The numbers are those of counting the rows (`service.staff.queries.overview` and
`service.staff.headlines.headline_numbers`, which stay the definition), because:

- a day is taken from the rollup only when it is over (before today) and none of its calls
  changed after it was counted: every write of a call sets `calls.updated_at`
  (`service/calls/store.py`), and a call's events and any earlier start time it had lie between
  its `started_at` and `last_seen_at`, so the days a changed call touches are known. The rollup
  of a zone is known current for changes before `checked_through - MARGIN` (MARGIN covers a
  write that committed a while after it took its time: one that commits more than MARGIN after
  it would not be seen); a request counts the days of calls changed since then live, and the
  periodic job counts them again and writes them back;
- `phoneline purge` forgets the rolled-up days of the calls it deletes (`forget_days`), in the
  transaction that deletes them;
- a day not rolled up (today, a changed day, a new zone, a job that has not run) is counted
  live, with the same grouped queries the job uses.

`roll_up` (the spool thread's periodic job, and `phoneline staff rollup`) counts the changed
days again and adds days not rolled up yet, newest first, DAYS_PER_RUN at a time.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
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
    OverviewDayCount,
    OverviewRollup,
    utcnow,
)
from service.staff.headlines import Headlines, Range, count_the_rest
from service.staff.localtime import zone_named
from service.staff.queries import Overview, add_texts_and_purged, day_start

MARGIN = timedelta(minutes=10)
"""A write of a call is taken to commit within this of the time it gives `updated_at`."""
DAYS_PER_RUN = 31
"""Days not rolled up yet that one run of the periodic job adds (a month: ~90,000 calls)."""
DAY = "day"
"""The measure of the row that says a day is rolled up."""
CALLS, REACHED, NOT_ANSWERED, CALLERS = "calls", "reached", "not_answered", "callers"
DROP_OFF, TRANSFERS, OPTIONS = "drop_off", "transfers", "options"
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
    """A set of callers: E.164 numbers as integers in a roaring bitmap (a year of days' callers,
    about a million numbers, is joined in milliseconds where a set of strings took 100 ms and
    more), anything else (a withheld or SIP caller) as itself."""

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

    @classmethod
    def union(cls, sets: Iterable[Callers]) -> Callers:
        sets = list(sets)
        return cls(
            BitMap64().union(*(each.numbers for each in sets)),
            set().union(*(each.others for each in sets)),
        )

    def stored(self) -> tuple[bytes, str | None]:
        """As `overview_day_counts` keeps them: (`member_ids`, `members`, a JSON list)."""
        return self.numbers.serialize(), json.dumps(sorted(self.others)) if self.others else None

    @classmethod
    def read(cls, member_ids: bytes | None, members: str | None) -> Callers:
        if member_ids is not None:
            return cls(BitMap64.deserialize(member_ids), set(json.loads(members or "[]")))
        # A row of the form before member_ids, every number in members, one a line: the
        # migration drops them, but a worker still running the old code during a SIGHUP
        # restart may write one after it.
        found = cls()
        for caller in members.split("\n") if members else ():
            found.add(caller)
        return found


@dataclass
class DayCounts:
    """What the overview counts of one day's calls."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(measure, key, detail) -> count; keys and details '' when NULL."""
    callers: dict[str, Callers] = field(default_factory=lambda: defaultdict(Callers))
    """language ('' when not known) -> the callers of the day."""

    def rows(self) -> Iterator[tuple[str, str, str, int, bytes | None, str | None]]:
        yield DAY, "", "", 0, None, None
        for (measure, key, detail), count in self.counts.items():
            yield measure, key, detail, count, None, None
        for language, callers in self.callers.items():
            yield CALLERS, language, "", len(callers), *callers.stored()


# -- counting the rows, by day ----------------------------------------------------------------


def _by_day(
    session: Session,
    column: InstrumentedAttribute[datetime],
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
    return days


# -- reading the rollup -----------------------------------------------------------------------


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", "UTC"))


def changed_days(session: Session, zone: tzinfo, since: datetime, today: date) -> set[date]:
    """The days (in `zone`) before `today` of the calls changed at or after `since`: from the
    day each started to the day it was last heard of (its events, and any start it had before,
    lie between). A call that started today touches no day before it (today is never rolled
    up), so only calls that started earlier are read: under a busy line's load, the few late
    facts of older calls rather than every call of the last minutes."""
    days: set[date] = set()
    for started_at, last_seen_at in session.execute(
        select(Call.started_at, Call.last_seen_at).where(
            Call.updated_at >= since, Call.started_at < day_start(today, zone)
        )
    ):
        day = started_at.astimezone(zone).date()
        last = max(started_at, last_seen_at or started_at).astimezone(zone).date()
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return days


def _read_rolled(
    session: Session, zone: str, first: date, last: date, headlines_only_before: date | None
) -> dict[date, DayCounts]:
    days: dict[date, DayCounts] = {}
    wanted = [
        OverviewDayCount.zone == zone,
        OverviewDayCount.day >= first,
        OverviewDayCount.day <= last,
    ]
    if headlines_only_before is not None:
        wanted.append(
            (OverviewDayCount.day >= headlines_only_before)
            | OverviewDayCount.measure.in_([DAY, CALLS, REACHED, NOT_ANSWERED, CALLERS])
        )
    rows = session.execute(
        select(
            OverviewDayCount.day,
            OverviewDayCount.measure,
            OverviewDayCount.key,
            OverviewDayCount.detail,
            OverviewDayCount.count,
            OverviewDayCount.member_ids,
            OverviewDayCount.members,
        ).where(*wanted)
    )
    for day, measure, key, detail, count, member_ids, members in rows:
        counts = days.setdefault(day, DayCounts())
        if measure == CALLERS:
            counts.callers[key] = Callers.read(member_ids, members)
        elif measure != DAY:
            counts.counts[(measure, key, detail)] = count
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
    `last`): rolled-up days where they are current, the others counted live. Rolled-up days
    before `headlines_only_before` are read for the headline measures alone (calls, reached,
    not answered, callers), without the charts' (a year of days: a fifth of the rows)."""
    rollup = session.get(OverviewRollup, _zone_name(zone))
    usable: dict[date, DayCounts] = {}
    if rollup is not None and first < today:
        rolled = _read_rolled(
            session, _zone_name(zone), first, min(last, today - timedelta(1)), headlines_only_before
        )
        stale = changed_days(session, zone, rollup.checked_through - MARGIN, today)
        usable = {day: counts for day, counts in rolled.items() if day not in stale}
    found = dict(usable)
    wanted = (first + timedelta(days=n) for n in range((last - first).days + 1))
    for run_first, run_last in _runs(day for day in wanted if day not in usable):
        end = None if open_ended and run_last == last else day_start(run_last + timedelta(1), zone)
        found.update(count_days(session, zone, day_start(run_first, zone), end))
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


def roll_up(
    session: Session, zone: tzinfo, now: datetime | None = None, *, days: int = DAYS_PER_RUN
) -> RollupReport:
    """Count again the rolled-up days whose calls changed, and roll up at most `days` of the
    days over (before today in `zone`) that have calls and are not rolled up yet, newest first.
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
    rolled = set(
        session.scalars(
            select(OverviewDayCount.day).where(
                OverviewDayCount.zone == name, OverviewDayCount.measure == DAY
            )
        )
    )
    stale = set()
    if rollup is not None:
        stale = changed_days(session, zone, rollup.checked_through - MARGIN, today) & rolled
    first_call = session.scalar(select(func.min(Call.started_at)))
    missing: list[date] = []
    if first_call is not None:
        day = today - timedelta(days=1)
        earliest = first_call.astimezone(zone).date()
        while day >= earliest:
            if day not in rolled:
                missing.append(day)
            day -= timedelta(days=1)
    report.to_add = max(len(missing) - days, 0)
    counted: dict[date, DayCounts] = {}
    for run_first, run_last in _runs([*stale, *missing[:days]]):
        start, end = day_start(run_first, zone), day_start(run_last + timedelta(1), zone)
        found = count_days(session, zone, start, end)
        day = run_first
        while day <= run_last:
            counted[day] = found.get(day, DayCounts())
            day += timedelta(days=1)
    _write_days(session, name, counted)
    report.recounted, report.added = len(stale), len(counted) - len(stale)
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
    add_texts_and_purged(session, result, zone)
    return result


def rolled_headlines(
    session: Session,
    chosen: Range,
    today: date,
    counted: dict[date, DayCounts] | None = None,
) -> Headlines:
    """`service.staff.headlines.headline_numbers`, its four call measures read from the rollup
    (or from `counted`, day counts that include the range's)."""
    result = Headlines(chosen)
    for measure in (CALLS, CALLERS, REACHED, NOT_ANSWERED):
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
    for day, counts in counted.items():
        if not chosen.first <= day <= chosen.last:
            continue
        for (measure, key, _detail), count in counts.counts.items():
            if measure in (CALLS, REACHED, NOT_ANSWERED):
                result.counts[measure][key] += count
        for language, of_the_day in counts.callers.items():
            callers[language].append(of_the_day)
    joined = {language: Callers.union(days) for language, days in callers.items()}
    for language, of_the_range in joined.items():
        result.counts[CALLERS][language] = len(of_the_range)
    count_the_rest(session, result)
    for measure, by_language in result.counts.items():
        result.totals[measure] = sum(by_language.values())
    result.totals[CALLERS] = len(Callers.union(joined.values()))
    return result


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
