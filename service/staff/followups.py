"""The follow-up worklist's pages: `/staff/follow-ups` and an item's page, where navigators
(and admins) claim an item, add notes, reveal the number to call back (audited) and close it.
Viewers may read the list (numbers masked) but not act on it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.db import ReadSessionDep, SessionDep, one_of
from service.followups import worklist
from service.lines.book import LineBook
from service.models import Call, FollowUp
from service.phone import mask
from service.staff.auth import client_address, clock_of
from service.staff.line_filter import chosen_line, staff_of, visible
from service.staff.names import flow_names
from service.staff.queries import parse_id, redact_numbers
from service.staff.web import (
    CheckedForm,
    PageError,
    Staff,
    StaffRoute,
    current_staff,
    may_work_follow_ups,
    render,
)

router = APIRouter(route_class=StaffRoute)


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


@router.get("/follow-ups", response_class=HTMLResponse)
def follow_ups_page(request: Request, staff: ViewerStaff, session: ReadSessionDep) -> Response:
    closed = request.query_params.get("show") == "closed"
    choice = chosen_line(request)
    line_only = one_of(FollowUp.line_id, choice.line_ids)
    rows = worklist.list_items(session, closed=closed, where=line_only)
    names = _names(request)
    calls = _calls_by_id(session, [call_id for row in rows for call_id in row.call_ids])
    nodes = worklist.text_menus(session, [m for row in rows for m in row.message_ids])
    items = [
        {
            "row": row,
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
    )


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
    row = _visible_item(request, session, item_id)
    names = _names(request)
    staff = staff_of(request)
    past = worklist.history(session, row.item.phone, staff.line_ids if staff else None)
    calls = _calls_by_id(session, row.call_ids)
    return render(
        request,
        "follow_up.html",
        status_code=status_code,
        row=row,
        item=row.item,
        phone=mask(row.item.phone),
        revealed=revealed,
        message=message,
        error=error,
        names=names,
        looking_for=looking_for(
            [calls[c] for c in row.call_ids if c in calls],
            names,
            worklist.text_menus(session, row.message_ids).values(),
        ),
        notes=worklist.notes(session, item_id),
        voicemails=worklist.voicemails(session, row.voicemail_ids),
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


@router.get("/follow-ups/{raw_id}", response_class=HTMLResponse)
def follow_up_page(
    request: Request, raw_id: str, staff: ViewerStaff, session: ReadSessionDep
) -> Response:
    done = DONE_MESSAGES.get(request.query_params.get("done", ""))
    return _item_page(request, session, _item_id(raw_id), message=done)


def _acted(request: Request, session: Session, item_id: int, action: Any, done: str) -> Response:
    try:
        action()
    except worklist.WorklistError as error:
        session.rollback()
        return _item_page(request, session, item_id, error=str(error), status_code=400)
    session.flush()
    return RedirectResponse(f"/staff/follow-ups/{item_id}?done={done}", status_code=303)


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
    record_audit(
        session,
        staff.username,
        "reveal",
        f"number of follow-up {item_id} ({mask(row.item.phone)})",
        client_address=client_address(request),
    )
    return _item_page(request, session, item_id, revealed=row.item.phone)


DONE_MESSAGES = {
    "claimed": "You have claimed this follow-up.",
    "noted": "Your note was added.",
    "closed": "The follow-up is closed.",
}
