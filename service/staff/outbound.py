"""`/staff/outbound`: what the line sent or was asked to send on its own (press-8 texts, a long
text's further parts, `CALL` call-backs): queued, sending, sent, failed, suppressed (the number
opted out) and refused (the outbound policy: destination or caps), with Twilio's delivery
status. Masked numbers; newest first; pages of PAGE_ROWS by id."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import one_of
from service.followups.sweep import DIAL_ANSWERED
from service.models import OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.phone import mask
from service.sessions import ReadSessionDep
from service.staff.line_filter import LineChoice, chosen_line
from service.staff.queries import parse_id
from service.staff.web import CurrentStaff, PageError, pages_router, render

router = pages_router()

PAGE_ROWS = 100
KIND_LABELS = {OutboxKind.SMS.value: "Text", OutboxKind.CALL.value: "Call-back"}
STATUS_LABELS = {
    OutboxStatus.PENDING.value: "Queued",
    OutboxStatus.SENDING.value: "Sending",
    OutboxStatus.SENT.value: "Sent",
    OutboxStatus.FAILED.value: "Failed",
    OutboxStatus.SUPPRESSED.value: "Not sent: opted out",
    OutboxStatus.REFUSED.value: "Not sent: refused by the outbound policy",
}


@dataclass(frozen=True)
class OutboundFilters:
    status: str | None
    kind: str | None
    before: int | None
    line: LineChoice | None = None

    @classmethod
    def of(cls, request: Request) -> OutboundFilters:
        params = request.query_params
        status = params.get("status") or None
        kind = params.get("kind") or None
        raw_before = params.get("before") or ""
        before = parse_id(raw_before) if raw_before else None
        if status is not None and status not in STATUS_LABELS:
            raise PageError(400, "Unknown status", "Choose a status from the list.")
        if kind is not None and kind not in KIND_LABELS:
            raise PageError(400, "Unknown kind", "Choose texts or call-backs.")
        if raw_before and before is None:
            raise PageError(400, "Bad page link", "That page link is not one this site wrote.")
        return cls(status, kind, before, chosen_line(request))


def outbound_rows(session: Session, filters: OutboundFilters) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(PAGE_ROWS)
    if filters.status:
        query = query.where(OutboxMessage.status == filters.status)
    if filters.kind:
        query = query.where(OutboxMessage.kind == filters.kind)
    if filters.before:
        query = query.where(OutboxMessage.id < filters.before)
    if filters.line is not None:
        query = query.where(*one_of(OutboxMessage.line_id, filters.line.line_ids))
    return list(session.scalars(query))


def last_day_counts(
    session: Session, line_ids: frozenset[int] | None = None
) -> Counter[tuple[str, str]]:
    """(kind, status) -> rows queued in the last 24 hours (of these lines; None: all)."""
    since = utcnow() - timedelta(hours=24)
    query = (
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .where(OutboxMessage.created_at >= since)
        .group_by(OutboxMessage.kind, OutboxMessage.status)
    )
    rows = session.execute(query.where(*one_of(OutboxMessage.line_id, line_ids)))
    return Counter({(kind, status): int(count) for kind, status, count in rows})


CALL_ENDED = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "the call could not connect",
    "canceled": "the call was canceled",
}


def call_back_result(row: OutboxMessage) -> str:
    """What became of a call-back that was placed, as Twilio reported it ("" for a text)."""
    if row.kind != OutboxKind.CALL.value or row.status != OutboxStatus.SENT.value:
        return ""
    if row.call_status in CALL_ENDED:
        return f"Not answered: {CALL_ENDED[row.call_status]}"
    if row.dial_status in DIAL_ANSWERED:
        return "Answered, and put through to a person"
    if row.dial_status:
        ended = CALL_ENDED.get(row.dial_status, row.dial_status)
        return f"Answered, but the person it called was not reached: {ended}"
    if row.call_status == "completed":
        return "Answered"
    return "Placed; Twilio has not said how it ended yet"


def first_line(row: OutboxMessage) -> str:
    """What a text says (its first line); a call-back's TwiML is not shown."""
    if row.kind != OutboxKind.SMS.value:
        return ""
    return row.body.splitlines()[0] if row.body else ""


@router.get("/outbound", response_class=HTMLResponse)
def outbound_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    filters = OutboundFilters.of(request)
    rows = outbound_rows(session, filters)
    params = {k: v for k, v in (("status", filters.status), ("kind", filters.kind)) if v}
    params |= filters.line.params() if filters.line is not None else {}
    next_page = None
    if len(rows) == PAGE_ROWS:
        next_page = "/staff/outbound?" + "&".join(
            f"{k}={v}" for k, v in (params | {"before": str(rows[-1].id)}).items()
        )
    return render(
        request,
        "outbound.html",
        rows=rows,
        filters=filters,
        counts=last_day_counts(session, filters.line.line_ids if filters.line else None),
        kinds=KIND_LABELS,
        statuses=STATUS_LABELS,
        mask=mask,
        first_line=first_line,
        call_back_result=call_back_result,
        next_page=next_page,
        line_choice=filters.line,
    )
