"""The texts: conversations, their CSV, and one conversation."""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from service.db import get_database
from service.models import Conversation
from service.phone import mask
from service.sessions import ReadSessionDep, SessionDep
from service.staff.export import messages_csv
from service.staff.line_filter import LineChoice, chosen_line, visible
from service.staff.localtime import zone_of
from service.staff.names import flow_names
from service.staff.pages import audited_csv, cursor_of, flow_of, list_links, params_of
from service.staff.queries import (
    FilterError,
    MessageFilters,
    conversation_messages,
    is_opted_out,
    list_conversations,
    parse_id,
    redact_numbers,
)
from service.staff.web import (
    CurrentStaff,
    PageError,
    pages_router,
    render,
)

router = pages_router()


def _message_filters(request: Request, choice: LineChoice) -> MessageFilters:
    try:
        filters = MessageFilters.parse(params_of(request), zone_of(request))
    except FilterError as error:
        raise PageError(400, "Check the filters", str(error)) from None
    return replace(filters, line=choice.slug, line_ids=choice.line_ids)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    filters = _message_filters(request, choice)
    conversations, next_cursor = list_conversations(session, filters, cursor_of(request))
    return render(
        request,
        "messages.html",
        conversations=conversations,
        filters=filters,
        mask=mask,
        line_choice=choice,
        **list_links(request, "/staff/messages", filters.as_params(), next_cursor),
    )


@router.get("/messages.csv")
def messages_export(request: Request, staff: CurrentStaff, session: SessionDep) -> Response:
    filters = _message_filters(request, chosen_line(request))
    rows = messages_csv(get_database(), filters)
    days = (filters.date_from, filters.date_to)
    return audited_csv(request, staff, session, "messages", filters.describe(), days, rows)


@router.get("/messages/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    request: Request, conversation_id: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    ident = parse_id(conversation_id)
    found = session.get(Conversation, ident) if ident is not None else None
    conversation = visible(request, found, found.line_id if found else None, "Conversation")
    names = flow_names(flow_of(request))
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
