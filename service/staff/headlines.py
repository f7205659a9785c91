"""The overview's headline numbers for a chosen range of the clinic's days, each split by
language: calls, distinct callers, reached a person, transfers not answered, follow-ups opened /
closed / still open (and how long the closed ones waited), text conversations and opt-outs.

The four call measures are one grouped pass over the range's calls (on PostgreSQL read from
`ix_calls_started_at_id` alone, which includes the columns counted), distinct callers in all
one more; every other count is one grouped query over a time range that an index answers
(messages by created_at, follow-ups by opened_at and closed_at). Services take a session and
never commit."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from service.models import (
    Call,
    CallOutcome,
    Conversation,
    Direction,
    FollowUp,
    Message,
    OptOut,
)
from service.staff.queries import FilterError, day_start, parse_day

DEFAULT_DAYS = 30
MAX_DAYS = 366
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
UNKNOWN = ""
"""The language key of rows whose language is not known."""

MEASURES = (
    ("calls", "Calls"),
    ("callers", "Distinct callers"),
    ("reached", "Reached a person"),
    ("not_answered", "Transfers not answered"),
    ("follow_ups_opened", "Follow-ups opened"),
    ("follow_ups_closed", "Follow-ups closed"),
    ("follow_ups_open", "Follow-ups opened and still open"),
    ("conversations", "Text conversations"),
    ("opt_outs", "Opt-outs (STOP)"),
)


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
class Headlines:
    range: Range
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    """measure -> language ('' when not known) -> count."""
    totals: Counter[str] = field(default_factory=Counter)
    """measure -> count over every language (distinct callers counted once)."""
    median_wait: timedelta | None = None
    longest_wait: timedelta | None = None
    """How long the follow-ups closed in the range waited (first attempt to closed); None when
    none closed."""

    def languages(self) -> list[str]:
        seen = {lang for counts in self.counts.values() for lang, n in counts.items() if n}
        known = [lang for lang in LANGUAGE_NAMES if lang in seen]
        return known + sorted(seen - set(known) - {UNKNOWN}) + ([UNKNOWN] * (UNKNOWN in seen))

    def count(self, measure: str, language: str) -> int:
        return self.counts.get(measure, Counter())[language]


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code) if code else "Language not known"


def _by_language(session: Session, query: Any) -> Counter[str]:
    return Counter({(lang or UNKNOWN): int(n) for lang, n in session.execute(query)})


def headline_numbers(session: Session, chosen: Range) -> Headlines:
    start, end = chosen.start, chosen.end
    result = Headlines(chosen)
    in_range = (Call.started_at >= start, Call.started_at < end)

    # One pass over the range's calls for the four call measures: counted per (language,
    # caller) first, so that each caller of a language is one row of the outer count.
    per_caller = (
        select(
            Call.language.label("language"),
            Call.caller.label("caller"),
            func.count().label("calls"),
            func.count(case((Call.outcome == CallOutcome.REACHED.value, 1))).label("reached"),
            func.count(case((Call.outcome == CallOutcome.NOT_ANSWERED.value, 1))).label(
                "not_answered"
            ),
        )
        .where(*in_range)
        .group_by(Call.language, Call.caller)
        .subquery()
    )
    for measure in ("calls", "callers", "reached", "not_answered"):
        result.counts[measure] = Counter()
    for language, calls, callers, reached, not_answered in session.execute(
        select(
            per_caller.c.language,
            func.sum(per_caller.c.calls),
            func.count(per_caller.c.caller),
            func.sum(per_caller.c.reached),
            func.sum(per_caller.c.not_answered),
        ).group_by(per_caller.c.language)
    ):
        lang = language or UNKNOWN
        result.counts["calls"][lang] += int(calls)
        result.counts["callers"][lang] += int(callers)
        result.counts["reached"][lang] += int(reached)
        result.counts["not_answered"][lang] += int(not_answered)

    count_the_rest(session, result)
    for measure, counts in result.counts.items():
        result.totals[measure] = sum(counts.values())
    # A caller who called in both languages is one caller.
    # (DISTINCT in a subquery: PostgreSQL hashes it; count(DISTINCT ...) sorts every call.)
    callers = select(Call.caller).where(*in_range, Call.caller.is_not(None)).distinct().subquery()
    result.totals["callers"] = int(session.scalar(select(func.count()).select_from(callers)) or 0)
    return result


def count_the_rest(session: Session, result: Headlines) -> None:
    """Every measure but the four of calls: follow-ups, their waits, texts and opt-outs (the
    definition the rollup keeps: `service.staff.rollup.rolled_headlines`)."""
    start, end = result.range.start, result.range.end

    def follow_ups(column: Any) -> Counter[str]:
        return _by_language(
            session,
            select(FollowUp.language, func.count())
            .where(column >= start, column < end)
            .group_by(FollowUp.language),
        )

    result.counts["follow_ups_opened"] = follow_ups(FollowUp.opened_at)
    result.counts["follow_ups_closed"] = follow_ups(FollowUp.closed_at)
    result.median_wait, result.longest_wait = _waits(session, start, end)

    result.counts["conversations"] = _by_language(
        session,
        select(Conversation.language, func.count())
        .where(
            Conversation.id.in_(
                select(Message.conversation_id).where(
                    Message.created_at >= start,
                    Message.created_at < end,
                    # A literal, which the partial index ix_messages_inbound_created_at matches.
                    Message.direction == literal_column(f"'{Direction.IN.value}'"),
                )
            )
        )
        .group_by(Conversation.language),
    )
    language = language_of_phone()
    result.counts["opt_outs"] = _by_language(
        session,
        select(language, func.count())
        .where(OptOut.opted_out.is_(True), OptOut.changed_at >= start, OptOut.changed_at < end)
        .group_by(language),
    )
    count_still_open(session, result)


def count_still_open(session: Session, result: Headlines) -> None:
    """The follow-ups opened in the range and still open: the one measure the rollup does not
    keep (any item closed changes it), counted from the few open items."""
    start, end = result.range.start, result.range.end
    result.counts["follow_ups_open"] = _by_language(
        session,
        select(FollowUp.language, func.count())
        .where(
            FollowUp.opened_at >= start,
            FollowUp.opened_at < end,
            FollowUp.open_phone.is_not(None),  # the partial index ix_follow_ups_open_opened_at
        )
        .group_by(FollowUp.language),
    )


def language_of_phone() -> Any:
    """An opt-out's language: that of its number's latest conversation."""
    return (
        select(Conversation.language)
        .where(Conversation.phone == OptOut.phone)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _waits(
    session: Session, start: datetime, end: datetime
) -> tuple[timedelta | None, timedelta | None]:
    """The median and the longest wait of the follow-ups closed from `start` to `end`.
    PostgreSQL computes both (the median interpolated, as `statistics.median` does); SQLite's
    rows are few, and their times come back to be subtracted here."""
    closed_in_range = (FollowUp.closed_at >= start, FollowUp.closed_at < end)
    if session.get_bind().dialect.name == "postgresql":
        # date_part is double precision (extract's numeric sorts at half the speed).
        seconds = func.date_part("epoch", FollowUp.closed_at - FollowUp.first_attempt_at)
        median, longest = session.execute(
            select(func.percentile_cont(0.5).within_group(seconds), func.max(seconds)).where(
                *closed_in_range
            )
        ).one()
        if median is None:
            return None, None
        return timedelta(seconds=float(median)), timedelta(seconds=float(longest))
    waits = [
        (closed - first).total_seconds()
        for first, closed in session.execute(
            select(FollowUp.first_attempt_at, FollowUp.closed_at).where(*closed_in_range)
        )
        if closed is not None
    ]
    if not waits:
        return None, None
    return timedelta(seconds=statistics.median(waits)), timedelta(seconds=max(waits))


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
