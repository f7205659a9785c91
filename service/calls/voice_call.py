"""One voice webhook: what the caller did → one engine step → the TwiML they hear next.

Nothing here decides words (the engine and `render_voice` do) or writes TwiML (the voice
channel does). The call's position travels in the signed action URL, so a turn needs no
database; the only database work on the way to the caller's answer is asking whether a caller
who wants a text ("press 8") opted out. The text itself, and the call's record (a list of facts,
`turn_facts`), go to the spool before the answer does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import urlencode

import anyio.to_thread
import phonenumbers

from service.calls import position_url
from service.calls.facts import (
    CallEnded,
    CallEventHappened,
    CallFact,
    CallStarted,
    CallTransferred,
    DialFinished,
    duration_of,
)
from service.channels import voice
from service.channels.form import Webhook
from service.db import DATABASE_ERRORS, Database, describe_error
from service.flowengine import Flow, Position, start, step
from service.flowengine.effects import Effect
from service.flowengine.engine import hints
from service.flowengine.position import (
    DialEnded,
    DialStatus,
    Input,
    Key,
    Recorded,
    Silence,
    Speech,
    Start,
)
from service.flowengine.render import VoiceTurn, render_voice, voice_text_body
from service.metrics import DB_ERRORS
from service.models import CallEventKind, OutboxKind, utcnow
from service.models.calls import AFTER_HOURS
from service.optouts.store import opted_out_now, pending_changes
from service.outbound import limits
from service.outbound.limits import destination_refusal, refusal
from service.outbound.outbox import OutboxQueued
from service.phone import e164_of, parse_valid
from service.prompts import prompt_url
from service.spool.spool import Spool
from service.voicemail.records import VoicemailLeft

log = logging.getLogger(__name__)

VOICE_PATH = "/twilio/voice"
RECORDING_PATH = "/twilio/voice/recording"
SCREEN_PATH = "/twilio/voice/screen"
KEYS = frozenset("0123456789*#")
REPEAT = "*"
TEXTABLE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True)
class Turn:
    """One answered webhook: where the call was, what the caller did, where it is now."""

    before: Position | None
    """None on the call's first webhook (or when its URL carried no position)."""
    event: Input
    after: Position
    voice: VoiceTurn
    twiml: str
    texted: tuple[str, ...] = ()
    """Contacts whose numbers were queued to the caller by text in this turn."""


TextOutcome = Literal["queued", "not_now", "not_textable"]
"""A text the caller asked for: queued; not sent because the line cannot check or keep it right
now (the database does not answer, or neither it nor the disk takes the text); or not going out
(the number cannot take texts, opted out, or the outbound policy refuses it). Unless it is
queued, the caller hears the number instead and is promised nothing."""
TextQueue = Callable[[Flow, Webhook, Position, tuple[str, ...], int | None], Awaitable[TextOutcome]]
"""Queues a text of these contacts (of this flow) to the caller, for this line (its id)."""


def read_input(webhook: Webhook, before: Position | None) -> Input:
    """What the caller did, from Twilio's parameters. A Digits value that is not one key (junk
    from a hand-made request: Twilio sends one key) repeats the menu the caller is in."""
    if before is None:
        return Start()
    if webhook.dial_status:
        return DialEnded(DialStatus.read(webhook.dial_status) or DialStatus.FAILED)
    if webhook.recording_sid:
        return Recorded(duration_of(webhook.recording_duration) or 0)
    if webhook.digits:
        return Key(webhook.digits) if webhook.digits in KEYS else Key(REPEAT)
    if webhook.speech:
        return Speech(webhook.speech)
    return Silence()


async def take_turn(
    flow: Flow,
    webhook: Webhook,
    before: Position | None,
    base_url: str,
    now: datetime,
    queue_text: TextQueue,
    *,
    revision_id: int | None = None,
    restart: bool = False,
    line_id: int | None = None,
) -> Turn:
    """Step the engine once for this webhook and render the answer, on the flow of
    `revision_id` (which the next action URL names). `restart`: the call's revision cannot be
    served, so the caller starts over at this flow's main menu (in their language)."""
    lang = before.lang if before is not None else None
    if before is not None and (restart or before.node not in flow.nodes):
        before = None  # a stale or bogus position: start over at the main menu
    event = read_input(webhook, before)
    position = before or start(flow, "voice", lang)
    # "Press 8 for a text" is offered only to a phone that can take one: a landline, a withheld
    # number or junk hears the numbers in the menus instead.
    mobile = textable_number(webhook.from_number) is not None
    planned = plan(flow, position, event, now, offer_texts=mobile)
    after, turn = planned.after, planned.voice
    texted: tuple[str, ...] = ()
    if turn.texts:
        outcome = await queue_text(flow, webhook, after, turn.texts, line_id)
        if outcome != "not_textable":
            texted = turn.texts
        if outcome != "queued":
            turn = render_voice(
                flow,
                after.lang,
                planned.effects,
                can_text=False,
                not_now=outcome == "not_now",
                offer_texts=mobile,
            )
    twiml = voice.render_turn(
        turn,
        after.lang,
        action_url(base_url, after, revision_id),
        hints=planned.hints if turn.ending == "gather" else (),
        recording_callback=f"{base_url}{RECORDING_PATH}",
        plays=played(flow, after.lang, turn.lines, base_url),
        screen_url=(
            screen_url(base_url, webhook.call_sid, turn.contact, after.lang)
            if turn.ending == "dial" and turn.screen and turn.contact
            else None
        ),
        caller_id=(
            voice.caller_id_for(webhook.from_number, webhook.to_number)
            if turn.ending == "dial"
            else None
        ),
    )
    return Turn(before, event, after, turn, twiml, texted)


def played(
    flow: Flow, lang: str, lines: tuple[str, ...], base_url: str
) -> tuple[tuple[str, str], ...]:
    """(line, the URL of its recording) for each line an editor recorded, in `lang`."""
    if not flow.recordings:
        return ()
    return tuple(
        (line, prompt_url(base_url, audio))
        for line in lines
        if (audio := flow.played.get((lang, line))) is not None
    )


@dataclass(frozen=True)
class Plan:
    """One engine step and the words it gives."""

    after: Position
    effects: tuple[Effect, ...]
    voice: VoiceTurn
    hints: tuple[str, ...]
    """Words that help the speech recognizer at `after`."""


def plan(
    flow: Flow, position: Position, event: Input, now: datetime, *, offer_texts: bool = True
) -> Plan:
    """One engine step and the words it gives. The engine is pure, so a step is worked out
    once per flow, position and key and remembered; not when the time matters (office hours),
    nor for speech (any words at all)."""
    if flow.keeps_hours or isinstance(event, Speech):
        return _plan(flow, position, event, now, offer_texts)
    return _remembered_plan(flow, position, event, offer_texts)


def _plan(
    flow: Flow, position: Position, event: Input, now: datetime | None, offer_texts: bool
) -> Plan:
    after, effects = step(flow, position, event, now)
    said = render_voice(flow, after.lang, effects, offer_texts=offer_texts)
    return Plan(after, effects, said, hints(flow, after))


@lru_cache(maxsize=4096)
def _remembered_plan(flow: Flow, position: Position, event: Input, offer_texts: bool) -> Plan:
    return _plan(flow, position, event, None, offer_texts)


def screen_url(base_url: str, call_sid: str, contact: str, lang: str) -> str:
    """Where Twilio asks what whoever answers a screened transfer hears (`<Number url>`): it
    names the caller's call (the child leg's webhook carries its own CallSid), the contact and
    the caller's language."""
    query = urlencode({"call": call_sid, "contact": contact, "lang": lang})
    return f"{base_url}{SCREEN_PATH}?{query}"


def action_url(base_url: str, position: Position, revision_id: int | None = None) -> str:
    query = position_url.with_revision(position_url.encode(position), revision_id)
    return f"{base_url}{VOICE_PATH}?{query}"


# -- "press 8": a text of the numbers to the caller ------------------------------------------


@lru_cache(maxsize=4096)
def textable_number(raw: str) -> str | None:
    """The caller's number in E.164 when a text can reach it (a valid mobile, or a number that
    may be one, as every US number is); None for landlines, toll-free, withheld or junk.
    Remembered: every turn of a call asks (phonenumbers takes ~50 us to answer)."""
    parsed = parse_valid(raw)
    if parsed is None or phonenumbers.number_type(parsed) not in TEXTABLE_TYPES:
        return None
    return e164_of(parsed)


def text_body(flow: Flow, lang: str, contacts: tuple[str, ...]) -> str:
    """The text a caller gets: where it comes from, the contact cards, how to stop (written by
    the engine's renderer, so `phoneline flows check` measures the same text)."""
    return voice_text_body(flow, lang, contacts)


def text_dedupe_key(call_sid: str, node: str, contacts: tuple[str, ...]) -> str:
    """Same call, same menu, same contacts: one text, however often Twilio retries."""
    digest = hashlib.sha256(f"{call_sid}|{node}|{','.join(contacts)}".encode()).hexdigest()
    return f"voice-text:{digest[:40]}"


def spooled_text_queue(database: Callable[[], Database], spool: Callable[[], Spool]) -> TextQueue:
    """A `TextQueue` that spools the text for the outbox (the worker sends it), unless the
    caller's number cannot take texts or opted out (as the database says, or an opt-out on this
    host the database does not have yet). When the database does not answer, no text is queued
    or promised: a STOP it holds (sent before the outage, or through another host) is out of
    sight, and a promise to a number that said STOP is a promise the line must break. The caller
    hears the number instead. The work runs in a worker thread: a slow database holds up this
    caller only, never the event loop."""

    async def queue(
        flow: Flow,
        webhook: Webhook,
        position: Position,
        contacts: tuple[str, ...],
        line_id: int | None,
    ) -> TextOutcome:
        return await anyio.to_thread.run_sync(queue_now, flow, webhook, position, contacts, line_id)

    def queue_now(
        flow: Flow,
        webhook: Webhook,
        position: Position,
        contacts: tuple[str, ...],
        line_id: int | None,
    ) -> TextOutcome:
        to = textable_number(webhook.from_number)
        if to is None or not webhook.call_sid:
            return "not_textable"
        pending = pending_changes(spool().pending_records())
        if opted_out_now(None, to, webhook.to_number or None, pending):
            return "not_textable"
        refused = destination_refusal(to, limits.current()) is not None
        if not refused:
            try:
                with database().session(read_only=True) as session:
                    if opted_out_now(session, to, webhook.to_number or None, pending):
                        return "not_textable"
                    now = utcnow()
                    refused = (
                        refusal(session, OutboxKind.SMS, to, now, limits.current()) is not None
                    )
            except DATABASE_ERRORS as error:
                DB_ERRORS.labels(operation="voice_text").inc()
                log.warning("could not check a caller's opt-out: %s", describe_error(error))
                return "not_now"
        # Queued even when refused: the outbox stores it as refused (counted, shown to staff);
        # the caller hears the number instead of being promised a text.
        text = OutboxQueued(
            OutboxKind.SMS,
            to,
            text_body(flow, position.lang, contacts),
            webhook.to_number or None,
            text_dedupe_key(webhook.call_sid, position.node, contacts),
            utcnow(),
            position.lang,
            line_id,
        )
        kept = spool().submit([text], hold=False)
        if refused:
            return "not_textable"
        return "queued" if kept.promised else "not_now"

    return queue


# -- the call's record ------------------------------------------------------------------------


def turn_facts(
    flow: Flow,
    webhook: Webhook,
    turn: Turn,
    at: datetime,
    *,
    line_id: int | None = None,
    revision_id: int | None = None,
) -> list[CallFact | VoicemailLeft]:
    """What this turn leaves in the call's record (written later, by the call writer): on its
    first webhook, the line it reached and the revision it hears."""
    sid = webhook.call_sid
    if not sid:
        return []
    before, after, event, said = turn.before, turn.after, turn.event, turn.voice
    node = before.node if before is not None else after.node
    facts: list[CallFact | VoicemailLeft] = []
    if before is None:
        facts.append(
            CallStarted(
                sid,
                at,
                webhook.from_number,
                webhook.to_number,
                after.lang,
                flow.content_hash,
                line_id if line_id and line_id > 0 else None,
                revision_id if revision_id and revision_id > 0 else None,
            )
        )

    def happened(kind: CallEventKind, where: str, detail: str | None = None) -> None:
        facts.append(CallEventHappened(sid, at, kind, where, detail))

    match event:
        case Key(key=key):
            happened(CallEventKind.KEY, node, key)
        case Speech(text=text):
            confidence = f" ({webhook.confidence})" if webhook.confidence else ""
            happened(CallEventKind.SPEECH, node, text + confidence)
        case DialEnded(status=status) if before is not None and before.contact in flow.contacts:
            contact = flow.contacts[before.contact]
            number = contact.numbers[before.line] if before.line < len(contact.numbers) else None
            facts.append(DialFinished(sid, at, status, contact.id, number, node))
        case _:
            pass
    if before is not None and before.lang != after.lang:
        happened(CallEventKind.LANGUAGE, node, after.lang)
    new_menu = before is None or before.node != after.node or before.state != "menu"
    if said.ending == "gather" and after.state == "menu" and new_menu:
        happened(CallEventKind.MENU, after.node)
    if turn.texted:
        happened(CallEventKind.TEXT_QUEUED, after.node, ",".join(turn.texted))
    if said.callback:
        # "closed:coordinator": asked while it was closed (the worklist says "after hours").
        closed = before is not None and before.state == "closed"
        detail = f"{AFTER_HOURS}{said.callback}" if closed else said.callback
        happened(CallEventKind.CALLBACK_REQUEST, after.node, detail)
    if webhook.recording_sid and before is not None:
        # A message, kept whatever the engine made of its report (a URL from before a
        # publish, say): what a caller said after the beep is never dropped.
        recorded_for = before.contact if before is not None and before.state == "message" else None
        message_for = recorded_for or said.message
        happened(CallEventKind.VOICEMAIL, node, f"{message_for or ''} {webhook.recording_sid}")
        seconds = duration_of(webhook.recording_duration)
        facts.append(
            VoicemailLeft(
                webhook.recording_sid,
                sid,
                at,
                webhook.from_number if webhook.from_number.startswith("+") else None,
                line_id if line_id and line_id > 0 else None,
                message_for,
                after.lang,
                seconds,
            )
        )
    if said.crisis:
        # Words of a crisis or an emergency: the sweep files an urgent follow-up.
        happened(CallEventKind.CRISIS, node, said.crisis)
    if said.ending == "dial" and said.contact and said.dial_number:
        facts.append(CallTransferred(sid, at, said.contact, said.dial_number, after.node))
    if said.ending == "hangup":
        facts.append(CallEnded(sid, at, node=after.node, detail="goodbye" if said.lines else None))
    return facts
