"""One inbound text in, what the line answers and records out. Pure: the SMS webhook loads and
stores the state around it, the simulator keeps it in memory.

Order of precedence: words of a crisis (thoughts of self-harm, a medical emergency) come first,
whatever else the text is and even from a number that opted out: 988 and 911, then how to reach
a person. Then an opt-out (a keyword, or a plain request in words) always wins (confirmed
once: a second STOP from a number already opted out gets nothing); START/YES from a number that
opted out opts it back in, and from any other number is a way to say hello (the menu), recorded
as an opt-in all the same (it must win over a STOP the database may not have yet); a number
that opted out gets nothing else at all until then; then HELP, the Spanish switch, MENU and
CALL; everything else is a reply for the flow engine (which also answers thanks, questions about
the line, and words in the other language, in that language).

A text written in Spanish gets Spanish, whatever the conversation's language so far, and the
conversation goes on in it (a keyword's language, or the language the words are in).

Each answer may carry a `flag` for staff: the texter asked for a person, was not understood, or
wrote words of a crisis or an emergency (an urgent follow-up); the SMS webhook records it with
the message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from service.flowengine import Flow, Position, start, step
from service.flowengine.effects import (
    Connect,
    Effect,
    EmergencyWarning,
    NotUnderstood,
    PlaceCallBack,
)
from service.flowengine.engine import OPERATOR_KEY, is_open, language_to_answer, match_words
from service.flowengine.freetext import Crisis, about_the_line, courtesy, crisis_in
from service.flowengine.hours import next_opening, when_words
from service.flowengine.phrases import phrase
from service.flowengine.position import Key, Reply
from service.flowengine.position import Start as StartInput
from service.flowengine.render import contact_card, render_sms
from service.texts.keywords import (
    FALLBACK_COORDINATOR,
    Classified,
    Keyword,
    classify,
    coordinator_display,
    keyword_reply,
)

Flag = Literal["asked_for_person", "not_understood", "crisis", "emergency"]


@dataclass(frozen=True)
class TextTurn:
    position: Position
    """Where the conversation is after this text (unchanged for keywords like HELP)."""
    reply: str | None
    """The whole reply (the SMS channel packs it into messages), or None: send nothing."""
    keyword: Keyword | None = None
    word: str = ""
    """The keyword as texted, folded ("STOP", "PARAR")."""
    opted_out: bool | None = None
    """True: record an opt-out; False: record an opt-in; None: no change."""
    call_contact: str | None = None
    """A contact to connect the texter to by calling them back (CALL, or "call me" in a
    contact's menu)."""
    call_at: datetime | None = None
    """When that contact opens, if it is closed now: the call back waits until then."""
    new_conversation: bool = False
    flag: Flag | None = None
    """For staff to follow up: "asked_for_person" (0, "person", "someone call me"),
    "not_understood" (the text matched nothing), "crisis" (thoughts of suicide or self-harm)
    or "emergency" (a medical emergency): the last two are urgent."""


@dataclass(frozen=True)
class CallBack:
    """What CALL gets: the reply, and whether (and from when) a call back is placed."""

    reply: str
    placed: bool
    at: datetime | None = None
    """When the contact opens, if it is closed now (the call back waits until then)."""


def call_back_answer(flow: Flow, contact_id: str, lang: str, now: datetime | None) -> CallBack:
    """CALL to `contact_id`: open, a call in a moment; closed, a call once it opens, and the
    texter told when ("We will call you Monday after 8 a.m."); closed for longer than anyone
    looks ahead, its number instead of a promise."""
    contact = flow.contacts[contact_id]
    name = contact.name[lang]
    footer = phrase(lang, "sms_footer")
    if is_open(contact, now):
        return CallBack("\n".join((phrase(lang, "sms_calling", name=name), footer)), True)
    assert now is not None
    named = name[:1].upper() + name[1:]
    opening = next_opening(contact.hours, contact.closures, now)
    if opening is None:
        closed = phrase(lang, "closed", name=named)
        return CallBack("\n".join((closed, contact_card(contact, lang), footer)), False)
    when = when_words(opening, now, lang, after=True)
    calling = phrase(lang, "sms_calling_later", name=named, when=when)
    return CallBack("\n".join((calling, footer)), True, opening)


def call_back_contact(flow: Flow, position: Position) -> str:
    """Whom CALL connects to: the contact the texter is reading about, else the coordinator."""
    node = flow.nodes.get(position.node)
    if node is not None and node.contact is not None:
        contact = flow.contacts.get(node.contact)
        if contact is not None and contact.numbers:
            return contact.id
    return flow.operator


def respond(
    flow: Flow,
    body: str,
    position: Position | None,
    *,
    opted_out: bool = False,
    lang: str | None = None,
    repeat: bool = False,
    now: datetime | None = None,
) -> TextTurn:
    """Answer one text. `position` is None for a new (or expired) conversation, which then
    starts in the language the text is written in, else `lang` (the language it last used),
    and gets the opt-in notice. `repeat` is a retried webhook for a text already handled: the
    current menu again, without stepping. `opted_out`: the number is opted out now."""
    said = classify(body)
    keyword, word = said.keyword, said.word
    new = position is None
    if new:
        remembered = start(flow, "sms", lang)
        lang = said.lang or language_to_answer(flow, remembered, body)
    current = position or start(flow, "sms", lang)
    here = said.lang if said.lang in flow.languages else current.lang

    crisis = crisis_in(body) if keyword in (None, Keyword.OPT_OUT) else None
    if crisis is not None:
        return _crisis(flow, current, body, crisis, said, opted_out=opted_out, new=new)
    if keyword is Keyword.OPT_OUT and (not opted_out or repeat):
        # One final confirmation (again only for Twilio's retry of the same STOP).
        reply = keyword_reply(flow, here, "sms_stopped")
        return TextTurn(current, reply, keyword, word, opted_out=True, new_conversation=new)
    if keyword is Keyword.OPT_IN:
        at_start = replace(current, lang=here).at(flow.start)
        if not opted_out:
            # Nothing to undo that we know of: YES or START says hello (the menu). It is
            # recorded all the same, so that it wins over a STOP acknowledged before it that
            # the database does not have yet (one spooled on another host while it was away).
            turn = _engine(flow, at_start, StartInput(), keyword, word, new)
            return replace(turn, opted_out=False)
        reply = keyword_reply(flow, here, "sms_started")
        return TextTurn(at_start, reply, keyword, word, opted_out=False, new_conversation=new)
    if opted_out:
        return TextTurn(current, None, keyword, word)
    current = replace(current, lang=here)
    if keyword is Keyword.HELP:
        reply = keyword_reply(flow, here, "sms_help")
        return TextTurn(current, reply, keyword, word, new_conversation=new)
    if keyword is Keyword.CALL:
        contact_id = call_back_contact(flow, current)
        answer = call_back_answer(flow, contact_id, here, now)
        return TextTurn(
            current,
            answer.reply,
            keyword,
            word,
            call_contact=contact_id if answer.placed else None,
            call_at=answer.at,
            new_conversation=new,
        )
    if keyword is Keyword.SPANISH and "es" in flow.languages:
        spanish = replace(current, lang="es").at(flow.start)
        return _engine(flow, spanish, StartInput(), keyword, word, new)
    if new and keyword is None and (courtesy(body) or about_the_line(body)):
        return _engine(flow, current, Reply(body), keyword, word, new)
    if new or keyword is Keyword.MENU:
        turn = _engine(flow, current.at(flow.start), StartInput(), keyword, word, new)
        if match_words(flow, current, body) == OPERATOR_KEY:
            return replace(turn, flag="asked_for_person")
        return turn
    if repeat:
        return _engine(flow, current, Key("*"), keyword, word, new)
    return _engine(flow, current, Reply(body), keyword, word, new)


def _crisis(
    flow: Flow,
    current: Position,
    body: str,
    crisis: Crisis,
    said: Classified,
    *,
    opted_out: bool,
    new: bool,
) -> TextTurn:
    """988 and 911 first, then how to reach a person. A number that opted out gets this one
    answer (it cannot reply 0: it is told to call); a text that also asks to stop texts is
    honoured after it."""
    flag: Flag = "crisis" if crisis.kind == "self-harm" else "emergency"
    if opted_out:
        lang = crisis.lang if crisis.lang in flow.languages else current.lang
        reply = crisis_reply_without_menu(flow, lang, crisis)
        return TextTurn(replace(current, lang=lang), reply, said.keyword, said.word, flag=flag)
    turn = _engine(flow, current, Reply(body), said.keyword, said.word, new)
    if said.keyword is not Keyword.OPT_OUT or turn.reply is None:
        return turn
    stopped = keyword_reply(flow, turn.position.lang, "sms_stopped")
    return replace(turn, reply=f"{turn.reply}\n{stopped}", opted_out=True)


def crisis_reply_without_menu(flow: Flow | None, lang: str, crisis: Crisis) -> str:
    """The crisis answer to a texter who cannot go on in the menu (opted out, or the text line
    is down): 988, 911, and the number of a person here to call."""
    name = "sms_crisis_self_harm" if crisis.kind == "self-harm" else "sms_crisis_emergency"
    coordinator = coordinator_display(flow, FALLBACK_COORDINATOR)
    person = phrase(lang, "sms_crisis_person_opted_out", coordinator=coordinator)
    return f"{phrase(lang, name)}\n{person}"


def _engine(
    flow: Flow,
    position: Position,
    event: StartInput | Reply | Key,
    keyword: Keyword | None,
    word: str,
    new: bool,
) -> TextTurn:
    after, effects = step(flow, position, event)
    reply = render_sms(flow, after.lang, effects, opt_in_notice=new)
    call_contact = next(
        (effect.contact for effect in effects if isinstance(effect, PlaceCallBack)), None
    )
    return TextTurn(
        after,
        reply,
        keyword,
        word,
        call_contact=call_contact,
        new_conversation=new,
        flag=flag_of(effects),
    )


def flag_of(effects: tuple[Effect, ...]) -> Flag | None:
    """What staff should know about the text these effects answer."""
    for effect in effects:
        if isinstance(effect, EmergencyWarning):
            return "crisis" if effect.kind == "self-harm" else "emergency"
    if any(isinstance(effect, Connect) for effect in effects):
        return "asked_for_person"  # on SMS only 0 (or words for a person) connects
    if any(isinstance(effect, NotUnderstood) for effect in effects):
        return "not_understood"
    return None
