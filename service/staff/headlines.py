"""The overview's numbers for a chosen range of the clinic's days: the headline numbers, each
split by language, and every chart's (calls and texts per day, options chosen, where callers
hang up, transfers by contact).

Every number but two is the sum, or for distinct numbers the union, of the range's days
(`service.staff.rollup`: `count_days` defines what a day counts, rolled up for the days that
are over). The two that are not of days are counted for the range from their few rows: the
follow-ups opened in it and still open now, and the numbers opted out at its end (the state of
each number at that moment: a number that opts back in later still counts, so that November's
figure does not change in December). Services take a session and never commit."""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from service.models import (
    Call,
    CallEvent,
    CallEventKind,
    Channel,
    Conversation,
    DailyAggregate,
    Direction,
    FollowUp,
    Message,
    Metric,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    Voicemail,
)
from service.models.calls import AFTER_HOURS as CLOSED_PREFIX
from service.staff.queries import FilterError, day_start, parse_day
from service.staff.rollup import (
    CALLERS,
    CALLS,
    CLOSED,
    CONVERSATIONS,
    DROP_OFF,
    MAX_DAYS,
    NOT_ANSWERED,
    OPENED,
    OPTIONS,
    REACHED,
    STOPS,
    TEXTERS,
    TEXTS,
    TRANSFERS,
    Numbers,
    day_parts,
    median_and_longest,
)

DEFAULT_DAYS = 30
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
UNKNOWN = ""
"""The language key of rows whose language is not known."""
STILL_OPEN, OPTED_OUT = "follow_ups_open", "opted_out"
VOICEMAILS, AFTER_HOURS, WAITING = "voicemails", "after_hours", "call_backs_waiting"
OF_ROWS = (VOICEMAILS, AFTER_HOURS, WAITING)
"""Measures counted for the range from their few rows (not rolled up by day)."""

MEASURES = (
    ("calls", "Calls", ""),
    ("callers", "Distinct callers", "each number once"),
    ("reached", "Calls that reached a person", "a transfer answered"),
    ("not_answered", "Transfers not answered", "busy, no answer or failed"),
    ("follow_ups_opened", "Follow-ups opened", ""),
    ("follow_ups_closed", "Follow-ups closed", ""),
    ("follow_ups_open", "Follow-ups opened in these days and still open", "now"),
    (
        "conversations",
        "Text conversations started",
        "a number's texts to the line, until 24 hours without one",
    ),
    ("texters", "Distinct texters", "numbers that texted the line, each once"),
    ("stops", "STOPs received", "texts that opted a number out, in these days"),
    (
        "opted_out",
        "Numbers opted out at the end of these days",
        "however they opted in or out since",
    ),
    ("voicemails", "Messages left", "voicemails callers left"),
    (
        "after_hours",
        "Call-backs asked for while closed",
        "by phone (press 2) or by text (CALL), to be placed once the contact opens",
    ),
    ("call_backs_waiting", "Call-backs asked for in these days and waiting for an opening", "now"),
)
"""The headline measures: key, label, and what the label means when it may be misread."""
DISTINCT = (CALLERS, TEXTERS)
"""Measures that count numbers: a number in two languages is one number in all."""
SUMMED = (CALLS, REACHED, NOT_ANSWERED, OPENED, CLOSED, CONVERSATIONS, STOPS)
"""The headline measures that are sums of the days'."""


@dataclass(frozen=True)
class Range:
    """From the start of `first` to the end of `last`, days in `zone`, both included."""

    first: date
    last: date
    zone: tzinfo

    @property
    def start(self) -> datetime:
        return day_start(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return day_start(self.last + timedelta(days=1), self.zone)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @classmethod
    def parse(cls, params: Mapping[str, str], today: date, zone: tzinfo) -> Range:
        def day(name: str, label: str) -> date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            found = parse_day(raw)  # strict: ASCII digits, a day the dashboard can show
            if found is None:
                raise FilterError(f"{label} must be a date like 2026-11-24")
            return found

        last = day("to", "To") or today
        first = day("from", "From") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise FilterError("From must not be after To")
        if (last - first).days >= MAX_DAYS:
            raise FilterError(f"Choose a range of at most {MAX_DAYS} days")
        return cls(first, last, zone)


@dataclass
class Report:
    """The overview's numbers of a range."""

    range: Range
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    """Headline measure -> language ('' when not known) -> count."""
    totals: Counter[str] = field(default_factory=Counter)
    """Headline measure -> count over every language (a number counted once)."""
    median_wait: timedelta | None = None
    longest_wait: timedelta | None = None
    """How long the follow-ups closed in the range waited (first attempt to closed); None when
    none closed."""
    calls_per_day: Counter[date] = field(default_factory=Counter)
    texts_per_day: Counter[date] = field(default_factory=Counter)
    """Texts received and sent, each day (with the days' purged calls and texts too)."""
    options: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(menu, key) -> times pressed."""
    drop_off: Counter[str] = field(default_factory=Counter)
    """Last menu -> calls that ended there without a transfer."""
    transfers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Contact -> dial outcome -> calls."""

    def languages(self) -> list[str]:
        seen = {lang for counts in self.counts.values() for lang, n in counts.items() if n}
        known = [lang for lang in LANGUAGE_NAMES if lang in seen]
        return known + sorted(seen - set(known) - {UNKNOWN}) + ([UNKNOWN] * (UNKNOWN in seen))

    def count(self, measure: str, language: str) -> int:
        return self.counts.get(measure, Counter())[language]


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code) if code else "Language not known"


def overview_report(
    session: Session,
    chosen: Range,
    today: date,
    lines: Container[str] | None = None,
    now: datetime | None = None,
) -> Report:
    """The numbers of the days of `chosen` (`today`: the clinic's today, in its zone; `now`:
    for what is still waiting). With `lines`, of those of the clinic's numbers only ('' for
    what belongs to no line); what has no line yet (follow-ups, the numbers opted out, purged
    days' counts) is then left out."""
    result = Report(chosen)
    for measure in (*SUMMED, *DISTINCT):
        result.counts[measure] = Counter()
    sets: dict[str, dict[str, list[Numbers]]] = {name: defaultdict(list) for name in DISTINCT}
    waits: list[Sequence[int]] = []
    range_counts: Counter[tuple[str, str, str]] = Counter()
    for part in day_parts(session, chosen.zone, chosen.first, chosen.last, today, lines):
        range_counts.update(part.counts.counts)
        result.calls_per_day[part.day] += part.counts.in_all[CALLS]
        result.texts_per_day[part.day] += part.counts.in_all[TEXTS]
        for name, of_the_day in ((CALLERS, part.counts.callers), (TEXTERS, part.counts.texters)):
            for language, numbers in of_the_day.items():
                sets[name][language].append(numbers)
        if part.counts.waits:
            day_waits = part.counts.waits
            waits.append(day_waits if isinstance(day_waits, array) else sorted(day_waits))
    for (measure, key, detail), count in range_counts.items():
        if measure in SUMMED:
            result.counts[measure][key] += count
        elif measure == OPTIONS:
            result.options[(key or "?", detail or "?")] += count
        elif measure == DROP_OFF:
            result.drop_off[key or "(before the first menu)"] += count
        elif measure == TRANSFERS:
            result.transfers[key or "?"][detail or "no result"] += count
    for measure, counts in result.counts.items():
        result.totals[measure] = sum(counts.values())
    for name, of_the_range in sets.items():
        joined = {language: Numbers.union(days) for language, days in of_the_range.items()}
        result.counts[name] = Counter({language: len(n) for language, n in joined.items()})
        result.totals[name] = len(Numbers.union(joined.values()))
    result.median_wait, result.longest_wait = median_and_longest(waits)
    for measure, counted in ((STILL_OPEN, _still_open), (OPTED_OUT, _opted_out_at_the_end)):
        result.counts[measure] = counted(session, chosen) if lines is None else Counter()
        result.totals[measure] = sum(result.counts[measure].values())
    of_rows = _of_rows(session, chosen, lines, now or datetime.now(UTC))
    for measure in OF_ROWS:
        result.counts[measure] = of_rows[measure]
        result.totals[measure] = sum(of_rows[measure].values())
    if lines is None:
        _add_purged(session, result)
    return result


def _of_rows(
    session: Session, chosen: Range, lines: Container[str] | None, now: datetime
) -> dict[str, Counter[str]]:
    """Messages left, call-backs asked for while closed, and those still waiting for an
    opening: counted from their few rows, by language, of the lines' numbers (a call's number
    called; a call-back's line number)."""
    counts: dict[str, Counter[str]] = {measure: Counter() for measure in OF_ROWS}

    def count(measure: str, language: str | None, number: str | None) -> None:
        if lines is None or (number or "") in lines:
            counts[measure][language or UNKNOWN] += 1

    start, end = chosen.start, chosen.end
    left = (
        select(Voicemail.language, Call.called)
        .outerjoin(Call, Call.call_sid == Voicemail.call_sid)
        .where(Voicemail.left_at >= start, Voicemail.left_at < end)
    )
    for language, called in session.execute(left):
        count(VOICEMAILS, language, called)
    asked = (
        select(Call.language, Call.called)
        .join(CallEvent, CallEvent.call_id == Call.id)
        .where(
            CallEvent.kind == CallEventKind.CALLBACK_REQUEST.value,
            CallEvent.detail.like(f"{CLOSED_PREFIX}%"),
            CallEvent.at >= start,
            CallEvent.at < end,
        )
    )
    for language, called in session.execute(asked):
        count(AFTER_HOURS, language, called)
    queued = select(
        OutboxMessage.language,
        OutboxMessage.from_number,
        OutboxMessage.status,
        OutboxMessage.next_attempt_at,
    ).where(
        OutboxMessage.kind == OutboxKind.CALL.value,
        OutboxMessage.created_at >= start,
        OutboxMessage.created_at < end,
        OutboxMessage.next_attempt_at > OutboxMessage.created_at,
    )
    for language, line_number, status, next_attempt_at in session.execute(queued):
        count(AFTER_HOURS, language, line_number)
        if status == OutboxStatus.PENDING.value and next_attempt_at > now:
            count(WAITING, language, line_number)
    return counts


def _by_language(session: Session, query: Any) -> Counter[str]:
    return Counter({(lang or UNKNOWN): int(n) for lang, n in session.execute(query)})


def _still_open(session: Session, chosen: Range) -> Counter[str]:
    """The follow-ups opened in the range and open now, by language: counted from the few
    open items (any item closed changes it)."""
    return _by_language(
        session,
        select(FollowUp.language, func.count())
        .where(
            FollowUp.opened_at >= chosen.start,
            FollowUp.opened_at < chosen.end,
            FollowUp.open_phone.is_not(None),  # the partial index ix_follow_ups_open_opened_at
        )
        .group_by(FollowUp.language),
    )


def _opted_out_at_the_end(session: Session, chosen: Range) -> Counter[str]:
    """The numbers opted out at the end of the range (of any of the line's numbers: counted
    once), by the language of their latest conversation. An opt-out row tells its state since
    it last changed; one changed
    after the range was in the state of its last STOP or START texted before the range ended
    (none left, once purged: not opted out)."""
    end = chosen.end
    last_word = (
        select(Message.intent)
        .where(
            Message.phone == OptOut.phone,
            Message.direction == Direction.IN.value,
            Message.intent.in_(["opt_out", "opt_in"]),
            Message.created_at < end,
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    language = (
        select(Conversation.language)
        .where(Conversation.phone == OptOut.phone)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    opted_out_then = case((OptOut.changed_at < end, OptOut.opted_out), else_=last_word == "opt_out")
    return _by_language(
        session,
        select(language, func.count(distinct(OptOut.phone)))
        .where(opted_out_then)
        .group_by(language),
    )


def _add_purged(session: Session, result: Report) -> None:
    """The calls and texts of the range's days whose rows were purged (kept as daily counts,
    by UTC day) to the charts' days."""
    for day, channel, count in session.execute(
        select(DailyAggregate.day, DailyAggregate.channel, func.sum(DailyAggregate.count))
        .where(
            DailyAggregate.day >= result.range.first,
            DailyAggregate.day <= result.range.last,
            (
                (DailyAggregate.channel == Channel.VOICE.value)
                & (DailyAggregate.metric == Metric.CALLS.value)
            )
            | (
                (DailyAggregate.channel == Channel.SMS.value)
                & DailyAggregate.metric.in_([Metric.MESSAGES_IN.value, Metric.MESSAGES_OUT.value])
            ),
        )
        .group_by(DailyAggregate.day, DailyAggregate.channel)
    ):
        per_day = result.calls_per_day if channel == Channel.VOICE.value else result.texts_per_day
        per_day[day if isinstance(day, date) else date.fromisoformat(str(day))] += int(count)


def wait_text(wait: timedelta | None) -> str:
    if wait is None:
        return "none closed"
    minutes = int(wait.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days {hours % 24} h"
