"""The outbound policy: whom the line may text or call, and how often. One place, every path.

Every text and call-back the line places (press 8, `CALL`, a long text's further parts are the
same text) becomes an outbox row through `outbox.enqueue`, and `enqueue` asks `refusal` first:
a refused row is stored as `refused` (never sent, shown to staff, counted in
`phoneline_outbound_refused_total`) with the reason in `last_error`. The webhooks ask the same
question before they answer, so that a caller or texter is told plainly what happens instead.

- Destinations: only countries by calling code (default 1, the North American Numbering Plan;
  `OUTBOUND_REGIONS` may narrow it to regions, e.g. "US,CA"), and only numbers phonenumbers
  says are valid and of a type a person answers (mobile, fixed line, either, VoIP): never
  premium rate, shared cost, toll-free, pagers, UAN, short codes or junk.
- Caps: at most `texts_per_number` texts and `calls_per_number` call-backs to one number in
  24 hours, and at most `texts_per_hour` / `calls_per_hour` in total in the last hour.

Opt-outs win over all of this (a text to a number that opted out is suppressed, whatever the
caps say); the caps count what was queued, not what was refused or suppressed.

The caps hold under any concurrency: `enqueue` takes `hold_caps` before it counts, so counting
and the insert that follows are one at a time until its transaction ends, and two processes
cannot both count 13 call-backs under a cap of 14 and both queue one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers
from sqlalchemy import func, not_, select, text
from sqlalchemy.orm import Session

from service.config import Settings
from service.metrics import OUTBOUND_REFUSED
from service.models import OutboxKind, OutboxMessage, OutboxStatus
from service.phone import parse_valid

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)
PART_MARK = "#"
"""A long text's further parts carry their first part's dedupe key and `#2`, `#3`...: they are
the same text, counted once."""

ANSWERED_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.VOIP,
    }
)


class Refusal(StrEnum):
    """Why the policy said no (the outbox row's `last_error`, the metric's label)."""

    INVALID = "invalid number"
    COUNTRY = "country not allowed"
    NUMBER_TYPE = "number type not allowed"
    NUMBER_CAP = "per-number cap"
    HOURLY_CAP = "hourly cap"


@dataclass(frozen=True, slots=True)
class Limits:
    country_codes: frozenset[int] = frozenset({1})
    regions: frozenset[str] = frozenset()
    """Empty: every region of the allowed country codes."""
    texts_per_number: int = 5
    calls_per_number: int = 2
    texts_per_hour: int = 300
    calls_per_hour: int = 30

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            country_codes=frozenset(
                int(code) for code in _items(settings.outbound_country_codes) if code.isdigit()
            ),
            regions=frozenset(region.upper() for region in _items(settings.outbound_regions)),
            texts_per_number=settings.outbound_texts_per_number,
            calls_per_number=settings.outbound_calls_per_number,
            texts_per_hour=settings.outbound_texts_per_hour,
            calls_per_hour=settings.outbound_calls_per_hour,
        )


_current = Limits()


def configure(limits: Limits) -> None:
    """The limits this process applies (set from the settings at start-up: `create_app`, the
    `worker` command); the defaults until then."""
    global _current
    _current = limits


def current() -> Limits:
    return _current


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def destination_refusal(number: str, limits: Limits) -> Refusal | None:
    """Whether the line may text or call this number at all (no database needed)."""
    parsed = parse_valid(number)
    if parsed is None:
        return Refusal.INVALID
    if parsed.country_code not in limits.country_codes:
        return Refusal.COUNTRY
    if limits.regions and phonenumbers.region_code_for_number(parsed) not in limits.regions:
        return Refusal.COUNTRY
    if phonenumbers.number_type(parsed) not in ANSWERED_TYPES:
        return Refusal.NUMBER_TYPE
    return None


def refusal(
    session: Session, kind: OutboxKind, number: str, now: datetime, limits: Limits
) -> Refusal | None:
    """Whether the policy refuses one more `kind` to `number` now (None: it may go).

    Before an insert, take `hold_caps` first; a preview (the voice webhook deciding what to
    promise) counts without waiting, and `enqueue` has the last word."""
    refused = destination_refusal(number, limits)
    if refused is not None:
        return refused
    per_number, per_hour = (
        (limits.texts_per_number, limits.texts_per_hour)
        if kind is OutboxKind.SMS
        else (limits.calls_per_number, limits.calls_per_hour)
    )
    if _queued(session, kind, now - DAY, number) >= per_number:
        return Refusal.NUMBER_CAP
    if _queued(session, kind, now - HOUR) >= per_hour:
        return Refusal.HOURLY_CAP
    return None


_CAPS_LOCK = 728_141  # pg_advisory_xact_lock key: one count of the caps (and its insert) at a time


def hold_caps(session: Session) -> None:
    """Make every other transaction's count of the caps wait until this one ends, so that the
    row this one inserts after counting is committed (and counted) before the next count.

    PostgreSQL: one transaction-scoped advisory lock for the whole policy, not one per kind and
    number: the hourly cap counts every number of a kind, so it must wait for all of them
    anyway, and one transaction may queue both kinds (a call-back, then a held reply), which
    with a lock per kind taken in the order the rows come could deadlock. Taken again in the
    same transaction, it is already held. SQLite: every write transaction begins with BEGIN
    IMMEDIATE (service/db.py), so writers already count one at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CAPS_LOCK})


def _queued(session: Session, kind: OutboxKind, since: datetime, to: str | None = None) -> int:
    """Texts or call-backs queued since then (to that number), not counting refused or
    suppressed rows, nor the further parts of a long text."""
    query = select(func.count()).where(
        OutboxMessage.kind == kind.value,
        OutboxMessage.created_at >= since,
        OutboxMessage.status.not_in([OutboxStatus.REFUSED.value, OutboxStatus.SUPPRESSED.value]),
        not_(func.coalesce(OutboxMessage.dedupe_key, "").contains(PART_MARK)),
    )
    if to is not None:
        query = query.where(OutboxMessage.to_number == to)
    return int(session.scalar(query) or 0)


def count_refusal(kind: OutboxKind, reason: Refusal) -> None:
    OUTBOUND_REFUSED.labels(kind=kind.value, reason=reason.name.lower()).inc()
