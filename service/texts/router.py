"""`POST /twilio/sms` (an inbound text -> TwiML `<Message>` replies) and `POST /twilio/sms/status`.

The conversation (where the texter is, their language, the flow version) is kept per (From, To)
in `conversations`; after 24 quiet hours the next text starts over at the main menu in the
language last used, with the opt-in notice. The text and its conversation step are one
transaction; the replies and status callbacks go to the spool before the answer does.

Opt-outs are obeyed by every reply: a number is opted out when the database says so or an
opt-out this host's spool holds says so (the newer wins, `service.optouts`). A STOP or START is
kept before it is confirmed: fsync'd in the spool's durable stream and written to the database
at once when it answers; a START is always recorded, so that it wins over a STOP acknowledged
before it, whichever reaches the database first. While another host's spool may hold opt-outs
the database lacks (the spool's fence), a reply waits up to FENCE_WAIT_SECONDS; then it is
queued in the outbox instead (sent once the fence is clear, the opt-out checked again) and the
texter's answer is empty for now.

While the database is down a texter still gets an answer: STOP and START are confirmed and
kept, HELP answered, CALL queued (the call-back is placed once the database answers), and any
other text gets a fixed reply with the coordinator's number; a number that opted out (as this
host's spool says) gets nothing. When other hosts share the database, whose opt-outs cannot be
known while it is away, replies other than STOP and START confirmations are queued as above.
Nothing is promised that cannot be kept: a call-back that neither the disk nor the database
takes is not promised. Bodies never reach the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime

from fastapi import HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.channels.form import TwilioForm, Webhook, outbox_id_of
from service.channels.sender import call_back_urls
from service.channels.signature import verified_form
from service.channels.sms import messages_for, segments_of, twiml_response
from service.channels.voice import call_back_twiml
from service.config import Settings
from service.db import DATABASE_ERRORS, Database, describe_error, get_database
from service.flowengine import Flow, Position
from service.flowengine.freetext import crisis_in
from service.flowengine.phrases import phrase
from service.flowengine.render import contact_card
from service.lines.book import LineBook, LineView
from service.messages.records import (
    MESSAGE_STATUS_RANK,
    MessageReceived,
    MessageSent,
    MessageStatusReported,
)
from service.metrics import FENCE_HELD, OPT_OUT_CHANGES, TEXTS_SENT, WEBHOOKS_UNHEARD
from service.models import Conversation, Direction, Message, OutboxKind, OutboxStatus, utcnow
from service.models.opt_outs import EVERY_NUMBER
from service.optouts.store import (
    OptOutChanged,
    opt_out_key,
    opted_out_now,
    pending_changes,
    stops_every_number,
)
from service.outbound import limits
from service.outbound.limits import destination_refusal
from service.outbound.outbox import OutboxQueued, enqueue
from service.serving import gave_up
from service.spool.codec import Record
from service.spool.spool import Kept, Spool
from service.texts.conversations import CONVERSATION_TTL, save_conversation
from service.texts.dialogue import TextTurn, call_back_answer, crisis_reply_without_menu, respond
from service.texts.keywords import Keyword, classify, fold, keyword_reply
from service.texts.opening import spread_out

log = logging.getLogger(__name__)

INTENTS = {
    Keyword.OPT_OUT: "opt_out",
    Keyword.OPT_IN: "opt_in",
    Keyword.HELP: "help",
    Keyword.CALL: "call_back",
}
FENCE_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Inbound:
    sid: str
    phone: str
    line: str
    body: str
    at: datetime


class _FenceHeld(Exception):
    """Another host's spool may hold opt-outs the database lacks: wait before replying."""


async def inbound_text(request: Request) -> Response:
    """`POST /twilio/sms`: the signature is checked here, the conversation (database work) runs
    in a worker thread."""
    form = await verified_form(request, "MessageSid")
    return await run_in_threadpool(_reply, request, form)


def _reply(request: Request, form: TwilioForm) -> Response:
    webhook = Webhook.parse(form)
    inbound = Inbound(
        sid=webhook.message_sid,
        phone=webhook.from_number,
        line=webhook.to_number,
        body=webhook.body,
        at=utcnow(),
    )
    if not inbound.phone or not inbound.line:
        raise HTTPException(400, "From and To are required")
    spool: Spool = request.app.state.spool
    book: LineBook = request.app.state.book
    settings: Settings = request.app.state.settings
    database = get_database()
    _, after_dial = call_back_urls(settings)
    # Without the database: the line a keyword names, else the number's (the default line's
    # for a number nobody assigned).
    line = _keyword_line(book, inbound.body) or book.line_for(inbound.line)
    flow = book.flow(line)
    if gave_up(request.scope, settings.twilio_timeout_seconds):
        return _too_late(spool, database, inbound, line)
    turn: TextTurn | None = None
    if flow is not None:
        deadline = time.monotonic() + settings.fence_wait_seconds
        while True:
            try:
                turn, line = _converse(
                    database, spool, book, inbound, after_dial, hold=time.monotonic() >= deadline
                )
            except _FenceHeld:
                time.sleep(FENCE_POLL_SECONDS)
                continue
            except _NoLine:
                log.error("no line's flow is loaded: answering a text without the menu")
            except DATABASE_ERRORS as error:
                log.warning("SMS conversation unavailable: %s", describe_error(error))
            break
    line_id = _id_of(line)
    records: list[Record] = []
    if turn is None:
        messages, intent = _without_conversation(
            flow, inbound, spool, database, after_dial, line_id
        )
        if inbound.sid:
            records.append(_received(inbound, intent, line_id))
    else:
        if turn.opted_out is not None:
            _record_opt_out(spool, database, inbound, turn.opted_out, turn.word)
        messages = messages_for(turn.reply)
    records += [
        MessageSent(
            None, inbound.phone, inbound.line, m, segments_of(m), "sent", inbound.at,
            line_id=line_id,
        )
        for m in messages
    ]  # fmt: skip
    spool.submit(records)
    return _answer(messages)


def _keyword_line(book: LineBook, body: str) -> LineView | None:
    """The line whose keyword the text is (a shared number or short code: `TRIALS`)."""
    word = fold(body)
    return book.by_keyword(word) if word else None


def _id_of(line: LineView | None) -> int | None:
    """A line's id as records keep it (none for a line read from a file, not the database)."""
    return line.id if line is not None and line.id > 0 else None


def _too_late(
    spool: Spool, database: Database, inbound: Inbound, line: LineView | None
) -> Response:
    """Twilio gave up on this webhook (it waited too long) and will deliver no reply: the text
    is recorded, a STOP or START kept (and obeyed), and nothing is answered or stepped."""
    WEBHOOKS_UNHEARD.labels(route="/twilio/sms").inc()
    log.warning("an SMS webhook came after Twilio gave up on it: recorded, not answered")
    said = classify(inbound.body)
    if said.keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        _record_opt_out(spool, database, inbound, said.keyword is Keyword.OPT_OUT, said.word)
    if inbound.sid:
        spool.submit([_received(inbound, "unanswered", _id_of(line))])
    return _answer([])


def _received(inbound: Inbound, intent: str | None, line_id: int | None) -> MessageReceived:
    segments = max(1, segments_of(inbound.body))
    return MessageReceived(
        inbound.sid,
        inbound.phone,
        inbound.line,
        inbound.body,
        segments,
        inbound.at,
        intent,
        line_id=line_id,
    )


def _answer(messages: list[str]) -> Response:
    if messages:
        TEXTS_SENT.labels(via="reply").inc(len(messages))
    return twiml_response(messages)


def _converse(
    database: Database,
    spool: Spool,
    book: LineBook,
    inbound: Inbound,
    after_dial: str | None,
    *,
    hold: bool,
) -> tuple[TextTurn, LineView]:
    """Step the conversation, store it and the inbound text (one transaction; a text Twilio
    sends again is recognised by its MessageSid and changes nothing). Raises `_FenceHeld`
    before anything is written while another host's spool may hold opt-outs the database
    lacks, unless `hold`: then the reply (other than a STOP or START confirmation) is queued in
    the outbox, for when the fence is clear, and the turn answers nothing now. Returns the
    turn and the line the conversation is on (`_on_line`)."""
    with database.session() as session:
        held = bool(spool.fence().holding(session))
        if held and not hold:
            raise _FenceHeld
        repeat = bool(inbound.sid) and _already_received(session, inbound.sid)
        pending = pending_changes(spool.pending_records())
        opted_out = opted_out_now(session, inbound.phone, inbound.line, pending)
        on = _on_line(session, book, inbound)
        flow, line, position, lang = on.flow, on.line, on.position, on.lang
        turn = respond(
            flow, inbound.body, position, opted_out=opted_out, lang=lang, repeat=repeat,
            now=inbound.at,
        )  # fmt: skip
        if held and turn.keyword is Keyword.OPT_IN and not opted_out:
            # Answered while another host's spool may hold this number's STOP: a START is
            # confirmed as a START (the menu is what it says to a number known never to have
            # stopped), so a texter who stopped on the other host reads that it worked.
            turn = respond(
                flow, inbound.body, position, opted_out=True, lang=lang, repeat=repeat,
                now=inbound.at,
            )  # fmt: skip
        if repeat and turn.opted_out is not None:
            # Twilio retried a STOP/START we already recorded: answer it again, record it once.
            turn = replace(turn, opted_out=None)
        if turn.reply is not None:
            save_conversation(
                session,
                inbound.phone,
                inbound.line,
                node=turn.position.node,
                language=turn.position.lang,
                flow_hash=flow.content_hash,
                now=inbound.at,
                line_id=_id_of(line),
                revision_id=on.revision_id if on.revision_id > 0 else None,
            )
        if inbound.sid and not repeat:
            received = _received(inbound, _intent(turn), _id_of(line))
            spool.write(session, [received], now=inbound.at)
        if turn.call_contact is not None:
            contact = flow.contacts[turn.call_contact]
            call_back = enqueue(
                session,
                OutboxKind.CALL,
                inbound.phone,
                call_back_twiml(contact, turn.position.lang, after_dial=after_dial),
                from_number=inbound.line,
                dedupe_key=f"call-back:{inbound.sid}" if inbound.sid else None,
                not_before=spread_out(turn.call_at, inbound.phone),
                now=inbound.at,
                language=turn.position.lang,
                line_id=_id_of(line),
                contact=turn.call_contact,
            )
            if call_back.status == OutboxStatus.REFUSED.value:
                turn = replace(turn, reply=call_refused(flow, turn.position.lang))
        if held and turn.keyword not in (Keyword.OPT_OUT, Keyword.OPT_IN) and turn.reply:
            FENCE_HELD.labels(what="reply").inc()
            for number, message in enumerate(messages_for(turn.reply)):
                enqueue(
                    session,
                    OutboxKind.SMS,
                    inbound.phone,
                    message,
                    from_number=inbound.line,
                    dedupe_key=f"reply:{inbound.sid}:{number}" if inbound.sid else None,
                    now=inbound.at,
                    language=turn.position.lang,
                    line_id=_id_of(line),
                )
            turn = replace(turn, reply=None)
    return turn, line



def call_refused(flow: Flow, lang: str) -> str:
    """What a texter reads when the outbound policy will not call their number back: the
    coordinator's number to call instead."""
    card = contact_card(flow.contacts[flow.operator], lang)
    return "\n".join((phrase(lang, "sms_call_refused"), card, phrase(lang, "sms_footer")))


def _intent(turn: TextTurn) -> str | None:
    """What the text asked for, for the staff's worklist."""
    if turn.flag:
        return turn.flag
    return INTENTS.get(turn.keyword) if turn.keyword is not None else None


def _record_opt_out(
    spool: Spool, database: Database, inbound: Inbound, opted_out: bool, word: str | None
) -> None:
    """An opt-out (or opt-in) is kept before it is confirmed: fsync'd in the spool (where every
    process on this host sees it at once), and written to the database now too when it answers
    (where every process sees it). If neither takes it, this process holds it in memory,
    obeys it, retries, and /readyz says so."""
    OPT_OUT_CHANGES.labels(change="stop" if opted_out else "start").inc()
    every = opted_out and stops_every_number(word)
    number = EVERY_NUMBER if every else inbound.line
    change = OptOutChanged(inbound.phone, opted_out, word or None, inbound.at, number)
    if spool.submit([change], durable=True) is not Kept.DISK:
        return  # already in the database, or held in memory (the database did not answer)
    try:
        with database.session() as session:
            spool.write(session, [change], now=inbound.at)
    except DATABASE_ERRORS as error:
        log.warning("an opt-out waits in the spool for the database: %s", describe_error(error))


def _already_received(session: Session, sid: str) -> bool:
    found = session.scalar(
        select(Message.id).where(
            Message.message_sid == sid, Message.direction == Direction.IN.value
        )
    )
    return found is not None


@dataclass(frozen=True)
class OnLine:
    """The line a text is for, the flow (and revision) it is answered on, and where the
    texter is in it."""

    line: LineView
    flow: Flow
    revision_id: int
    position: Position | None
    """None: a new conversation (or one that expired, or whose revision is gone)."""
    lang: str | None
    """The language the conversation last used."""


class _NoLine(Exception):
    """No line has a flow to answer with (nothing loaded at all)."""


def _on_line(session: Session, book: LineBook, inbound: Inbound) -> OnLine:
    """A text that is a line's keyword starts that line's menu; a conversation in progress
    goes on with its line and the revision it began on (a revision that cannot be served any
    more: the line's current main menu); anything else is for the number's line."""
    conversation = session.scalars(
        select(Conversation).where(
            Conversation.phone == opt_out_key(inbound.phone),
            Conversation.line == opt_out_key(inbound.line),
        )
    ).one_or_none()
    lang = conversation.language if conversation is not None else None
    keyword_line = _keyword_line(book, inbound.body)
    if keyword_line is not None:
        return _fresh(book, keyword_line, lang, inbound.phone)
    if conversation is None:
        return _fresh(book, book.line_for(inbound.line), lang, inbound.phone)
    live = conversation.last_activity_at >= inbound.at - CONVERSATION_TTL and conversation.node
    line = (book.by_id(conversation.line_id) if live else None) or book.line_for(inbound.line)
    wanted = conversation.revision_id if live else None
    if wanted is not None and not book.knows(wanted):
        book.load_revision(wanted)  # begun before a publish, in a process that never served it
    served = book.served(line, wanted, inbound.phone)
    if line is None or served is None:
        raise _NoLine
    flow, revision_id = served
    if not live or (wanted is not None and wanted != revision_id):
        return OnLine(line, flow, revision_id, None, lang)
    lang = conversation.language or flow.default_language
    position = Position(node=str(conversation.node), lang=lang, channel="sms")
    return OnLine(line, flow, revision_id, position, lang)


def _fresh(
    book: LineBook, line: LineView | None, lang: str | None, phone: str | None = None
) -> OnLine:
    """A new conversation on `line` (its draft, for one of its test numbers)."""
    served = book.served(line, None, phone)
    if line is None or served is None:
        raise _NoLine
    return OnLine(line, served[0], served[1], None, lang)


def _without_conversation(
    flow: Flow | None,
    inbound: Inbound,
    spool: Spool,
    database: Database,
    after_dial: str | None,
    line_id: int | None,
) -> tuple[list[str], str | None]:
    """The database is down or no flow is loaded: answer a crisis (988, 911, a person's
    number; recorded as urgent when the database is back), keep an opt-out or opt-in, answer
    HELP, queue a call-back, obey an opt-out, and otherwise give the coordinator's number.
    Returns the messages and the text's intent."""
    said = classify(inbound.body)
    keyword, word = said.keyword, said.word
    default = flow.default_language if flow is not None else "en"
    lang = said.lang or default
    intent = INTENTS.get(keyword) if keyword is not None else None
    crisis = crisis_in(inbound.body) if keyword in (None, Keyword.OPT_OUT) else None
    if crisis is not None:
        languages = flow.languages if flow is not None else ("en", "es")
        crisis_lang = crisis.lang if crisis.lang in languages else lang
        reply = crisis_reply_without_menu(flow, crisis_lang, crisis)
        if keyword is Keyword.OPT_OUT:
            _record_opt_out(spool, database, inbound, True, word)
            reply += "\n" + keyword_reply(flow, crisis_lang, "sms_stopped")
        return messages_for(reply), "crisis" if crisis.kind == "self-harm" else "emergency"
    if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        opted_out = keyword is Keyword.OPT_OUT
        _record_opt_out(spool, database, inbound, opted_out, word)
        reply = "sms_stopped" if opted_out else "sms_started"
        return messages_for(keyword_reply(flow, lang, reply)), intent
    if _opted_out(spool, database, inbound.phone, inbound.line):
        return [], intent
    if keyword is Keyword.CALL and flow is not None and inbound.sid:
        contact = flow.contacts[flow.operator]
        answer = call_back_answer(flow, flow.operator, lang, inbound.at)
        if not answer.placed:  # closed for weeks: its number, no call back
            return _unless_held(spool, inbound, messages_for(answer.reply), lang, line_id), intent
        call_back = OutboxQueued(
            OutboxKind.CALL,
            inbound.phone,
            call_back_twiml(contact, lang, after_dial=after_dial),
            inbound.line,
            f"call-back:{inbound.sid}",
            inbound.at,
            lang,
            line_id,
            spread_out(answer.at, inbound.phone),
            flow.operator,
        )
        # A refused one is kept as refused, for staff to see; one nothing keeps is not promised.
        if spool.submit([call_back], hold=False).promised:
            refused = destination_refusal(inbound.phone, limits.current()) is not None
            reply = call_refused(flow, lang) if refused else answer.reply
            return _unless_held(spool, inbound, messages_for(reply), lang, line_id), intent
    elif keyword is Keyword.HELP:
        help_reply = messages_for(keyword_reply(flow, lang, "sms_help"))
        return _unless_held(spool, inbound, help_reply, lang, line_id), intent
    unavailable = messages_for(keyword_reply(flow, lang, "sms_unavailable"))
    return _unless_held(spool, inbound, unavailable, lang, line_id), intent


def _unless_held(
    spool: Spool, inbound: Inbound, messages: list[str], lang: str, line_id: int | None
) -> list[str]:
    """The database is away: with other hosts sharing it (their opt-outs are out of sight
    until it is back), the reply is queued for the outbox instead of sent now."""
    if not spool.fence().others or not inbound.sid:
        return messages
    FENCE_HELD.labels(what="reply").inc()
    queued = [
        OutboxQueued(
            OutboxKind.SMS,
            inbound.phone,
            message,
            inbound.line,
            f"reply:{inbound.sid}:{n}",
            inbound.at,
            lang,
            line_id,
        )
        for n, message in enumerate(messages)
    ]
    spool.submit(queued)
    return []


def _opted_out(spool: Spool, database: Database, phone: str, number: str) -> bool:
    pending = pending_changes(spool.pending_records())
    try:
        with database.session(read_only=True) as session:
            return opted_out_now(session, phone, number, pending)
    except DATABASE_ERRORS:
        return opted_out_now(None, phone, number, pending)


async def text_status(request: Request) -> Response:
    """`POST /twilio/sms/status`: Twilio's delivery report for a text we sent (best-effort,
    may repeat, unordered). Spooled; a status Twilio may add one day is logged and ignored."""
    webhook = Webhook.parse(await verified_form(request, "MessageSid"))
    sid, status = webhook.message_sid, webhook.message_status
    if not sid or not status:
        raise HTTPException(400, "MessageSid and MessageStatus are required")
    if status not in MESSAGE_STATUS_RANK:
        log.warning("ignoring a message status callback with an unknown MessageStatus")
        return Response(status_code=204)
    error_code = webhook.error_code or None
    outbox_id = outbox_id_of(request)
    spool: Spool = request.app.state.spool
    spool.submit([MessageStatusReported(sid, status, error_code, utcnow(), outbox_id)])
    return Response(status_code=204)


WEBHOOKS = {"/twilio/sms": inbound_text, "/twilio/sms/status": text_status}
"""POST routes, added to the app as plain Starlette routes (see `service.main`)."""
