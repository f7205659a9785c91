"""`POST /twilio/sms` (an inbound text -> TwiML `<Message>` replies) and `POST /twilio/sms/status`.

The conversation (where the texter is, their language, the flow version) is kept per (From, To)
in `conversations`; after 24 quiet hours the next text starts over at the main menu in the
language last used, with the opt-in notice. Opt-outs are recorded through the Recorder, which
journals them when the database is down; while it is down the journal is read before replying,
and any other text gets a fixed reply with the coordinator's number. Bodies never reach the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from service.channels.signature import verified_form
from service.channels.sms import messages_for, segments_of, twiml_response
from service.channels.voice import call_back_twiml
from service.config import Settings
from service.db import Database, get_database
from service.flowengine import Flow, Position
from service.metrics import OPT_OUT_CHANGES, TEXT_DELIVERY, TEXTS_SENT
from service.models import Conversation, Direction, Message, OutboxKind, utcnow
from service.outbound.outbox import enqueue
from service.phone import to_e164
from service.recording import DATABASE_ERRORS, MESSAGE_STATUS_RANK, Recorder, describe_error
from service.texts.conversations import CONVERSATION_TTL, save_conversation
from service.texts.dialogue import TextTurn, respond
from service.texts.journal import journaled_opt_out, replay_if_pending
from service.texts.keywords import Keyword, classify, keyword_reply, language_of
from service.texts.optouts import JOURNAL_NAME, is_opted_out, journal_opt_out

log = logging.getLogger(__name__)

FINAL_DELIVERY = frozenset({"delivered", "undelivered", "failed", "canceled"})


@dataclass(frozen=True)
class Inbound:
    sid: str
    phone: str
    line: str
    body: str


def _journal(settings: Settings) -> Path:
    return settings.var_dir / JOURNAL_NAME


async def inbound_text(request: Request) -> Response:
    """`POST /twilio/sms`: the signature is checked here, the conversation (database work) runs
    in a worker thread."""
    form = await verified_form(request)
    return await run_in_threadpool(_reply, request, form)


def _reply(request: Request, form: FormData) -> Response:
    inbound = Inbound(
        sid=str(form.get("MessageSid") or form.get("SmsSid") or ""),
        phone=str(form.get("From") or "").strip(),
        line=str(form.get("To") or "").strip(),
        body=str(form.get("Body") or ""),
    )
    if not inbound.phone or not inbound.line:
        raise HTTPException(400, "From and To are required")
    settings: Settings = request.app.state.settings
    flow: Flow | None = request.app.state.flow
    database = get_database()
    journal = _journal(settings)
    turn: TextTurn | None = None
    database_up = replay_if_pending(database, journal)
    if flow is not None and database_up:
        try:
            turn = _converse(database, flow, inbound)
        except DATABASE_ERRORS as error:
            database_up = False
            log.warning("SMS conversation unavailable: %s", describe_error(error))
    if turn is None:
        recorder = Recorder(database, journal=journal) if database_up else None
        return _answer(_without_conversation(flow, inbound, journal, recorder))
    recorder = Recorder(database, journal=journal)
    if turn.opted_out is not None:
        recorder.opt_out(inbound.phone, turn.opted_out, turn.word)
    messages = messages_for(turn.reply)
    response = _answer(messages)
    # Recorded once the answer is on its way: Twilio does not wait on the record.
    response.background = BackgroundTask(_record_texts, recorder, inbound, messages)
    return response


def _record_texts(recorder: Recorder, inbound: Inbound, messages: list[str]) -> None:
    if inbound.sid:
        recorder.message_received(
            inbound.sid,
            inbound.phone,
            inbound.line,
            inbound.body,
            segments=max(1, segments_of(inbound.body)),
        )
    for message in messages:
        recorder.message_sent(
            None,
            inbound.phone,
            inbound.line,
            message,
            segments=segments_of(message),
            status="sent",
        )


def _answer(messages: list[str]) -> Response:
    if messages:
        TEXTS_SENT.labels(via="reply").inc(len(messages))
    return twiml_response(messages)


def _converse(database: Database, flow: Flow, inbound: Inbound) -> TextTurn:
    """Step the conversation and store it (one transaction); opt-outs are recorded after."""
    now = utcnow()
    with database.session() as session:
        repeat = bool(inbound.sid) and _already_received(session, inbound.sid)
        opted_out = is_opted_out(session, inbound.phone)
        position, lang = _position(session, flow, inbound, now)
        turn = respond(flow, inbound.body, position, opted_out=opted_out, lang=lang, repeat=repeat)
        if repeat and turn.opted_out is not None:
            # Twilio retried a STOP/START we already recorded: answer it again, record it once.
            turn = TextTurn(turn.position, turn.reply, turn.keyword, turn.word)
        if turn.reply is not None:
            save_conversation(
                session,
                inbound.phone,
                inbound.line,
                node=turn.position.node,
                language=turn.position.lang,
                flow_hash=flow.content_hash,
                now=now,
            )
        if turn.call_contact is not None:
            contact = flow.contacts[turn.call_contact]
            enqueue(
                session,
                OutboxKind.CALL,
                inbound.phone,
                call_back_twiml(contact, turn.position.lang),
                from_number=inbound.line,
                dedupe_key=f"call-back:{inbound.sid}" if inbound.sid else None,
                now=now,
            )
    return turn


def _already_received(session: Session, sid: str) -> bool:
    found = session.scalar(
        select(Message.id).where(
            Message.message_sid == sid, Message.direction == Direction.IN.value
        )
    )
    return found is not None


def _position(
    session: Session, flow: Flow, inbound: Inbound, now: datetime
) -> tuple[Position | None, str | None]:
    """The texter's position, or (None, last language) when there is none or it expired."""
    conversation = session.scalars(
        select(Conversation).where(
            Conversation.phone == _e164(inbound.phone), Conversation.line == _e164(inbound.line)
        )
    ).one_or_none()
    if conversation is None:
        return None, None
    if conversation.last_activity_at < now - CONVERSATION_TTL or not conversation.node:
        return None, conversation.language
    lang = conversation.language or flow.default_language
    return Position(node=conversation.node, lang=lang, channel="sms"), lang


def _e164(number: str) -> str:
    return to_e164(number) or number[:20]


def _without_conversation(
    flow: Flow | None, inbound: Inbound, journal: Path, recorder: Recorder | None
) -> list[str]:
    """The database is down (recorder None) or no flow is loaded: record an opt-out or opt-in
    (journaled when the database is down, applied later), obey an opt-out, and otherwise give
    the coordinator's number."""
    keyword, word = classify(inbound.body)
    lang = language_of(word, flow.default_language if flow is not None else "en")
    if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        opted_out = keyword is Keyword.OPT_OUT
        if recorder is not None:
            recorder.opt_out(inbound.phone, opted_out, word)
        else:
            # Straight to the journal: the database just failed, do not wait on it again.
            OPT_OUT_CHANGES.labels(change="stop" if opted_out else "start").inc()
            try:
                journal_opt_out(journal, inbound.phone, opted_out, word, utcnow())
            except OSError as error:
                log.error("an opt-out could not be journaled: %s", describe_error(error))
        reply = "sms_stopped" if opted_out else "sms_started"
        return messages_for(keyword_reply(flow, lang, reply))
    if journaled_opt_out(inbound.phone, journal) or _opted_out_in_database(recorder, inbound):
        return []
    return messages_for(keyword_reply(flow, lang, "sms_unavailable"))


def _opted_out_in_database(recorder: Recorder | None, inbound: Inbound) -> bool:
    if recorder is None:
        return False
    try:
        with recorder.database.session(read_only=True) as session:
            return is_opted_out(session, inbound.phone)
    except DATABASE_ERRORS:
        return False


async def text_status(request: Request) -> Response:
    """`POST /twilio/sms/status`: Twilio's delivery report for a text we sent (best-effort,
    may repeat, unordered)."""
    form = await verified_form(request)
    return await run_in_threadpool(_record_status, form)


WEBHOOKS = {"/twilio/sms": inbound_text, "/twilio/sms/status": text_status}
"""POST routes, added to the app as plain Starlette routes (see `service.main`)."""


def _record_status(form: FormData) -> Response:
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    status = str(form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or not status:
        raise HTTPException(400, "MessageSid and MessageStatus are required")
    if status not in MESSAGE_STATUS_RANK:
        raise HTTPException(400, "unknown MessageStatus")
    database = get_database()
    if status in FINAL_DELIVERY and _first_final_status(database, sid):
        TEXT_DELIVERY.labels(status=status).inc()
    Recorder(database).message_status(sid, status, error_code=str(form.get("ErrorCode") or ""))
    return Response(status_code=204)


def _first_final_status(database: Database, sid: str) -> bool:
    try:
        with database.session(read_only=True) as session:
            current = session.scalar(select(Message.status).where(Message.message_sid == sid))
    except DATABASE_ERRORS:
        return False
    return current not in FINAL_DELIVERY
