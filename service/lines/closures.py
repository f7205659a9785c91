"""Closures of a line's contacts, kept by staff (`phoneline hours`, /staff/hours): they take effect
in every process within a second, without publishing (each change moves the line book's
version), and every change is audited by its caller. A closure names a contact of the line's
published flow; it is one date, or every year on a date ("12-25") or on the nth weekday of a
month ("4th thu of nov", "last mon of may"); all day, or from a time to the end of the day."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.flowengine.hours import MONTHS, WEEKDAYS, Closure
from service.flowengine.loader import FlowError
from service.flowengine.validate import flow_of_text
from service.lines.revisions import LineError, bump, line_named, revision_of
from service.models import ContactClosure, Line

ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "last": -1}
SHORT_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHORT_MONTHS = tuple(month[:3].lower() for month in MONTHS["en"])
YEARLY_DATE = re.compile(r"(\d{2})-(\d{2})")
YEARLY_WEEKDAY = re.compile(r"(1st|2nd|3rd|4th|last) (\w{3}) of (\w{3})")
MAX_MESSAGE = 300


@dataclass(frozen=True)
class When:
    """When a closure comes: one date, or yearly (month and day, or month, weekday, nth)."""

    on: date | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    nth: int | None = None

    @classmethod
    def parse(cls, text: str) -> When:
        """`2026-12-24`, `12-25` (every year), `4th thu of nov` or `last mon of may`."""
        text = " ".join(text.lower().split())
        try:
            return cls(on=date.fromisoformat(text))
        except ValueError:
            pass
        if match := YEARLY_DATE.fullmatch(text):
            month, day = int(match[1]), int(match[2])
            try:
                date(2024, month, day)  # a leap year: 02-29 is a day
            except ValueError:
                raise LineError(f"{text!r} is not a day of the year") from None
            return cls(month=month, day=day)
        match = YEARLY_WEEKDAY.fullmatch(text)
        if match and match[2] in SHORT_DAYS and match[3] in SHORT_MONTHS:
            return cls(
                month=SHORT_MONTHS.index(match[3]) + 1,
                weekday=SHORT_DAYS.index(match[2]),
                nth=ORDINALS[match[1]],
            )
        raise LineError(
            f"{text[:40]!r} is not a day: give a date (2026-12-24), a day every year (12-25) or "
            "a weekday every year (4th thu of nov, last mon of may)"
        )

    def describe(self, lang: str = "en") -> str:
        if self.on is not None:
            return self.on.isoformat()
        assert self.month is not None
        month = MONTHS[lang][self.month - 1]
        if self.day is not None:
            return f"every {month} {self.day}"
        ordinal = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}[self.nth or 1]
        return f"the {ordinal} {WEEKDAYS[lang][self.weekday or 0]} of {month}, every year"


def _closes_at(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return time.fromisoformat(text).strftime("%H:%M")
    except ValueError:
        raise LineError(f"{text[:10]!r} is not a time of day (HH:MM)") from None


def _contacts_of(session: Session, line: Line) -> set[str]:
    try:
        flow = flow_of_text(revision_of(session, line).yaml, line.slug)
    except FlowError:
        return set()
    return set(flow.contacts)


def add_closure(
    session: Session,
    slug: str,
    contact: str,
    when: str,
    *,
    by: str,
    closes_at: str | None = None,
    message_en: str = "",
    message_es: str = "",
) -> ContactClosure:
    line = line_named(session, slug)
    contacts = _contacts_of(session, line)
    if contact not in contacts:
        known = ", ".join(sorted(contacts)) or "none"
        raise LineError(f"the line {slug!r} has no contact {contact[:64]!r} (it has: {known})")
    day = When.parse(when)
    for message in (message_en, message_es):
        if len(message) > MAX_MESSAGE:
            raise LineError(f"a closure's message is at most {MAX_MESSAGE} characters")
    closure = ContactClosure(
        line_id=line.id,
        contact=contact,
        on_date=day.on,
        month=day.month,
        day=day.day,
        weekday=day.weekday,
        nth=day.nth,
        closes_at=_closes_at(closes_at),
        message_en=" ".join(message_en.split()) or None,
        message_es=" ".join(message_es.split()) or None,
        created_by=by[:64],
    )
    session.add(closure)
    session.flush()
    bump(session)
    return closure


def remove_closure(session: Session, closure_id: int) -> ContactClosure:
    closure = session.get(ContactClosure, closure_id)
    if closure is None:
        raise LineError(f"there is no closure {closure_id}")
    session.execute(delete(ContactClosure).where(ContactClosure.id == closure_id))
    bump(session)
    return closure


def when_of(row: ContactClosure) -> When:
    return When(row.on_date, row.month, row.day, row.weekday, row.nth)


def list_closures(session: Session, line_ids: Sequence[int] | None = None) -> list[ContactClosure]:
    query = select(ContactClosure).order_by(ContactClosure.line_id, ContactClosure.id)
    if line_ids is not None:
        query = query.where(ContactClosure.line_id.in_(list(line_ids)))
    return list(session.scalars(query))


def engine_closures(
    rows: Sequence[ContactClosure], timezone: str
) -> dict[int, dict[str, tuple[Closure, ...]]]:
    """Line id -> contact -> its closures (of `rows`, from `list_closures`), as the engine
    takes them."""
    found: dict[int, dict[str, list[Closure]]] = {}
    for row in rows:
        message = {lang: text for lang, text in (("en", row.message_en), ("es", row.message_es))
                   if text}  # fmt: skip
        closure = Closure(
            timezone,
            on=row.on_date,
            month=row.month,
            day=row.day,
            weekday=row.weekday,
            nth=row.nth,
            closes_at=time.fromisoformat(row.closes_at) if row.closes_at else None,
            message=message,
        )
        found.setdefault(row.line_id, {}).setdefault(row.contact, []).append(closure)
    return {line: {c: tuple(v) for c, v in contacts.items()} for line, contacts in found.items()}
