"""The flow engine: `step(flow, position, input) -> (position, effects)`.

Pure: no I/O, no clock (the caller passes `now`), no knowledge of Twilio, HTTP or databases.
Everything a caller can do that the flow file does not mention (reserved keys, wrong keys, silence,
dial outcomes, words of a crisis or an emergency, words in the other language, thanks, questions
about the line) is handled here, so no flow can forget it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from service.flowengine.effects import (
    Choice,
    Connect,
    Courtesy,
    Effect,
    EmergencyWarning,
    HangUp,
    Menu,
    MessageTaken,
    NotUnderstood,
    PlaceCallBack,
    ReadNumber,
    RequestCallBack,
    Say,
    TakeMessage,
    TextContacts,
)
from service.flowengine.freetext import Crisis, about_the_line, courtesy, crisis_in
from service.flowengine.hours import closure_at, next_opening, open_at, when_words
from service.flowengine.language import MODEL_MIN_WORDS, language_of, words_in
from service.flowengine.model import Contact, Flow, Node, Option
from service.flowengine.phrases import (
    FILLER_WORDS,
    LONG_TEXT_WORDS,
    PERSON_KEY,
    PHRASES,
    SHORT_TEXT_WORDS,
    SPOKEN_WORDS,
    phrase,
)
from service.flowengine.position import (
    MAX_MISSES,
    DialEnded,
    DialStatus,
    Input,
    Key,
    Position,
    Recorded,
    Reply,
    Silence,
    Speech,
    Start,
)

OPERATOR_KEY = PERSON_KEY
REPEAT_KEY = "*"
BACK_KEY = "#"
LANGUAGE_KEY = "9"
RESERVED_KEYS = frozenset({OPERATOR_KEY, REPEAT_KEY, BACK_KEY})
ABOUT_A_CONTACT = ("retry", "closed")
"""States whose choices are about one contact: it did not answer, or it is closed."""
RETRY_KEY = "1"
CALL_BACK_KEY = "2"
MESSAGE_KEY = "3"
INSTEAD_KEYS = ("4", "5")
"""The keys of the contacts a closed one offers instead."""
TEXT_KEY = "8"

MENU_WORDS = frozenset({"menu", "menú", "inicio", "start over", "main menu", "menu principal"})
BACK_WORDS = frozenset({"back", "atras", "atrás", "regresar", "volver"})

EXPLICIT_WORD_WEIGHT = 2
"""A word the flow lists for an option (or a contact) counts twice a word of its label."""

Step = tuple[Position, tuple[Effect, ...]]


def start(flow: Flow, channel: str = "voice", lang: str | None = None) -> Position:
    """The position of a new call or conversation."""
    language = lang if lang in flow.languages else flow.default_language
    return Position(node=flow.start, lang=language, channel="sms" if channel == "sms" else "voice")


def step(flow: Flow, position: Position, event: Input, now: datetime | None = None) -> Step:
    position = _sanitize(flow, position)
    if position.state == "message" and position.contact is not None:
        # The recording's report, or (an empty recording, anything else) no message.
        if isinstance(event, Recorded):
            return _message_taken(flow, position, position.contact, now)
        return _no_message(flow, position, position.contact, now)
    match event:
        case Start():
            return _present(flow, position.at(flow.start), greet=True)
        case DialEnded(status=status):
            if position.state == "dialing" and position.contact is not None:
                return _dial_ended(flow, position, status, now)
            return _present(flow, position.at(position.node))
        case Silence():
            return _missed(flow, position, Say(phrase(position.lang, "no_input")), now)
        case Key(key=key):
            return _on_key(flow, position, key.strip(), now)
        case Speech(text=text):
            return _on_words(flow, position, text, now)
        case Reply(text=text):
            return _on_reply(flow, position, text, now)
        case Recorded():  # a report that belongs to no message: the menu again
            return _present(flow, position.at(position.node))


# -- presenting ---------------------------------------------------------------------------------


def choices(flow: Flow, position: Position) -> tuple[Choice, ...]:
    """The choices offered at a position, in the order they are read out (the keys that work
    everywhere, 0, star and pound, are the renderer's closing lines, not choices)."""
    lang = position.lang
    if position.state in ABOUT_A_CONTACT and position.contact is not None:
        several = len(flow.contacts[position.contact].numbers) > 1
        text = Choice(TEXT_KEY, phrase(lang, "text_numbers" if several else "text_number"))
        message = Choice(MESSAGE_KEY, phrase(lang, "leave_message"))
        back = Choice(BACK_KEY, phrase(lang, "back"))
        if position.state == "closed":
            call_back = Choice(CALL_BACK_KEY, phrase(lang, "call_back_when_open"))
            contact = flow.contacts[position.contact]
            instead = tuple(
                Choice(key, phrase(lang, "call_instead", name=flow.contacts[other].name[lang]))
                for key, other in zip(INSTEAD_KEYS, contact.instead, strict=False)
            )
            return (call_back, message, *instead, text, back)
        retry = Choice(RETRY_KEY, phrase(lang, "retry"))
        return (retry, Choice(CALL_BACK_KEY, phrase(lang, "call_back")), message, text, back)
    node = flow.nodes[position.node]
    offered = [
        Choice(
            option.key,
            option.label[lang],
            sms_label=option.sms_label[lang] if option.sms_label else None,
        )
        for option in _options(node, position.channel)
    ]
    other = _other_language(flow, position)
    if other is not None:
        # Offered at once to a caller in the default language ("Para español, oprima 9."),
        # after the options to one who already chose another.
        language = Choice(LANGUAGE_KEY, PHRASES[other]["language_name"], language=other)
        if lang == flow.default_language:
            offered.insert(0, language)
        else:
            offered.append(language)
    return tuple(offered)


def _menu(flow: Flow, position: Position, *, announce: bool = False) -> Menu:
    offered = choices(flow, position)
    if position.state in ABOUT_A_CONTACT:
        return Menu(position.node, offered)
    node = flow.nodes[position.node]
    leaf = node.id != flow.start and not any(
        option.goto for option in _options(node, position.channel)
    )
    return Menu(node.id, offered, announce_keys=announce, back=leaf)


def _present(flow: Flow, position: Position, *, greet: bool = False) -> Step:
    """A node's words, its contact's number and its menu. The first menu's greeting (and its
    emergency line) is said only when a call starts or changes language: star and pound
    there give the menu again, not the greeting."""
    node = flow.nodes[position.node]
    at_start = node.id == flow.start
    effects: list[Effect] = []
    if position.channel == "sms":
        effects.append(Say((node.sms or node.say)[position.lang]))
    elif greet or not at_start:
        effects.append(Say(node.say[position.lang]))
    if node.contact is not None:
        effects.append(ReadNumber(node.contact))
    if not at_start:
        position = replace(position, heard=True)
    voice_start = greet and position.channel == "voice"
    effects.append(_menu(flow, position, announce=voice_start))
    return position, tuple(effects)


def _menu_again(flow: Flow, position: Position, *before: Effect) -> Step:
    return position, (*before, _menu(flow, position))


# -- input --------------------------------------------------------------------------------------


def _on_reply(flow: Flow, position: Position, text: str, now: datetime | None) -> Step:
    words = _normalize(text)
    sorry = NotUnderstood(phrase(position.lang, "sms_not_understood"))
    crisis = crisis_in(text)
    if crisis is not None:
        return _crisis(flow, position, crisis)
    if words in MENU_WORDS:
        return _present(flow, position.at(flow.start))
    if words in BACK_WORDS:
        return _on_key(flow, position, BACK_KEY, now)
    if len(words) == 1 and (words.isdigit() or words in RESERVED_KEYS):
        return _on_key(flow, position, words, now)
    return _on_words(flow, position, text, now, sorry=sorry)


def _on_words(
    flow: Flow,
    position: Position,
    text: str,
    now: datetime | None,
    *,
    sorry: Say | None = None,
) -> Step:
    """Spoken (or texted) words. Words of a crisis get 988 and 911 first. Words in the other
    language switch to it: at the start of a call they choose it (as 9 does); elsewhere they
    are understood in it, or the same menu is given again in it. Then: a choice of this menu,
    else a topic of the first menu or a contact named from anywhere, else thanks or a question
    about the line, else "sorry"."""
    crisis = crisis_in(text)
    if crisis is not None:
        return _crisis(flow, position, crisis)
    lang = language_to_answer(flow, position, text)
    if lang != position.lang:
        switched = replace(position, lang=lang)
        starting = position.state == "menu" and position.node == flow.start
        if not (starting and position.channel == "voice"):
            understood = _understood(flow, switched, text, now)
            if understood is not None:
                return understood
        if position.state in ABOUT_A_CONTACT:
            return _menu_again(flow, replace(switched, misses=0))
        return _present(flow, switched.at(position.node), greet=starting)
    understood = _understood(flow, position, text, now)
    if understood is not None:
        return understood
    apology = sorry or NotUnderstood(phrase(position.lang, "not_understood"))
    return _missed(flow, position, apology, now)


def _understood(flow: Flow, position: Position, text: str, now: datetime | None) -> Step | None:
    """Courtesy (the whole text) and questions about the line first: "de acuerdo" is not the
    menu about doctors who disagree, "why are you texting me" not the one about why."""
    if courtesy(text) is not None:
        thanks = Courtesy(phrase(position.lang, _channel_phrase(position, "polite")))
        return _courtesy(flow, position, thanks)
    if about_the_line(text) is not None:
        return _about_the_line(flow, position)
    key = match_words(flow, position, text)
    if key is not None:
        return _on_key(flow, position, key, now)
    node = match_elsewhere(flow, position, text)
    if node is not None:
        return _present(flow, position.at(node))
    return None


def language_to_answer(flow: Flow, position: Position, text: str) -> str:
    """The language to answer words in: the one they are plainly written in, when the flow
    speaks it; but a short text ("thanks", "ok") does not take a texter who chose another
    language back to the default one (bilingual texters write them in either)."""
    lang = language_of(text)
    if lang is None or lang not in flow.languages:
        return position.lang
    short = words_in(text) < MODEL_MIN_WORDS
    if position.channel == "sms" and lang == flow.default_language and short:
        return position.lang
    return lang


def _channel_phrase(position: Position, name: str) -> str:
    return f"sms_{name}" if position.channel == "sms" else name


def _crisis(flow: Flow, position: Position, crisis: Crisis) -> Step:
    """988 and 911 first, in the language the words were in, then how to reach a person here;
    a caller gets the menu again (a text ends with the person's number and how to go on)."""
    lang = crisis.lang if crisis.lang in flow.languages else position.lang
    position = replace(position, lang=lang)
    name = "crisis_self_harm" if crisis.kind == "self-harm" else "crisis_emergency"
    warning = EmergencyWarning(phrase(lang, _channel_phrase(position, name)), kind=crisis.kind)
    if position.channel == "sms":
        return position, (warning,)
    return _menu_again(flow, position, warning)


def _courtesy(flow: Flow, position: Position, *said: Effect) -> Step:
    """A friendly answer that is not a miss: a caller gets the menu again, a texter how to go
    on."""
    if position.channel == "sms":
        return position, said
    return _menu_again(flow, position, *said)


def _about_the_line(flow: Flow, position: Position) -> Step:
    """Who the line is, whose number this is, and how (and when) to reach a person."""
    lang = position.lang
    program = flow.title.get(lang) or flow.name
    said: list[Effect] = [
        Courtesy(
            phrase(lang, _channel_phrase(position, "about_line"), program=program),
            how_to_stop=True,
        ),
        ReadNumber(flow.operator, lead="call_them_at"),
    ]
    hours = flow.contacts[flow.operator].hours
    if hours is not None:
        said.append(Say(phrase(lang, "hours_are", hours=hours.description[lang])))
    return _courtesy(flow, position, *said)


def _on_key(flow: Flow, position: Position, key: str, now: datetime | None) -> Step:
    if position.state == "dialing":
        position = position.at(position.node)
    if key == OPERATOR_KEY:
        return _connect(flow, position, flow.operator, 0, now)
    if key == REPEAT_KEY:
        if position.state in ABOUT_A_CONTACT:
            return _menu_again(flow, replace(position, misses=0))
        return _present(flow, replace(position, misses=0))
    if key == BACK_KEY:
        if position.state in ABOUT_A_CONTACT:
            return _present(flow, position.at(position.node))
        return _present(flow, position.at(flow.parents.get(position.node, flow.start)))
    if position.state in ABOUT_A_CONTACT and position.contact is not None and key == MESSAGE_KEY:
        return _take_message(flow, position, position.contact)
    if position.state == "closed" and position.contact is not None:
        others = dict(zip(INSTEAD_KEYS, flow.contacts[position.contact].instead, strict=False))
        if key in others:
            return _connect(flow, position.at(position.node), others[key], 0, now)
        if key == CALL_BACK_KEY:
            return _call_back_when_open(flow, position, position.contact, now)
        if key == TEXT_KEY:
            return _menu_again(flow, replace(position, misses=0), TextContacts((position.contact,)))
        return _wrong_key(flow, position, key, now)
    if position.state == "retry" and position.contact is not None:
        if key == RETRY_KEY:
            return _connect(flow, position, position.contact, 0, now)
        if key == TEXT_KEY:
            return _menu_again(flow, replace(position, misses=0), TextContacts((position.contact,)))
        if key == CALL_BACK_KEY:
            return _call_back_requested(flow, position, position.contact)
        return _wrong_key(flow, position, key, now)
    if key == LANGUAGE_KEY and (other := _other_language(flow, position)) is not None:
        return _present(flow, replace(position.at(flow.start), lang=other), greet=True)
    option = _option(flow.nodes[position.node], key, position.channel)
    if option is None:
        return _wrong_key(flow, position, key, now)
    return _choose(flow, position, option, now)


def _choose(flow: Flow, position: Position, option: Option, now: datetime | None) -> Step:
    if option.goto is not None:
        return _present(flow, position.at(option.goto))
    if option.connect is not None:
        if position.channel == "sms" and is_open(flow.contacts[option.connect], now):
            return position, (PlaceCallBack(option.connect),)
        return _connect(flow, position, option.connect, 0, now)
    if option.text:
        if position.channel == "sms":
            return position, (TextContacts(option.text),)
        return _menu_again(flow, replace(position, misses=0), TextContacts(option.text))
    if option.language is not None:
        return _present(flow, replace(position.at(flow.start), lang=option.language), greet=True)
    return position, (Say(phrase(position.lang, "goodbye")), HangUp())


def _wrong_key(flow: Flow, position: Position, key: str, now: datetime | None) -> Step:
    spoken = {"*": phrase(position.lang, "star"), "#": phrase(position.lang, "pound")}.get(key, key)
    return _missed(flow, position, Say(phrase(position.lang, "not_an_option", key=spoken)), now)


def _missed(flow: Flow, position: Position, sorry: Say, now: datetime | None) -> Step:
    """A silence, a wrong key or words not understood: say so and give the menu again. After
    too many: a caller who has heard nothing yet is put through to a person; one who has heard
    a part of the handout (or whose person did not answer) gets the number and a goodbye."""
    if position.channel == "sms":
        return _menu_again(flow, position, sorry)
    missed = replace(position, misses=position.misses + 1)
    if missed.misses < MAX_MISSES:
        return _menu_again(flow, missed, sorry)
    if position.state in ABOUT_A_CONTACT and position.contact is not None:
        return missed, (sorry, *_farewell_with_number(position.contact, position.lang))
    if position.heard or position.node != flow.start:
        return missed, (sorry, *_farewell_with_number(flow.operator, position.lang))
    if not is_open(flow.contacts[flow.operator], now):
        # Not put through to a closed office: told so, and its choices (a message among them).
        return _connect(flow, missed, flow.operator, 0, now, sorry)
    return _connect(
        flow, missed, flow.operator, 0, now, sorry, Say(phrase(position.lang, "too_many_misses"))
    )


def _farewell_with_number(contact_id: str, lang: str) -> tuple[Effect, ...]:
    return (
        ReadNumber(contact_id, lead="call_them_at"),
        Say(phrase(lang, "goodbye")),
        HangUp(),
    )


def _call_back_requested(flow: Flow, position: Position, contact_id: str) -> Step:
    """The caller asked for a call back after `contact_id` did not answer: staff will call;
    the number again, in case they would rather call themselves; goodbye."""
    contact = flow.contacts[contact_id]
    lang = position.lang
    return position.at(position.node), (
        RequestCallBack(contact_id),
        Say(phrase(lang, "call_back_asked")),
        Say(phrase(lang, "call_yourself", name=contact.name[lang])),
        ReadNumber(contact_id),
        Say(phrase(lang, "goodbye")),
        HangUp(),
    )


def _sentence(text: str) -> str:
    """`text` ending with a full stop (one: "8 a.m." ends a sentence already)."""
    return text if text.endswith(".") else text + "."


def _call_back_when_open(
    flow: Flow, position: Position, contact_id: str, now: datetime | None
) -> Step:
    """The caller asked for a call back while `contact_id` is closed: staff will call once it
    opens (a follow-up item); when that is, its number again, goodbye."""
    assert now is not None
    contact = flow.contacts[contact_id]
    lang = position.lang
    opening = next_opening(contact.hours, contact.closures, now)
    when = when_words(opening, now, lang, after=True) if opening else ""
    return position.at(position.node), (
        RequestCallBack(contact_id),
        Say(_sentence(phrase(lang, "call_back_when_open_asked", when=when))),
        Say(phrase(lang, "call_yourself", name=contact.name[lang])),
        ReadNumber(contact_id),
        Say(phrase(lang, "goodbye")),
        HangUp(),
    )


# -- a message ----------------------------------------------------------------------------------


def _take_message(flow: Flow, position: Position, contact_id: str) -> Step:
    """How to leave a message, then the recording (it ends with pound, or on its own)."""
    lang = position.lang
    recording = replace(position, state="message", contact=contact_id, misses=0)
    return recording, (Say(phrase(lang, "leave_message_how")), TakeMessage(contact_id))


def _message_taken(flow: Flow, position: Position, contact_id: str, now: datetime | None) -> Step:
    """The caller left a message: when to expect a call back (once the contact opens, when
    it is closed), its number in case they would rather call, goodbye."""
    contact = flow.contacts[contact_id]
    lang = position.lang
    opening = None
    if now is not None and not is_open(contact, now):
        opening = next_opening(contact.hours, contact.closures, now)
    when = when_words(opening, now, lang, after=True) if opening and now else ""
    answer = phrase(lang, "message_received", when=when or phrase(lang, "soon"))
    return position.at(position.node), (
        MessageTaken(contact_id),
        Say(_sentence(answer)),
        Say(phrase(lang, "call_yourself", name=contact.name[lang])),
        ReadNumber(contact_id),
        Say(phrase(lang, "goodbye")),
        HangUp(),
    )


def _no_message(flow: Flow, position: Position, contact_id: str, now: datetime | None) -> Step:
    """Nothing was recorded: say so, and the contact's choices again (closed ones while it
    is closed)."""
    open_now = is_open(flow.contacts[contact_id], now)
    again = replace(position, state="retry" if open_now else "closed", misses=0)
    return _menu_again(flow, again, Say(phrase(position.lang, "no_message")))


# -- connecting ---------------------------------------------------------------------------------


def _connect(
    flow: Flow,
    position: Position,
    contact_id: str,
    line: int,
    now: datetime | None,
    *before: Effect,
) -> Step:
    contact = flow.contacts[contact_id]
    if not is_open(contact, now):
        closed = _closed(contact, position.lang, now)
        assert now is not None
        if position.channel == "voice" and next_opening(contact.hours, contact.closures, now):
            # Its choices: a call back once it opens, its number by text, or back.
            waiting = replace(position, state="closed", contact=contact_id, line=0, misses=0)
            return _menu_again(flow, waiting, *before, *closed, ReadNumber(contact_id))
        menu_position = replace(position.at(position.node), heard=True)
        return _menu_again(flow, menu_position, *before, *closed, ReadNumber(contact_id))
    if position.channel == "sms":
        return position.at(position.node), (*before, Connect(contact_id, line))
    dialing = replace(position, state="dialing", contact=contact_id, line=line, misses=0)
    return dialing, (*before, Connect(contact_id, line))


def _dial_ended(flow: Flow, position: Position, status: DialStatus, now: datetime | None) -> Step:
    assert position.contact is not None
    if status in (DialStatus.COMPLETED, DialStatus.ANSWERED):
        return position.at(position.node), (Say(phrase(position.lang, "goodbye")), HangUp())
    if status == DialStatus.CANCELED:
        return position.at(position.node), (HangUp(),)
    what = {DialStatus.BUSY: "lines_busy", DialStatus.NO_ANSWER: "no_answer"}.get(
        status, "dial_failed"
    )
    contact = flow.contacts[position.contact]
    if position.line + 1 < len(contact.numbers):
        trying = (Say(phrase(position.lang, what)), Say(phrase(position.lang, "trying_other_line")))
        return _connect(flow, position, position.contact, position.line + 1, now, *trying)
    retry = replace(position, state="retry", misses=0, heard=True)
    return _menu_again(flow, retry, Say(phrase(position.lang, what)), ReadNumber(contact.id))


def is_open(contact: Contact, now: datetime | None) -> bool:
    """Whether a contact takes calls at `now` (always, when it has no hours and no closures, or
    no time is given)."""
    return now is None or open_at(contact.hours, contact.closures, now)


def _closed(contact: Contact, lang: str, now: datetime | None) -> tuple[Effect, ...]:
    """What a caller or texter hears of a closed contact: that it is closed, the closure's own
    message when it has one, and when it opens again (or, past two weeks, its hours)."""
    assert now is not None
    said = [Say(phrase(lang, "closed", name=_capitalized(contact.name[lang])))]
    closure = closure_at(contact.closures, now)
    if closure is not None and closure.message.get(lang):
        said.append(Say(closure.message[lang]))
    opening = next_opening(contact.hours, contact.closures, now)
    if opening is not None:
        said.append(
            Say(_sentence(phrase(lang, "opens_again", when=when_words(opening, now, lang))))
        )
    elif contact.hours is not None:
        said.append(Say(phrase(lang, "hours_are", hours=contact.hours.description[lang])))
    return tuple(said)


# -- words --------------------------------------------------------------------------------------


def match_words(flow: Flow, position: Position, text: str) -> str | None:
    """The key that spoken (or texted) words choose at this position, if they clearly choose one.

    A choice's own label, said whole, chooses it (after an unanswered transfer its phrases
    too: "call me back"); of several, the longest said wins, so "call back" asks for a call
    back and "back" goes back. Then, filler words never counting: asking for a person
    ("someone", "operator") chooses 0 in any sentence. A digit or a command word ("repeat",
    "two") chooses only in a short sentence, as does a label of one word. Otherwise each
    option scores its words (the flow's words for it count double, and the words of the
    contact it leads to): the best must beat the second, and a long sentence needs more than
    one word of its label to agree."""
    tokens = _normalize(text).split()
    meaningful = [token for token in tokens if token not in FILLER_WORDS]
    short = len(meaningful) <= SHORT_TEXT_WORDS
    labelled = _phrase_winner(_said_phrases(flow, position), set(tokens), short=short)
    if labelled is not None:
        return labelled
    spoken = SPOKEN_WORDS.get(position.lang, {})
    if any(spoken.get(token) == OPERATOR_KEY for token in tokens):
        return OPERATOR_KEY
    if short:
        keys = {token for token in tokens if len(token) == 1 and token.isdigit()}
        keys |= {spoken[token] for token in tokens if token in spoken}
        if len(keys) == 1:
            return keys.pop()
        if keys:
            return None
    if position.state != "menu":
        return None
    node = flow.nodes[position.node]
    scored = {
        option.key: _vocabulary(flow, option, position.lang)
        for option in _options(node, position.channel)
    }
    return _clear_winner(scored, meaningful)


def match_elsewhere(flow: Flow, position: Position, text: str) -> str | None:
    """The node that words lead to when no choice of this menu matches them: a topic of the
    first menu ("what do I need to bring") or a contact named from anywhere ("library")."""
    if position.state != "menu":
        return None
    meaningful = [token for token in _normalize(text).split() if token not in FILLER_WORDS]
    targets: dict[str, dict[str, int]] = {}
    for option in flow.nodes[flow.start].options:
        if option.goto is not None and option.goto != position.node:
            targets[option.goto] = _vocabulary(flow, option, position.lang)
    for contact_id, node_id in flow.home_of.items():
        if node_id != position.node:
            words = _contact_words(flow.contacts[contact_id], position.lang)
            known = targets.setdefault(node_id, {})
            for word, weight in words.items():
                known[word] = max(known.get(word, 0), weight)
    return _clear_winner(targets, meaningful)


def _clear_winner(vocabularies: dict[str, dict[str, int]], meaningful: list[str]) -> str | None:
    wanted = set(meaningful)
    scores = {
        choice: sum(weight for word, weight in words.items() if word in wanted)
        for choice, words in vocabularies.items()
    }
    ranked = sorted((score for score in scores.values() if score), reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[0] == ranked[1]):
        return None
    if len(meaningful) > LONG_TEXT_WORDS and ranked[0] < EXPLICIT_WORD_WEIGHT:
        return None
    return next(choice for choice, score in scores.items() if score == ranked[0])


RETRY_PHRASES = {
    RETRY_KEY: "retry_words",
    CALL_BACK_KEY: "call_back_words",
    MESSAGE_KEY: "message_words",
    TEXT_KEY: "text_words",
}
"""The phrases, besides its label, a caller may say for a choice after an unanswered transfer."""


def _said_phrases(flow: Flow, position: Position) -> dict[str, list[frozenset[str]]]:
    """Each choice offered here: the words of its labels, and after an unanswered transfer of
    its phrases; each phrase's content words (all its words when it has none: "por qué una
    segunda opinión"). Worked out once per menu (they are the same on every turn)."""
    menu = Position(
        position.node,
        position.lang,
        position.channel,
        state=position.state,
        contact=position.contact if position.state in ABOUT_A_CONTACT else None,
    )
    return _phrases_of_menu(flow, menu)


@lru_cache(maxsize=1024)
def _phrases_of_menu(flow: Flow, position: Position) -> dict[str, list[frozenset[str]]]:
    phrases: dict[str, list[frozenset[str]]] = {}
    others: dict[str, str] = {}
    if position.state == "closed" and position.contact is not None:
        others = dict(zip(INSTEAD_KEYS, flow.contacts[position.contact].instead, strict=False))
    for choice in choices(flow, position):
        listed = RETRY_PHRASES.get(choice.key) if position.state in ABOUT_A_CONTACT else None
        said = [choice.label, *([choice.sms_label] if choice.sms_label else [])]
        said += phrase(position.lang, listed).split(", ") if listed else []
        if choice.key in others:  # another contact, by its name or its words
            other = flow.contacts[others[choice.key]]
            said += [other.name[position.lang], *other.words.get(position.lang, ())]
        phrases[choice.key] = [
            frozenset(_content_words([one]) or _normalize(one).split()) for one in said
        ]
    return phrases


def _phrase_winner(
    phrases: dict[str, list[frozenset[str]]], said: set[str], *, short: bool
) -> str | None:
    """The choice with a phrase all of whose words were said, and more of them than any other
    choice's such phrase; None when none, or a tie. A phrase of one word counts only in a
    short sentence ("back" is not "go back" in "my cancer came back")."""
    scores = {
        key: max(
            (len(words) for words in options if words <= said and (short or len(words) > 1)),
            default=0,
        )
        for key, options in phrases.items()
    }
    ranked = sorted(scores.values(), reverse=True)
    if not ranked or not ranked[0] or (len(ranked) > 1 and ranked[0] == ranked[1]):
        return None
    return next(key for key, score in scores.items() if score == ranked[0])


def _vocabulary(flow: Flow, option: Option, lang: str) -> dict[str, int]:
    """An option's words and their weights: its labels', its own listed words (double), and
    those of the contact it presents or connects to."""
    words = dict.fromkeys(_content_words([option.label.get(lang, "")]), 1)
    if option.sms_label:
        words.update(dict.fromkeys(_content_words([option.sms_label.get(lang, "")]), 1))
    for word in _content_words(option.words.get(lang, ())):
        words[word] = EXPLICIT_WORD_WEIGHT
    target = flow.nodes[option.goto].contact if option.goto in flow.nodes else option.connect
    if target is not None and target in flow.contacts:
        for word, weight in _contact_words(flow.contacts[target], lang).items():
            words[word] = max(words.get(word, 0), weight)
    return words


def _contact_words(contact: Contact, lang: str) -> dict[str, int]:
    return dict.fromkeys(_content_words(contact.words.get(lang, ())), EXPLICIT_WORD_WEIGHT)


def _content_words(texts: Iterable[str]) -> list[str]:
    return [word for text in texts for word in _normalize(text).split() if word not in FILLER_WORDS]


def hints(flow: Flow, position: Position) -> tuple[str, ...]:
    """Words to help a speech recognizer at this position: the option labels, the key words,
    after an unanswered transfer the choices' phrases ("call me back"), and on the first menu
    the common answers of a caller who speaks the other language ("hola", "necesito ayuda"),
    which choose it."""
    offered = choices(flow, position)
    labels = [choice.label for choice in offered if choice.language is None]
    keywords = [
        word for word, key in SPOKEN_WORDS.get(position.lang, {}).items() if key == OPERATOR_KEY
    ]
    extra: list[str] = []
    if position.state in ABOUT_A_CONTACT:
        for choice in offered:
            if choice.key in RETRY_PHRASES:
                extra += phrase(position.lang, RETRY_PHRASES[choice.key]).split(", ")
    for choice in offered:
        if choice.language is not None:
            extra += PHRASES[choice.language]["other_language_answers"].split(", ")
    return (*labels, *keywords[:3], *extra)


def _normalize(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).strip().lower()
    return " ".join(re.findall(r"[\wáéíóúüñ*#]+", folded))


# -- helpers ------------------------------------------------------------------------------------


def _options(node: Node, channel: str) -> tuple[Option, ...]:
    return tuple(option for option in node.options if channel in option.channels)


def _option(node: Node, key: str, channel: str) -> Option | None:
    return next((option for option in _options(node, channel) if option.key == key), None)


def _other_language(flow: Flow, position: Position) -> str | None:
    if position.node != flow.start or position.state != "menu" or len(flow.languages) < 2:
        return None
    index = flow.languages.index(position.lang)
    return flow.languages[(index + 1) % len(flow.languages)]


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sanitize(flow: Flow, position: Position) -> Position:
    """Any position (perhaps from a stale or forged URL) made into one this flow can run."""
    if position.node not in flow.nodes:
        position = replace(position, node=flow.start, state="menu", contact=None)
    if position.lang not in flow.languages:
        position = replace(position, lang=flow.default_language)
    if position.state != "menu":
        contact = flow.contacts.get(position.contact or "")
        if contact is None:
            position = position.at(position.node)
        elif not 0 <= position.line < len(contact.numbers):
            position = replace(position, line=0)
    if not 0 <= position.misses <= MAX_MISSES:
        position = replace(position, misses=0)
    return position
