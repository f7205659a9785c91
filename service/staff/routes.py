"""The staff dashboard's pages (SPEC section 6): sign-in, overview, calls, texts, exports,
the simulator and the audit log (administration is in `admin.py`)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.calls.facts import dialed_contact
from service.db import ReadSessionDep, SessionDep, get_database
from service.flowengine import Flow
from service.lines.book import LineBook
from service.models import AuditEntry, CallEventKind, Conversation, DialOutcome, StaffUser
from service.phone import mask
from service.staff import charts
from service.staff.admin import router as admin_router
from service.staff.auth import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_CHANGED,
    SIGN_OUT,
    AccountError,
    PasswordThrottled,
    StaffSession,
    change_password,
    client_address,
    clock_of,
    encode_session,
    sign_in,
)
from service.staff.export import calls_csv, file_name, messages_csv
from service.staff.followups import router as follow_ups_router
from service.staff.headlines import (
    MEASURES,
    Range,
    language_name,
    overview_report,
    wait_text,
)
from service.staff.line_filter import LineChoice, chosen_line
from service.staff.lines import revision_heard
from service.staff.lines import router as lines_router
from service.staff.localtime import zone_of
from service.staff.names import FlowNames, flow_names
from service.staff.numbers import router as numbers_router
from service.staff.outbound import router as outbound_router
from service.staff.outcomes import DIAL_COLOURS, DIAL_LABELS
from service.staff.queries import (
    OUTCOMES,
    CallFilters,
    Cursor,
    FilterError,
    MessageFilters,
    call_events,
    conversation_messages,
    find_call,
    is_opted_out,
    list_calls,
    list_conversations,
    parse_id,
    redact_numbers,
)
from service.staff.simulator import simulator_page, simulator_step
from service.staff.web import (
    PASSWORD_PAGE,
    AdminStaff,
    CheckedForm,
    CurrentStaff,
    PageError,
    SignedInStaff,
    Staff,
    StaffRoute,
    render,
    rotate_csrf,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/staff", route_class=StaffRoute)
router.include_router(follow_ups_router)
router.include_router(outbound_router)
router.include_router(numbers_router)
router.include_router(lines_router)
router.include_router(admin_router)


def _flow(request: Request, choice: LineChoice | None = None) -> Flow | None:
    """The flow whose words name menus and contacts: the chosen line's, else the default's."""
    book: LineBook = request.app.state.book
    if choice is not None and choice.line is not None:
        return book.flow(choice.line) or book.default_flow()
    return book.default_flow()


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _call_filters(request: Request, names: FlowNames, choice: LineChoice) -> CallFilters:
    try:
        filters = CallFilters.parse(
            _params(request), names.languages, list(names.contacts), zone_of(request)
        )
    except FilterError as error:
        raise PageError(400, "Check the filters", str(error)) from None
    return replace(filters, line=choice.slug, line_id=choice.line_id)


def _cursor(request: Request) -> Cursor | None:
    try:
        return Cursor.decode(request.query_params.get("after"))
    except FilterError as error:
        raise PageError(400, "Page link not valid", str(error)) from None


def _link(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(params) if params else "")


# -- the stylesheet ----------------------------------------------------------------------------

STYLESHEET = (Path(__file__).parent / "static" / "staff.css").read_text()


@router.get("/staff.css")
def stylesheet() -> Response:
    """The pages' one stylesheet (the Content-Security-Policy allows no inline style)."""
    return Response(
        STYLESHEET,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_text()


@router.get("/favicon.svg")
def favicon() -> Response:
    """The tab's icon: a white handset on the header's navy."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


# -- sign-in and sign-out ----------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on the dashboard itself (never another site)."""
    if target and target.startswith("/staff") and not target.startswith("//"):
        return target
    return "/staff/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/staff/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: CheckedForm, session: SessionDep) -> Response:
    username = form.get("username", "")
    target = _safe_next(form.get("next"))
    now = clock_of(request)()
    result = sign_in(session, username, form.get("password", ""), client_address(request), now)
    if result.throttle is not None:
        throttle = result.throttle
        log.warning(
            "staff sign-in throttled (limit %s%s)",
            throttle.limit,
            ", during a flood of failed sign-ins" if throttle.flood else "",
        )
        minutes = throttle.minutes_left(now)
        page = render(
            request,
            "login.html",
            status_code=429,
            next=target,
            username=username,
            error=f"Too many failed sign-ins from here. Wait {minutes} "
            f"minute{'s' if minutes != 1 else ''}, then try again, or ask an administrator "
            "to check your account.",
        )
        page.headers["Retry-After"] = str(throttle.seconds_left(now))
        return page
    if result.user is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=target,
            username=username,
            error="Wrong username or password.",
        )
    _start_session(request, result.user.id)
    if result.user.must_change_password:
        target = f"{PASSWORD_PAGE}?next={quote(target, safe='')}"
    return RedirectResponse(target, status_code=303)


def _start_session(request: Request, user_id: int) -> None:
    """A new session cookie (and CSRF token) for this browser, issued now."""
    stamp = clock_of(request)().timestamp()
    settings = request.app.state.settings
    request.state.session_cookie = encode_session(settings, StaffSession(user_id, stamp, stamp))
    rotate_csrf(request)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, staff: SignedInStaff, next: str = "/staff/") -> Response:
    return _password_page(request, _safe_next(next))


def _password_page(
    request: Request, next: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "password.html",
        status_code=status_code,
        next=next,
        error=error,
        min_password_length=MIN_PASSWORD_LENGTH,
    )


@router.post("/password", response_class=HTMLResponse)
def choose_password(
    request: Request, staff: SignedInStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """The account's own password, in place of a temporary one (or of its old one): every other
    session of the account ends; this browser's goes on with a new cookie."""
    target = _safe_next(form.get("next"))
    now = clock_of(request)()
    try:
        change_password(
            session,
            staff.id,
            form.get("current_password", ""),
            form.get("new_password", ""),
            form.get("new_password_again", ""),
            now,
            client_address(request),
        )
    except PasswordThrottled as refused:
        minutes = refused.throttle.minutes_left(now)
        page = _password_page(
            request,
            target,
            f"Too many wrong passwords from here. Wait {minutes} "
            f"minute{'s' if minutes != 1 else ''}, then try again.",
            429,
        )
        page.headers["Retry-After"] = str(refused.throttle.seconds_left(now))
        return page
    except AccountError as error:
        message = str(error)
        return _password_page(request, target, message[:1].upper() + message[1:] + ".", 400)
    record_audit(session, staff.username, PASSWORD_CHANGED, client_address=client_address(request))
    _start_session(request, staff.id)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(
    request: Request, staff: SignedInStaff, form: CheckedForm, session: SessionDep
) -> Response:
    record_audit(session, staff.username, SIGN_OUT, client_address=client_address(request))
    # Every cookie issued until now stops working, not only this browser's.
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id)
        .values(sessions_valid_after=clock_of(request)())
    )
    request.state.session_cookie = ""
    rotate_csrf(request)
    return RedirectResponse("/staff/login", status_code=303)


# -- overview ----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(_flow(request, choice))
    zone = zone_of(request)
    today = clock_of(request)().astimezone(zone).date()
    try:
        chosen = Range.parse(_params(request), today, zone)
    except FilterError as error:
        raise PageError(400, "Check the dates", str(error)) from None
    report = overview_report(session, chosen, today, choice.numbers)
    periods = charts.periods_of(chosen.days)
    per = "day" if len(periods) == len(chosen.days) else "month"
    over_time = [
        (
            period,
            sum(report.calls_per_day[day] for day in _days_of(period)),
            sum(report.texts_per_day[day] for day in _days_of(period)),
        )
        for period in periods
    ]
    options = [
        (f"{names.menu(node)}: {names.option(node, key)}", count)
        for (node, key), count in report.options.most_common(15)
    ]
    drop_off = [(names.menu(node), count) for node, count in report.drop_off.most_common(15)]
    dial_outcomes = [*DialOutcome, "no result"]
    transfer_rows = [
        (names.contact(contact), counts)
        for contact, counts in sorted(report.transfers.items(), key=lambda item: -item[1].total())
    ]
    return render(
        request,
        "overview.html",
        report=report,
        line_choice=choice,
        measures=MEASURES,
        language_name=language_name,
        wait_text=wait_text,
        per=per,
        over_time=over_time,
        calls_chart=charts.bars_over_time(
            f"Calls per {per}", periods, [calls for _, calls, _ in over_time]
        ),
        texts_chart=charts.bars_over_time(
            f"Texts per {per}", periods, [texts for *_, texts in over_time], charts.BAR_COLOURS[2]
        ),
        options=options,
        options_chart=charts.horizontal_bars("Options chosen", options),
        drop_off=drop_off,
        drop_off_chart=charts.horizontal_bars(
            "Where callers hung up: the last menu of calls with no transfer", drop_off
        ),
        transfer_rows=transfer_rows,
        dial_outcomes=dial_outcomes,
        transfers_chart=charts.stacked_bars(
            "Transfers by contact and how they ended",
            transfer_rows,
            dial_outcomes,
            colours=DIAL_COLOURS,
            labels=DIAL_LABELS,
        ),
        dial_labels=DIAL_LABELS,
    )


def _days_of(period: charts.Period) -> Iterator[date]:
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)


# -- calls -------------------------------------------------------------------------------------


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(_flow(request, choice))
    filters = _call_filters(request, names, choice)
    calls, next_cursor = list_calls(session, filters, _cursor(request))
    params = filters.as_params()
    return render(
        request,
        "calls.html",
        calls=calls,
        names=names,
        filters=filters,
        outcomes=OUTCOMES,
        mask=mask,
        line_choice=choice,
        first_page=_link("/staff/calls", params) if "after" in request.query_params else None,
        next_page=(
            _link("/staff/calls", params | {"after": next_cursor.encode()}) if next_cursor else None
        ),
        csv_link=_link("/staff/calls.csv", params),
    )


@router.get("/calls.csv")
def calls_export(request: Request, staff: CurrentStaff, session: SessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(_flow(request, choice))
    filters = _call_filters(request, names, choice)
    rows = calls_csv(get_database(), filters, names.contacts)
    days = (filters.date_from, filters.date_to)
    return _audited_csv(request, staff, session, "calls", filters.describe(), days, rows)


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
    call = find_call(session, ident)
    if call is None:
        raise PageError(404, "Call not found", "There is no call with that id or CallSid.")
    names = flow_names(_flow(request))
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
        heard=revision_heard(session, call.revision_id),
    )


@router.get("/calls/{ident}", response_class=HTMLResponse)
def call_page(
    request: Request, ident: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    return _call_page(request, session, ident)


@router.post("/calls/{ident}/reveal", response_class=HTMLResponse)
def reveal_caller(
    request: Request, ident: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    call = find_call(session, ident)
    if call is None:
        raise PageError(404, "Call not found", "There is no call with that id or CallSid.")
    record_audit(
        session,
        staff.username,
        "reveal",
        f"caller of call {call.call_sid} ({mask(call.caller)})",
        client_address=client_address(request),
    )
    return _call_page(request, session, ident, revealed=call.caller or "(unknown)")


# -- texts -------------------------------------------------------------------------------------


def _message_filters(request: Request, choice: LineChoice) -> MessageFilters:
    try:
        filters = MessageFilters.parse(_params(request), zone_of(request))
    except FilterError as error:
        raise PageError(400, "Check the filters", str(error)) from None
    return replace(filters, line=choice.slug, line_id=choice.line_id)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    filters = _message_filters(request, choice)
    conversations, next_cursor = list_conversations(session, filters, _cursor(request))
    params = filters.as_params()
    return render(
        request,
        "messages.html",
        conversations=conversations,
        filters=filters,
        mask=mask,
        line_choice=choice,
        first_page=_link("/staff/messages", params) if "after" in request.query_params else None,
        next_page=(
            _link("/staff/messages", params | {"after": next_cursor.encode()})
            if next_cursor
            else None
        ),
        csv_link=_link("/staff/messages.csv", params),
    )


@router.get("/messages.csv")
def messages_export(request: Request, staff: CurrentStaff, session: SessionDep) -> Response:
    filters = _message_filters(request, chosen_line(request))
    rows = messages_csv(get_database(), filters)
    days = (filters.date_from, filters.date_to)
    return _audited_csv(request, staff, session, "messages", filters.describe(), days, rows)


UTF8_BOM = "\ufeff"


def _audited_csv(
    request: Request,
    staff: Staff,
    session: Session,
    name: str,
    filters: str,
    days: tuple[date | None, date | None],
    rows: Iterator[str],
) -> Response:
    """A streamed CSV download named for the days it covers (`export.file_name`), written to
    the audit log as an export. `?for=excel` starts it with a UTF-8 byte order mark, without
    which Excel reads the file as Windows-1252 and garbles every accented letter (the Spanish
    texts)."""
    excel = request.query_params.get("for") == "excel"
    record_audit(
        session,
        staff.username,
        "export",
        f"{name}.csv{' (for Excel)' if excel else ''}, filters: {filters}",
        client_address=client_address(request),
    )
    today = clock_of(request)().astimezone(zone_of(request)).date()
    download = file_name(name, *days, today)
    return StreamingResponse(
        itertools.chain([UTF8_BOM], rows) if excel else rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{download}"'},
    )


@router.get("/messages/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    request: Request, conversation_id: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    ident = parse_id(conversation_id)
    conversation = session.get(Conversation, ident) if ident is not None else None
    if conversation is None:
        raise PageError(404, "Conversation not found", "There is no conversation with that id.")
    names = flow_names(_flow(request))
    messages = [
        {
            "at": message.created_at,
            "direction": message.direction,
            "body": redact_numbers(message.body) if message.direction == "in" else message.body,
            "status": message.status,
            "segments": message.segments,
        }
        for message in conversation_messages(session, conversation)
    ]
    return render(
        request,
        "conversation.html",
        conversation=conversation,
        phone=mask(conversation.phone),
        opted_out=is_opted_out(session, conversation),
        node=names.menu(conversation.node),
        messages=messages,
    )


# -- simulator ---------------------------------------------------------------------------------


@router.get("/simulator", response_class=HTMLResponse)
def simulator_start(request: Request, staff: CurrentStaff) -> Response:
    return simulator_page(request, _flow(request), None)


@router.post("/simulator", response_class=HTMLResponse)
def simulator_post(request: Request, staff: CurrentStaff, form: CheckedForm) -> Response:
    return simulator_step(request, _flow(request), form)


# -- administration ----------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, staff: AdminStaff, session: ReadSessionDep) -> Response:
    raw_before = request.query_params.get("before", "")
    before = parse_id(raw_before)
    if raw_before and before is None:
        raise PageError(400, "Page link not valid", "Start again from the newest entries.")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(101)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    entries = session.scalars(query).all()
    more = len(entries) > 100
    entries = entries[:100]
    return render(
        request,
        "audit.html",
        entries=entries,
        next_page=f"/staff/audit?before={entries[-1].id}" if more and entries else None,
    )


# Last, so that it only answers what no route above does: an HTML page, with the staff headers.
@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def not_found(path: str) -> Response:
    raise PageError(404, "Page not found", "There is no staff page at this address.")
