"""Twilio's reports on the call-backs the line places (CALL): did the texter answer, and did the
person the call connected them to. Spooled onto the call-back's outbox row (its id is in the
URLs: `sender.call_back_urls`), where the follow-up sweep finds a call-back nobody answered and
staff see what became of it (/staff/outbound).

- `POST /twilio/call-back/status?outbox=N`: the call's status callback (CallStatus, final only).
- `POST /twilio/call-back/dial?outbox=N&contact=ID&lang=xx`: the action of the call's `<Dial>`
  (DialCallStatus); answers with what the texter hears after it: the number to call, twice,
  and a goodbye. It fails open: whatever goes wrong, the texter hears the coordinator's number
  and is put through to them (the voice line's fallback).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from service.calls.facts import CALL_STATUS_RANK, FINAL_CALL_RANK, TWILIO_CALL_STATUSES
from service.calls.router import coordinator_number
from service.channels import voice
from service.channels.form import Webhook, outbox_id_of
from service.channels.signature import verified_form
from service.flowengine.model import Flow
from service.flowengine.position import DialStatus
from service.lines.book import LineBook
from service.models import utcnow
from service.outbound.outbox import CallBackReported
from service.spool.spool import Spool

log = logging.getLogger(__name__)

TWIML_MEDIA_TYPE = "application/xml"


async def call_back_status(request: Request) -> Response:
    webhook = Webhook.parse(await verified_form(request, "CallSid"))
    outbox_id = outbox_id_of(request)
    status = webhook.call_status
    if status not in TWILIO_CALL_STATUSES:
        log.warning("ignoring a call-back status callback with an unknown CallStatus")
    elif outbox_id is not None and CALL_STATUS_RANK[status] == FINAL_CALL_RANK:
        _spool(request).submit([CallBackReported(outbox_id, utcnow(), call_status=status)])
    return Response(status_code=204)


async def call_back_dial(request: Request) -> Response:
    webhook = Webhook.parse(await verified_form(request, "CallSid"))
    try:
        outbox_id = outbox_id_of(request)
        status = webhook.dial_status
        if outbox_id is not None and DialStatus.read(status) is not None:
            _spool(request).submit([CallBackReported(outbox_id, utcnow(), dial_status=status)])
        elif status:
            log.warning("ignoring a call-back dial action with an unknown DialCallStatus")
        # A call-back goes out from the line's number: Twilio's `From` names the line.
        book: LineBook = request.app.state.book
        flow: Flow | None = book.flow(book.line_for(webhook.from_number))
        contact = flow.contacts.get(request.query_params.get("contact", "")) if flow else None
        if flow is not None and contact is not None:
            lang = request.query_params.get("lang", "")
            language = lang if lang in flow.languages else flow.default_language
            return _twiml(voice.after_call_back_dial_twiml(contact, language))
    except Exception:
        log.exception("the call-back dial action failed: answering with the fallback")
    return _twiml(voice.fallback(coordinator_number(request, webhook.from_number)))


WEBHOOKS = {"/twilio/call-back/status": call_back_status, "/twilio/call-back/dial": call_back_dial}
"""POST routes, added to the app as plain Starlette routes (see `service.main`)."""


def _spool(request: Request) -> Spool:
    spool: Spool = request.app.state.spool
    return spool


def _twiml(xml: str) -> Response:
    return Response(content=xml, media_type=TWIML_MEDIA_TYPE)
