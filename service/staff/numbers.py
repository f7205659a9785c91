"""One number's whole story, and finding it: `/staff/search?q=` takes the last four digits of a
number, a CallSid or a MessageSid; `/staff/number?call=<id>` (or `?conversation=<id>`) shows
every call and text of that call's (or conversation's) number. The number itself never
appears in a URL or on the page: it is named by a row that has it, and shown masked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.channels.signature import CALL_SID, MESSAGE_SID
from service.db import one_of
from service.models import Call, Conversation, Message, OutboxMessage
from service.phone import mask
from service.sessions import ReadSessionDep
from service.staff.outbound import STATUS_LABELS
from service.staff.outcomes import outcome_label
from service.staff.queries import parse_id, redact_numbers
from service.staff.web import CurrentStaff, PageError, Staff, pages_router, render

router = pages_router()

LAST_FOUR = re.compile(r"[0-9]{4}")
ROWS = 100


@dataclass(frozen=True)
class Match:
    masked: str
    calls: int
    texts: int
    link: str


def numbers_ending(
    session: Session, digits: str, line_ids: frozenset[int] | None = None
) -> list[Match]:
    """The numbers that called or texted (these lines; None: any) ending in these four digits,
    each named by a row."""
    pattern = f"%{digits}"
    callers = session.execute(
        select(Call.caller, func.count(), func.max(Call.id))
        .where(Call.caller.like(pattern), *one_of(Call.line_id, line_ids))
        .group_by(Call.caller)
        .limit(ROWS)
    ).all()
    texters = session.execute(
        select(Conversation.phone, func.count(Message.id), func.max(Conversation.id))
        .join(Message, Message.conversation_id == Conversation.id, isouter=True)
        .where(Conversation.phone.like(pattern), *one_of(Conversation.line_id, line_ids))
        .group_by(Conversation.phone)
        .limit(ROWS)
    ).all()
    found: dict[str, Match] = {}
    for phone, calls, call_id in callers:
        if phone is None:
            continue
        found[phone] = Match(mask(phone), int(calls), 0, f"/staff/number?call={call_id}")
    for phone, texts, conversation_id in texters:
        known = found.get(phone)
        if known is None:
            link = f"/staff/number?conversation={conversation_id}"
            found[phone] = Match(mask(phone), 0, int(texts), link)
        else:
            found[phone] = Match(known.masked, known.calls, int(texts), known.link)
    return sorted(found.values(), key=lambda match: (-match.calls - match.texts, match.link))


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    query = (request.query_params.get("q") or "").strip()
    lines = staff.line_ids
    if CALL_SID.fullmatch(query):
        call_id = session.scalar(
            select(Call.id).where(Call.call_sid == query, *one_of(Call.line_id, lines))
        )
        if call_id is not None:
            return RedirectResponse(f"/staff/calls/{call_id}", status_code=303)
    elif MESSAGE_SID.fullmatch(query):
        conversation_id = session.scalar(
            select(Message.conversation_id).where(
                Message.message_sid == query, *one_of(Message.line_id, lines)
            )
        )
        if conversation_id is not None:
            return RedirectResponse(f"/staff/messages/{conversation_id}", status_code=303)
    elif query and not LAST_FOUR.fullmatch(query):
        raise PageError(
            400,
            "Check the search",
            "Search by the last four digits of a number, a CallSid (CA…) or a MessageSid (SM…).",
        )
    matches = numbers_ending(session, query, lines) if LAST_FOUR.fullmatch(query) else []
    return render(request, "search.html", query=query, matches=matches)


@router.get("/number", response_class=HTMLResponse)
def number_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    lines = staff.line_ids
    phone = _phone_named_by(session, request, staff)
    if phone is None:
        raise PageError(404, "Number not found", "There is no call or conversation with that id.")
    calls = session.scalars(
        select(Call)
        .where(Call.caller == phone, *one_of(Call.line_id, lines))
        .order_by(Call.started_at.desc())
        .limit(ROWS)
    ).all()
    texts = session.scalars(
        select(Message)
        .where(Message.phone == phone, *one_of(Message.line_id, lines))
        .order_by(Message.created_at.desc())
        .limit(ROWS)
    ).all()
    sent = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to_number == phone, *one_of(OutboxMessage.line_id, lines))
        .order_by(OutboxMessage.id.desc())
        .limit(ROWS)
    ).all()
    return render(
        request,
        "number.html",
        masked=mask(phone),
        calls=calls,
        texts=texts,
        sent=sent,
        outcome_label=outcome_label,
        redact=redact_numbers,
        statuses=STATUS_LABELS,
    )


def _phone_named_by(session: Session, request: Request, staff: Staff) -> str | None:
    """The number of the call or conversation the address names (one of these lines)."""
    params = request.query_params
    if "call" in params:
        call_id = parse_id(params["call"])
        call = session.get(Call, call_id) if call_id is not None else None
        return call.caller if call is not None and staff.may_see(call.line_id) else None
    if "conversation" in params:
        conversation_id = parse_id(params["conversation"])
        conversation = (
            session.get(Conversation, conversation_id) if conversation_id is not None else None
        )
        if conversation is None or not staff.may_see(conversation.line_id):
            return None
        return conversation.phone
    return None
