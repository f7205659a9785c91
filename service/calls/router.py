"""`POST /twilio/voice`, `POST /twilio/voice/status` and `POST /twilio/fallback`.

The voice webhook fails open: a broken flow file, or anything unexpected while answering, gives
the caller the fallback TwiML (an apology and a `<Dial>` to the referral coordinator) instead of
a 500, which Twilio would read out as an application error. The call's record is written after
the answer is sent (a background task), so a slow or broken database never delays what a caller
hears.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response
from starlette.datastructures import FormData

from service.calls import position_url
from service.calls.voice_call import (
    Turn,
    Webhook,
    database_text_queue,
    record_turn,
    take_turn,
)
from service.channels import voice
from service.channels.signature import TwilioForm, public_url
from service.config import Settings
from service.db import get_database
from service.flowengine import Flow
from service.metrics import DB_ERRORS
from service.optouts import JOURNAL_NAME
from service.recording import Recorder

log = logging.getLogger(__name__)

router = APIRouter()

TWIML_MEDIA_TYPE = "application/xml"
MAX_RECORDING = 8
RECORDING_SLOTS = threading.BoundedSemaphore(MAX_RECORDING)
# A healthy but busy database frees a slot within milliseconds: wait that long before skipping,
# so that load alone never loses a record (tests/ops/test_multiprocess.py).
RECORDING_WAIT_SECONDS = 1.0
COORDINATOR_NUMBER = "+18048287999"
"""Dialed by the fallback when no flow is loaded (the shipped flow's operator contact)."""


@router.post("/twilio/voice")
def voice_webhook(request: Request, form: TwilioForm, background: BackgroundTasks) -> Response:
    """A call starts, or a `<Gather>`/`<Dial>` action reports what the caller did."""
    try:
        flow: Flow | None = request.app.state.flow
        if flow is None:
            log.error("no flow is loaded: answering a call with the fallback")
            return _fallback(request, form)
        webhook = Webhook.from_form(form)
        before = position_url.decode(request.query_params, flow.default_language)
        now = clock()
        settings: Settings = request.app.state.settings
        texts = database_text_queue(get_database, flow, settings.var_dir / JOURNAL_NAME)
        turn = take_turn(flow, webhook, before, _base_url(request), now, texts)
        background.add_task(_record, flow, webhook, turn, now)
        return _twiml(turn.twiml)
    except Exception:
        log.exception("the voice webhook failed: answering with the fallback")
        return _fallback(request, form)


@router.post("/twilio/voice/status", status_code=204)
def call_status(form: TwilioForm) -> Response:
    """Twilio's call status callback (best-effort, may repeat, unordered): the call's end and
    duration. Recording swallows database errors; repeats change nothing."""
    sid = _field(form, "CallSid")
    status = _field(form, "CallStatus").lower()
    if not sid or not status:
        raise HTTPException(400, "CallSid and CallStatus are required")
    Recorder(get_database()).call_status(
        sid,
        status,
        duration=_field(form, "CallDuration") or None,
        caller=_field(form, "From") or None,
        called=_field(form, "To") or None,
    )
    return Response(status_code=204)


@router.post("/twilio/fallback")
def fallback_webhook(request: Request, form: TwilioForm) -> Response:
    """Twilio's fallback URL, requested when the voice webhook failed or timed out. Static:
    no database, no flow engine; only the coordinator's number from the loaded flow."""
    return _fallback(request, form)


def clock() -> datetime:
    """Now, for office hours (a function so tests can set the time)."""
    return datetime.now(UTC)


def _fallback(request: Request, form: FormData) -> Response:
    caller_id = voice.caller_id_for(_field(form, "From"), _field(form, "To"))
    return _twiml(voice.fallback(_coordinator_number(request), caller_id))


def _coordinator_number(request: Request) -> str:
    flow: Flow | None = getattr(request.app.state, "flow", None)
    if flow is not None:
        operator = flow.contacts.get(flow.operator)
        if operator is not None and operator.numbers:
            return operator.numbers[0]
    return COORDINATOR_NUMBER


def _record(flow: Flow, webhook: Webhook, turn: Turn, at: datetime) -> None:
    # Recording runs in the threads that also answer webhooks. A database that hangs (each
    # attempt waits for its connect timeout) must not take them all: past a few recordings in
    # flight, this one waits a moment, then is skipped and counted; callers keep being answered.
    if not RECORDING_SLOTS.acquire(timeout=RECORDING_WAIT_SECONDS):
        DB_ERRORS.labels(operation="voice_record_skipped").inc()
        log.warning(
            "recording skipped: %d recordings already waiting on the database", MAX_RECORDING
        )
        return
    try:
        record_turn(Recorder(get_database()), flow, webhook, turn, at)
    except Exception:  # the answer is already sent; never let recording take anything down
        log.exception("recording a voice turn failed")
    finally:
        RECORDING_SLOTS.release()


def _base_url(request: Request) -> str:
    """Scheme, host (and any path prefix) of the public URL Twilio reaches us at."""
    settings: Settings = request.app.state.settings
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    parts = urlsplit(public_url(request, settings))
    return f"{parts.scheme}://{parts.netloc}"


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:64] if isinstance(value, str) else ""


def _twiml(body: str) -> Response:
    return Response(content=body, media_type=TWIML_MEDIA_TYPE)
