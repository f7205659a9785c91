"""`POST /twilio/voice`, `POST /twilio/voice/status` and `POST /twilio/fallback`.

The voice webhook fails open: a broken flow file, or anything unexpected while answering, gives
the caller the fallback TwiML (an apology and a `<Dial>` to the referral coordinator) instead of
a 500, which Twilio would read out as an application error. The call's record goes to the spool
(`app.state.spool`: on local disk before the answer goes out), which writes it to the database
soon after, so a slow or broken database never delays what a caller hears and never loses what
they did. The handlers are coroutines: answering takes no database and no thread, except for
the text a caller asks for ("press 8").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
from fastapi import HTTPException, Request, Response

from service.calls import position_url
from service.calls.facts import TWILIO_CALL_STATUSES, StatusReported, duration_of
from service.calls.screening import TAKE_KEY, screen_event, was_taken, whisper
from service.calls.voice_call import SCREEN_PATH, TextQueue, take_turn, turn_facts
from service.channels import voice
from service.channels.form import TwilioForm, Webhook
from service.channels.signature import CALL_SID, public_url, verified_form
from service.config import Settings
from service.db import get_database
from service.flowengine import Flow, Position
from service.flowengine.position import DialStatus
from service.lines.book import LineBook
from service.metrics import WEBHOOKS_UNHEARD
from service.phone import LAST_RESORT_NUMBER
from service.serving import gave_up
from service.spool.codec import Record
from service.spool.spool import Spool
from service.voicemail.records import TWILIO_STATUSES, RecordingReported

log = logging.getLogger(__name__)

TWIML_MEDIA_TYPE = "application/xml"


async def voice_webhook(request: Request) -> Response:
    """`POST /twilio/voice`: a call starts, or a `<Gather>`/`<Dial>` action reports what the
    caller did."""
    form = await verified_form(request, "CallSid")
    try:
        webhook = Webhook.parse(form)
        query: bytes = request.scope["query_string"]
        book = _book(request)
        line = book.line_for(webhook.to_number)
        wanted = position_url.revision_in(query)
        if wanted is not None and not book.knows(wanted):
            # A call that began before a publish, in a process that never served its revision.
            await anyio.to_thread.run_sync(book.load_revision, wanted)
        served = book.served(line, wanted, webhook.from_number)
        if line is None or served is None:
            log.error("no flow is loaded: answering a call with the fallback")
            return _fallback(request, form)
        flow, revision_id = served
        before = position_url.decode_query(query, flow.default_language)
        now = clock()
        texts: TextQueue = request.app.state.text_queue
        settings: Settings = request.app.state.settings
        if gave_up(request.scope, settings.twilio_timeout_seconds):
            # Twilio hung up on this webhook (it waited too long) and played its fallback:
            # nobody will hear this turn, so it is neither taken (no text queued) nor recorded.
            WEBHOOKS_UNHEARD.labels(route="/twilio/voice").inc()
            log.warning("a voice webhook came after Twilio gave up on it: not recorded")
            return _fallback(request, form)
        # A revision nobody can serve any more: the caller starts over at the line's main menu.
        restart = wanted is not None and wanted != revision_id
        if await _not_taken(request, flow, webhook, before):
            webhook = replace(webhook, dial_status=DialStatus.NO_ANSWER.value)
        turn = await take_turn(
            flow, webhook, before, _base_url(request), now, texts,
            revision_id=revision_id, restart=restart, line_id=line.id,
        )  # fmt: skip
        facts = turn_facts(flow, webhook, turn, now, line_id=line.id, revision_id=revision_id)
        if not await _kept(request, facts):
            # Neither the disk nor the database keeps this call's record: promise nothing
            # (no menu whose choices would be lost), put the caller through to a person.
            log.error("nothing keeps this call's record: answering with the fallback")
            return _fallback(request, form)
        return _twiml(turn.twiml)
    except Exception:
        log.exception("the voice webhook failed: answering with the fallback")
        return _fallback(request, form)


async def call_status(request: Request) -> Response:
    """`POST /twilio/voice/status`: Twilio's call status callback (best-effort, may repeat,
    unordered): the call's end and duration. Repeats change nothing (`service.calls.facts`)."""
    webhook = Webhook.parse(await verified_form(request, "CallSid"))
    sid, status = webhook.call_sid, webhook.call_status
    if not sid or not status:
        raise HTTPException(400, "CallSid and CallStatus are required")
    if status not in TWILIO_CALL_STATUSES:
        # A value Twilio adds one day says nothing we know about the call; never a 4xx to
        # Twilio, which would log every such callback as a failed webhook.
        log.warning("ignoring a call status callback with an unknown CallStatus")
        return Response(status_code=204)
    report = StatusReported(
        sid,
        clock(),
        status,
        duration=duration_of(webhook.call_duration),
        caller=webhook.from_number or None,
        called=webhook.to_number or None,
    )
    _spool(request).submit([report])
    return Response(status_code=204)


async def recording_status(request: Request) -> Response:
    """`POST /twilio/voice/recording`: Twilio's recording status callback for a message a
    caller left: its audio is ready (`completed`) or there is none (`absent`, `failed`).
    Spooled like a call fact (the fetcher copies the audio once it is written); repeats change
    nothing. A status Twilio adds one day is logged and answered 204, never a 4xx."""
    webhook = Webhook.parse(await verified_form(request, "RecordingSid"))
    if webhook.recording_status not in TWILIO_STATUSES:
        if webhook.recording_status != "in-progress":
            log.warning("ignoring a recording status callback with an unknown RecordingStatus")
        return Response(status_code=204)
    report = RecordingReported(
        webhook.recording_sid,
        webhook.call_sid,
        clock(),
        webhook.recording_status,
        duration_of(webhook.recording_duration),
    )
    if not await _kept(request, [report]):
        # Twilio retries a callback that failed: it comes back once the disk or the database
        # takes it.
        raise HTTPException(503, "cannot keep the report now")
    return Response(status_code=204)


async def screen_webhook(request: Request) -> Response:
    """`POST /twilio/voice/screen?call=…&contact=…&lang=…`: Twilio asks what whoever answered
    a screened transfer hears (`service.calls.screening`), then (`&step=key`) reports their
    key: 1 puts them through, anything else (or nothing) hangs up their leg."""
    form = await verified_form(request, "CallSid")
    params = request.query_params
    call_sid, contact = params.get("call", ""), params.get("contact", "")
    if not CALL_SID.fullmatch(call_sid) or not contact:
        raise HTTPException(400, "call and contact are required")
    if params.get("step") != "key":
        words, lang = whisper(_book(request).default_flow(), params.get("lang", ""))
        query = urlencode({"call": call_sid, "contact": contact[:64], "step": "key"})
        action = f"{_base_url(request)}{SCREEN_PATH}?{query}"
        return _twiml(voice.screen_twiml(words, lang, action))
    taken = Webhook.parse(form).digits == TAKE_KEY
    # Kept where every process of this host reads it before the database has it. Taken:
    # connected whatever became of the record (a person is on the line).
    _spool(request).submit([screen_event(call_sid, clock(), contact, taken)], durable=True)
    return _twiml(voice.screen_answer(taken))


async def _not_taken(
    request: Request, flow: Flow, webhook: Webhook, before: Position | None
) -> bool:
    """A screened transfer that Twilio reports answered, but that nobody took (a machine, or
    no key): it was not answered."""
    answered = DialStatus.read(webhook.dial_status) in (DialStatus.COMPLETED, DialStatus.ANSWERED)
    if not answered or before is None or before.state != "dialing":
        return False
    contact = flow.contacts.get(before.contact or "")
    if contact is None or not contact.screen:
        return False
    spool = _spool(request)
    taken = await anyio.to_thread.run_sync(was_taken, spool, get_database, webhook.call_sid)
    return taken is False


async def fallback_webhook(request: Request) -> Response:
    """`POST /twilio/fallback`: Twilio's fallback URL, requested when the voice webhook failed
    or timed out. Static: no database, no flow engine; only the coordinator's number from the
    flow of the line the called number belongs to."""
    form = await verified_form(request, "CallSid")
    return _fallback(request, form)


WEBHOOKS = {
    "/twilio/voice": voice_webhook,
    "/twilio/voice/status": call_status,
    "/twilio/voice/recording": recording_status,
    "/twilio/voice/screen": screen_webhook,
    "/twilio/fallback": fallback_webhook,
}
"""POST routes, added to the app as plain Starlette routes (see `service.main`)."""


def clock() -> datetime:
    """Now, for office hours (a function so tests can set the time)."""
    return datetime.now(UTC)


async def _kept(request: Request, records: Sequence[Record]) -> bool:
    """Spool the turn's record; when the disk refuses it, it is written to the database at once
    (in a worker thread, not on the event loop). True when one of them has it."""
    spool = _spool(request)
    if spool.disk_failing:
        kept = await anyio.to_thread.run_sync(lambda: spool.submit(records, hold=False))
    else:
        kept = spool.submit(records, hold=False)
    return kept.promised


def _spool(request: Request) -> Spool:
    spool: Spool = request.app.state.spool
    return spool


def _book(request: Request) -> LineBook:
    book: LineBook = request.app.state.book
    return book


def _fallback(request: Request, form: TwilioForm) -> Response:
    webhook = Webhook.parse(form)
    caller_id = voice.caller_id_for(webhook.from_number, webhook.to_number)
    return _twiml(voice.fallback(coordinator_number(request, webhook.to_number), caller_id))


def coordinator_number(request: Request, our_number: str | None) -> str:
    """The number of the operator of the line `our_number` belongs to (the default line's for
    a number nobody assigned; the shipped coordinator's when no flow is loaded at all)."""
    try:
        book = _book(request)
        flow: Flow | None = book.flow(book.line_for(our_number))
    except Exception:  # the fallback answers whatever else is broken
        log.exception("the line book could not be read: the fallback dials the coordinator")
        flow = None
    if flow is not None:
        operator = flow.contacts.get(flow.operator)
        if operator is not None and operator.numbers:
            return operator.numbers[0]
    return LAST_RESORT_NUMBER


def _base_url(request: Request) -> str:
    """Scheme, host (and any path prefix) of the public URL Twilio reaches us at."""
    settings: Settings = request.app.state.settings
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    parts = urlsplit(public_url(request, settings))
    return f"{parts.scheme}://{parts.netloc}"


def _twiml(body: str) -> Response:
    return Response(content=body, media_type=TWIML_MEDIA_TYPE)
