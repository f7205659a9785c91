"""`/staff/hours`: each line's contacts' effective hours for the next 14 days (their weekly hours
from the published flow, less the closures), and the closures themselves. Navigators and
administrators add and remove closures (the same code as `phoneline hours`, audited, live in
every process within a second); viewers read. An account limited to some lines sees theirs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time, timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.flowengine.hours import LOOK_AHEAD_DAYS, WEEKDAYS, Closure
from service.flowengine.model import Contact
from service.lines.book import LineBook, LineView
from service.lines.closures import (
    add_closure,
    engine_closures,
    list_closures,
    remove_closure,
    when_of,
)
from service.lines.revisions import LineError
from service.models import ContactClosure, Line
from service.sessions import ReadSessionDep, SessionDep
from service.staff.auth import client_address, clock_of
from service.staff.followups import NavigatorStaff
from service.staff.line_filter import visible_lines
from service.staff.localtime import zone_of
from service.staff.queries import parse_id
from service.staff.web import CheckedForm, CurrentStaff, PageError, pages_router, render

router = pages_router()

DONE = {"added": "The closure is added: callers hear it within seconds.",
        "removed": "The closure is removed: the usual hours apply again."}  # fmt: skip


@dataclass(frozen=True)
class Day:
    day: date
    hours: str


@dataclass(frozen=True)
class ContactHours:
    contact: Contact
    days: list[Day]


def _clock(at: time) -> str:
    return "24:00" if at == time.max else at.strftime("%H:%M")


def _hours_of(contact: Contact, day: date) -> str:
    """What `contact` keeps on `day` (its hours' spans, less a closure), in words."""
    spans = (
        [f"{_clock(s.opens)} to {_clock(s.closes)}" for s in contact.hours.spans
         if day.weekday() in s.days]
        if contact.hours is not None
        else ["open all day"]
    )  # fmt: skip
    closing = [
        closure for closure in contact.closures
        if closure.covers(day)
    ]  # fmt: skip
    if closing:
        closure = closing[0]
        why = f" ({closure.message['en']})" if closure.message.get("en") else ""
        if closure.closes_at is None:
            return f"closed{why}"
        return f"{', '.join(spans) or 'closed'}; closed from {closure.closes_at:%H:%M}{why}"
    return ", ".join(spans) or "closed"


def contact_hours(
    book: LineBook, line: LineView, today: date, closures: dict[str, tuple[Closure, ...]]
) -> list[ContactHours]:
    """The contacts of the line's published flow that keep hours or have closures (`closures`,
    as the database has them now: the page does not wait for the book's next refresh)."""
    flow = book.flow(line)
    if flow is None:
        return []
    days = [today + timedelta(days=n) for n in range(LOOK_AHEAD_DAYS)]
    contacts = [
        replace(contact, closures=closures.get(contact.id, ()))
        for contact in flow.contacts.values()
    ]
    return [
        ContactHours(contact, [Day(day, _hours_of(contact, day)) for day in days])
        for contact in contacts
        if contact.hours is not None or contact.closures
    ]


def _page(
    request: Request,
    session: Session,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    book: LineBook = request.app.state.book
    zone = zone_of(request)
    now = clock_of(request)()
    today = now.astimezone(zone).date()
    lines = visible_lines(request)
    closures = list_closures(session, [line.id for line in lines])
    now_closed = engine_closures(closures, book.timezone)
    flows = {line.id: book.flow(line) for line in lines}
    contacts = {line_id: sorted(flow.contacts) if flow else [] for line_id, flow in flows.items()}
    return render(
        request,
        "hours.html",
        status_code=status_code,
        lines=[
            (line, contact_hours(book, line, today, now_closed.get(line.id, {}))) for line in lines
        ],
        contacts=contacts,
        closures=[(row, when_of(row).describe()) for row in closures],
        titles={line.id: line.title for line in lines},
        weekdays=WEEKDAYS["en"],
        error=error,
        message=DONE.get(request.query_params.get("done", "")),
    )


@router.get("/hours", response_class=HTMLResponse)
def hours_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    return _page(request, session)


@router.post("/hours/closures", response_class=HTMLResponse)
def add(
    request: Request, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    slug = form.get("line", "")
    line = next((line for line in visible_lines(request) if line.slug == slug), None)
    if line is None:
        raise PageError(400, "Check the line", "Choose a line from the list.")
    try:
        closure = add_closure(
            session, slug, form.get("contact", ""), form.get("on", ""), by=staff.username,
            closes_at=form.get("from") or None, message_en=form.get("message_en", ""),
            message_es=form.get("message_es", ""),
        )  # fmt: skip
    except LineError as error:
        session.rollback()
        return _page(request, session, error=f"Not added: {error}.", status_code=400)
    since = f" from {closure.closes_at}" if closure.closes_at else ""
    detail = f"{slug}: {closure.contact} closed {when_of(closure).describe()}{since}"
    record_audit(session, staff.username, "closure", detail, client_address=client_address(request))
    return RedirectResponse("/staff/hours?done=added", status_code=303)


@router.post("/hours/closures/{raw_id}/remove", response_class=HTMLResponse)
def remove(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    closure_id = parse_id(raw_id)
    row = session.get(ContactClosure, closure_id) if closure_id is not None else None
    if row is None or not staff.may_see(row.line_id):
        raise PageError(404, "Closure not found", "There is no closure with that id.")
    slug = session.scalar(select(Line.slug).where(Line.id == row.line_id))
    remove_closure(session, row.id)
    detail = f"{slug}: {row.contact} {when_of(row).describe()}"
    record_audit(
        session, staff.username, "closure-removed", detail, client_address=client_address(request)
    )
    return RedirectResponse("/staff/hours?done=removed", status_code=303)
