"""The follow-up worklist's pages: `/staff/follow-ups` and an item's page, where navigators
(and admins) claim an item, add notes, reveal the number to call back (audited) and close it.
Viewers may read the list (numbers masked) but not act on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.db import one_of
from service.followups import worklist
from service.lines.book import LineBook
from service.models import Call, FollowUp, StaffUser
from service.phone import mask
from service.sessions import ReadSessionDep, SessionDep
from service.staff.auth import client_address, clock_of
from service.staff.headlines import LANGUAGE_NAMES, language_name
from service.staff.line_filter import chosen_line, staff_of, visible
from service.staff.localtime import zone_of
from service.staff.names import flow_names
from service.staff.queries import parse_id, redact_numbers
from service.staff.web import (
    CheckedForm,
    PageError,
    Staff,
    current_staff,
    may_work_follow_ups,
    pages_router,
    render,
    settings_of,
)
from service.staff.worklist_item import (
    keep_reveal,
    kept_reveal,
    numbers_written,
    what_they_got,
)

router = pages_router()


def navigator_staff(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
    if not may_work_follow_ups(staff):
        raise PageError(
            403,
            "Not allowed",
            "Working the follow-ups is for navigators and administrators. Ask an administrator "
            "if you need it.",
        )
    return staff


NavigatorStaff = Annotated[Staff, Depends(navigator_staff)]
ViewerStaff = Annotated[Staff, Depends(current_staff)]


def _names(request: Request) -> Any:
    book: LineBook = request.app.state.book
    return flow_names(book.default_flow())


def looking_for(calls: list[Call], names: Any, text_nodes: Iterable[str | None] = ()) -> list[str]:
    """What the calls were looking for, in the menus' names: whom they tried to reach, else
    the last menu they heard; and the text menu a texter was in."""
    wanted: list[str] = []
    labels = [
        names.contact(call.transferred_contact)
        if call.transferred_contact
        else names.menu(call.last_node)
        for call in calls
    ]
    labels += [f"{names.menu(node)} (text menu)" for node in text_nodes if node]
    for label in labels:
        if label and label not in wanted:
            wanted.append(label)
    return wanted


def _calls_by_id(session: Session, ids: list[int]) -> dict[int, Call]:
    if not ids:
        return {}
    return {call.id: call for call in session.scalars(select(Call).where(Call.id.in_(ids)))}


def _item_id(raw: str) -> int:
    ident = parse_id(raw)
    if ident is None:
        raise PageError(404, "Follow-up not found", "There is no follow-up with that id.")
    return ident


def _visible_item(request: Request, session: Session, item_id: int) -> worklist.ItemRow:
    row = worklist.get_item(session, item_id)
    return visible(request, row, row.item.line_id if row else None, "Follow-up")


SITTING = timedelta(minutes=30)
"""A visit to the worklist this long after the last one begins a new sitting: "new since my
last visit" is then since the sitting before."""


def _visited(session: Session, username: str, now: datetime) -> datetime | None:
    """Note this visit to the worklist; when the account's last sitting was (None: never)."""
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
    if user is None:
        return None
    if user.worklist_seen_at is None or now - user.worklist_seen_at >= SITTING:
        user.worklist_seen_before = user.worklist_seen_at
    user.worklist_seen_at = now
    return user.worklist_seen_before


def _filters(request: Request, last_visit: datetime | None) -> worklist.Filters:
    params = request.query_params
    reason = params.get("reason", "")
    language = params.get("language", "")
    who, sort = params.get("who", ""), params.get("sort", "newest")
    page = params.get("page", "1")
    if (
        (reason and reason not in worklist.REASON_LABELS)
        or language not in ("", "unknown", *LANGUAGE_NAMES)
        or who not in worklist.WHO
        or sort not in worklist.SORTS
        or not (page.isascii() and page.isdigit() and 0 < len(page) < 6)
    ):
        raise PageError(400, "Check the filters", "Choose the filters from the lists.")
    since = last_visit if params.get("new") == "1" else None
    return worklist.Filters(reason, language, who, since, sort, int(page))


def waited(since: datetime, now: datetime, target: timedelta) -> tuple[str, str]:
    """How long a patient has waited, in words ("3 hours", "2 days"), and how that stands
    against the clinic's target: "ok", "near" (three quarters of it gone) or "over"."""
    gone = max(now - since, timedelta(0))
    minutes = int(gone.total_seconds() // 60)
    if minutes < 60:
        words = "under an hour" if minutes < 1 else f"{minutes} min"
    elif minutes < 48 * 60:
        hours = minutes // 60
        words = f"{hours} hour{'s' * (hours != 1)}"
    else:
        days = minutes // (24 * 60)
        words = f"{days} days"
    state = "over" if gone > target else "near" if gone >= target * 0.75 else "ok"
    return words, state


@router.get("/follow-ups", response_class=HTMLResponse)
def follow_ups_page(request: Request, staff: ViewerStaff, session: SessionDep) -> Response:
    closed = request.query_params.get("show") == "closed"
    choice = chosen_line(request)
    line_only = one_of(FollowUp.line_id, choice.line_ids)
    now = clock_of(request)()
    settings = request.app.state.settings
    target = timedelta(hours=settings.follow_up_target_hours)
    if closed:
        rows = worklist.list_items(session, closed=True, where=line_only)
        page, filters, last_visit = None, worklist.Filters(), None
    else:
        last_visit = _visited(session, staff.username, now)
        filters = _filters(request, last_visit)
        page = worklist.open_items(
            session, filters, where=line_only, username=staff.username, now=now
        )
        rows = page.rows
    names = _names(request)
    calls = _calls_by_id(session, [call_id for row in rows for call_id in row.call_ids])
    nodes = worklist.text_menus(session, [m for row in rows for m in row.message_ids])
    items = [
        {
            "row": row,
            "waited": waited(row.item.first_attempt_at, now, target),
            "phone": mask(row.item.phone),
            "looking_for": looking_for(
                [calls[c] for c in row.call_ids if c in calls],
                names,
                [nodes.get(m) for m in row.message_ids],
            ),
        }
        for row in rows
    ]
    return render(
        request,
        "follow_ups.html",
        items=items,
        line_choice=choice,
        closed=closed,
        outcome_labels=worklist.OUTCOME_LABELS,
        page=page,
        filters=filters,
        last_visit=last_visit,
        reasons=worklist.REASON_LABELS,
        who_choices=worklist.WHO,
        sorts=worklist.SORTS,
        languages=LANGUAGE_NAMES,
        language_name=language_name,
        target_hours=settings.follow_up_target_hours,
        page_link=lambda number: _page_link(request, number),
        now=now,
    )


def _page_link(request: Request, number: int) -> str:
    query = {key: value for key, value in request.query_params.items() if key != "page"}
    query["page"] = str(number)
    return f"/staff/follow-ups?{urlencode(query)}"


NEXT_TRIES = {
    "2h": "In 2 hours",
    "tomorrow": "Tomorrow morning (9 a.m.)",
    "2d": "In 2 days (9 a.m.)",
}
"""When to try again after a call that reached nobody, in the clinic's time."""


def next_try(choice: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    if choice == "2h":
        return now + timedelta(hours=2)
    days = {"tomorrow": 1, "2d": 2}.get(choice)
    if days is None:
        return None
    day = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, time(9), zone)


def _item_page(
    request: Request,
    session: Session,
    item_id: int,
    *,
    revealed: str | None = None,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The item's page. `revealed`: "caller", or "given:N" (the Nth number they wrote), just
    revealed (audited) or kept revealed by the page's token."""
    row = _visible_item(request, session, item_id)
    names = _names(request)
    staff = staff_of(request)
    past = worklist.history(session, row.item.phone, staff.line_ids if staff else None)
    calls = _calls_by_id(session, row.call_ids)
    voicemails = worklist.voicemails(session, row.voicemail_ids)
    given = numbers_written(past, row.item.phone)
    shown = _revealed_number(revealed, row.item.phone, given)
    settings = request.app.state.settings
    now = clock_of(request)()
    next_id = None
    if request.query_params.get("done") in ("closed", "attempt") and staff is not None:
        next_id = worklist.next_item(
            session, item_id, where=one_of(FollowUp.line_id, staff.line_ids),
            username=staff.username, now=now,
        )  # fmt: skip
    return render(
        request,
        "follow_up.html",
        status_code=status_code,
        row=row,
        item=row.item,
        phone=mask(row.item.phone),
        revealed=shown if revealed == "caller" else None,
        given=[
            (index, mask(number), number if revealed == f"given:{index}" else None)
            for index, number in enumerate(given)
        ],
        keep=(
            keep_reveal(settings.resolved_secret_key(), item_id, staff.username, revealed)
            if shown and staff is not None and revealed is not None
            else None
        ),
        got=what_they_got(past, voicemails, names),
        next_id=next_id,
        now=now,
        language_name=language_name,
        attempt_results=worklist.ATTEMPT_RESULTS,
        next_tries=NEXT_TRIES,
        max_attempts=settings.follow_up_max_attempts,
        message=message,
        error=error,
        names=names,
        looking_for=looking_for(
            [calls[c] for c in row.call_ids if c in calls],
            names,
            worklist.text_menus(session, row.message_ids).values(),
        ),
        notes=worklist.notes(session, item_id),
        voicemails=voicemails,
        calls=past.calls,
        messages=[
            {
                "at": m.created_at,
                "direction": m.direction,
                "body": redact_numbers(m.body) if m.direction == "in" else m.body,
                "intent": m.intent,
                "status": m.status,
            }
            for m in past.messages
        ],
        call_backs=past.call_backs,
        close_outcomes=worklist.CLOSE_OUTCOMES,
        outcome_labels=worklist.OUTCOME_LABELS,
    )


def _revealed_number(revealed: str | None, phone: str, given: list[str]) -> str | None:
    if revealed == "caller":
        return phone
    if revealed and revealed.startswith("given:"):
        index = revealed.removeprefix("given:")
        if index.isdigit() and int(index) < len(given):
            return given[int(index)]
    return None


@router.get("/follow-ups/{raw_id}", response_class=HTMLResponse)
def follow_up_page(
    request: Request, raw_id: str, staff: ViewerStaff, session: ReadSessionDep
) -> Response:
    item_id = _item_id(raw_id)
    done = DONE_MESSAGES.get(request.query_params.get("done", ""))
    token = request.query_params.get("kept", "")
    secret = settings_of(request).resolved_secret_key()
    kept = kept_reveal(secret, token, item_id, staff.username) if token else None
    if not may_work_follow_ups(staff):
        kept = None
    return _item_page(request, session, item_id, message=done, revealed=kept)


def _acted(
    request: Request,
    session: Session,
    item_id: int,
    action: Any,
    done: str,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        action()
    except worklist.WorklistError as error:
        session.rollback()
        return _item_page(request, session, item_id, error=str(error), status_code=400)
    session.flush()
    # A number revealed on the page stays revealed through a note or a claim (its token).
    kept = (form or {}).get("kept", "")
    query = urlencode({"done": done, **({"kept": kept} if kept else {})})
    return RedirectResponse(f"/staff/follow-ups/{item_id}?{query}", status_code=303)


@router.post("/follow-ups/{raw_id}/claim")
def claim_follow_up(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    item_id = _item_id(raw_id)
    _visible_item(request, session, item_id)
    now = clock_of(request)()
    return _acted(
        request,
        session,
        item_id,
        lambda: worklist.claim(session, item_id, staff.username, now),
        "claimed",
        form,
    )


@router.post("/follow-ups/{raw_id}/notes")
def note_follow_up(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    item_id = _item_id(raw_id)
    _visible_item(request, session, item_id)
    now = clock_of(request)()
    text = form.get("note", "")
    return _acted(
        request,
        session,
        item_id,
        lambda: worklist.add_note(session, item_id, staff.username, text, now),
        "noted",
        form,
    )


@router.post("/follow-ups/{raw_id}/attempt")
def attempt_follow_up(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """A call to the patient that reached voicemail or nobody: the item stays open, waits for
    its next try, and closes as "could not reach" at the clinic's last attempt."""
    item_id = _item_id(raw_id)
    _visible_item(request, session, item_id)
    now = clock_of(request)()
    when = next_try(form.get("next_try", ""), now, zone_of(request))
    limit = request.app.state.settings.follow_up_max_attempts
    result = form.get("result", "")
    return _acted(
        request,
        session,
        item_id,
        lambda: worklist.log_attempt(
            session, item_id, staff.username, result, when, now, max_attempts=limit
        ),
        "attempt",
        form,
    )


@router.post("/follow-ups/{raw_id}/close")
def close_follow_up(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    item_id = _item_id(raw_id)
    _visible_item(request, session, item_id)
    now = clock_of(request)()
    outcome = form.get("outcome", "")
    return _acted(
        request,
        session,
        item_id,
        lambda: worklist.close(session, item_id, staff.username, outcome, now),
        "closed",
    )


@router.post("/follow-ups/{raw_id}/reveal", response_class=HTMLResponse)
def reveal_follow_up(
    request: Request, raw_id: str, staff: NavigatorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    item_id = _item_id(raw_id)
    row = _visible_item(request, session, item_id)
    which = form.get("which", "caller")
    if which == "caller":
        what = f"number of follow-up {item_id} ({mask(row.item.phone)})"
    else:
        staff_lines = staff.line_ids
        history = worklist.history(session, row.item.phone, staff_lines)
        given = numbers_written(history, row.item.phone)
        number = _revealed_number(which, row.item.phone, given)
        if number is None:
            raise PageError(404, "Number not found", "There is no such number on this item.")
        what = f"number to call back written in a text, follow-up {item_id} ({mask(number)})"
    record_audit(session, staff.username, "reveal", what, client_address=client_address(request))
    return _item_page(request, session, item_id, revealed=which)


DONE_MESSAGES = {
    "claimed": "You have claimed this follow-up.",
    "noted": "Your note was added.",
    "closed": "The follow-up is closed.",
    "attempt": "The call attempt is logged.",
}
