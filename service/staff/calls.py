"""The calls: the list, its CSV, and one call with its timeline."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from service.audit import record_audit
from service.calls.facts import dialed_contact
from service.db import get_database
from service.models import Call, CallEventKind
from service.models.calls import AFTER_HOURS
from service.phone import mask
from service.sessions import ReadSessionDep, SessionDep
from service.staff.auth import (
    client_address,
)
from service.staff.export import calls_csv
from service.staff.line_filter import LineChoice, chosen_line, visible
from service.staff.lines import revision_heard, test_calls
from service.staff.localtime import zone_of
from service.staff.names import FlowNames, flow_names
from service.staff.pages import audited_csv, cursor_of, flow_of, list_links, params_of
from service.staff.queries import (
    OUTCOMES,
    CallFilters,
    FilterError,
    call_events,
    find_call,
    list_calls,
    redact_numbers,
)
from service.staff.web import (
    AdminStaff,
    CheckedForm,
    CurrentStaff,
    PageError,
    pages_router,
    render,
)

router = pages_router()


def _call_filters(request: Request, names: FlowNames, choice: LineChoice) -> CallFilters:
    try:
        filters = CallFilters.parse(
            params_of(request), names.languages, list(names.contacts), zone_of(request)
        )
    except FilterError as error:
        raise PageError(400, "Check the filters", str(error)) from None
    return replace(filters, line=choice.slug, line_ids=choice.line_ids)


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(flow_of(request, choice))
    filters = _call_filters(request, names, choice)
    calls, next_cursor = list_calls(session, filters, cursor_of(request))
    return render(
        request,
        "calls.html",
        calls=calls,
        tests=test_calls(session, calls),
        names=names,
        filters=filters,
        outcomes=OUTCOMES,
        mask=mask,
        line_choice=choice,
        **list_links(request, "/staff/calls", filters.as_params(), next_cursor),
    )


@router.get("/calls.csv")
def calls_export(request: Request, staff: CurrentStaff, session: SessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(flow_of(request, choice))
    filters = _call_filters(request, names, choice)
    rows = calls_csv(get_database(), filters, names.contacts)
    days = (filters.date_from, filters.date_to)
    return audited_csv(request, staff, session, "calls", filters.describe(), days, rows)


EVENT_LABELS = {
    CallEventKind.MENU.value: "Menu",
    CallEventKind.KEY.value: "Pressed",
    CallEventKind.SPEECH.value: "Said",
    CallEventKind.DIAL.value: "Transfer to",
    CallEventKind.DIAL_RESULT.value: "Transfer ended",
    CallEventKind.TEXT_QUEUED.value: "Text queued",
    CallEventKind.LANGUAGE.value: "Language",
    CallEventKind.CALLBACK_REQUEST.value: "Asked for a call back",
    CallEventKind.CRISIS.value: "Urgent",
    CallEventKind.HANGUP.value: "Call ended",
    CallEventKind.ERROR.value: "Error",
}


CRISIS_TEXTS = {
    "self-harm": "words about suicide or self-harm: told 988, 911 and how to reach a person",
    "emergency": "words of a medical emergency: told 911, 988 and how to reach a person",
}


def _event_text(kind: str, node: str | None, detail: str | None, names: FlowNames) -> str:
    if kind == CallEventKind.MENU.value:
        return names.menu(node)
    if kind == CallEventKind.KEY.value:
        where = f" (in {names.menu(node)})" if node else ""
        return names.option(node or "", detail or "") + where
    if kind == CallEventKind.SPEECH.value:
        return f"“{redact_numbers(detail)}”"
    if kind == CallEventKind.DIAL.value:
        return names.contact(dialed_contact(detail))
    if kind == CallEventKind.DIAL_RESULT.value and detail:
        result, _, dialed = detail.partition(" ")
        return f"{result} ({names.contact(dialed_contact(dialed))})" if dialed else result
    if kind == CallEventKind.CALLBACK_REQUEST.value:
        if detail and detail.startswith(AFTER_HOURS):
            closed = names.contact(detail.removeprefix(AFTER_HOURS))
            return f"while {closed} was closed, for when it opens"
        return f"after {names.contact(detail)} did not answer" if detail else ""
    if kind == CallEventKind.CRISIS.value:
        # What the caller heard: 988 and 911 first (the words themselves are the "Said" row).
        return CRISIS_TEXTS.get(detail or "", detail or "")
    if kind == CallEventKind.TEXT_QUEUED.value and detail:
        return "numbers of " + ", ".join(names.contact(c) for c in detail.split(","))
    return redact_numbers(detail) if detail else (names.menu(node) if node else "")


def _call_page(
    request: Request, session: Any, ident: str, revealed: str | None = None
) -> HTMLResponse:
    call = _visible_call(request, session, ident)
    names = flow_names(flow_of(request))
    timeline = [
        {
            "at": event.at,
            "offset": max(timedelta(0), event.at - call.started_at),
            "label": EVENT_LABELS.get(event.kind, event.kind),
            "kind": event.kind,
            "text": _event_text(event.kind, event.node, event.detail, names),
        }
        for event in call_events(session, call.id)
    ]
    return render(
        request,
        "call.html",
        call=call,
        names=names,
        caller=mask(call.caller),
        revealed=revealed,
        timeline=timeline,
        heard=revision_heard(session, call.revision_id, call.started_at),
    )


def _visible_call(request: Request, session: Any, ident: str) -> Call:
    call = find_call(session, ident)
    return visible(request, call, call.line_id if call else None, "Call")


@router.get("/calls/{ident}", response_class=HTMLResponse)
def call_page(
    request: Request, ident: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    return _call_page(request, session, ident)


@router.post("/calls/{ident}/reveal", response_class=HTMLResponse)
def reveal_caller(
    request: Request, ident: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    call = _visible_call(request, session, ident)
    record_audit(
        session,
        staff.username,
        "reveal",
        f"caller of call {call.call_sid} ({mask(call.caller)})",
        client_address=client_address(request),
    )
    return _call_page(request, session, ident, revealed=call.caller or "(unknown)")
