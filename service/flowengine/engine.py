"""The flow engine: `step(flow, position, input) -> (position, effects)`.

Pure: no I/O, no clock (the caller passes `now`), no knowledge of Twilio, HTTP or databases.
Everything a caller can do that the flow file does not mention (reserved keys, wrong keys, silence,
dial outcomes)
is handled here, so no flow can forget it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from service.flowengine.effects import (
    Choice,
    Connect,
    Effect,
    HangUp,
    Menu,
    ReadNumber,
    Say,
    TextContacts,
)
from service.flowengine.model import Contact, Flow, Node, Option
from service.flowengine.phrases import PHRASES, SPOKEN_WORDS, STOPWORDS, phrase
from service.flowengine.position import (
    MAX_MISSES,
    DialEnded,
    Input,
    Key,
    Position,
    Reply,
    Silence,
    Speech,
    Start,
)

OPERATOR_KEY = "0"
REPEAT_KEY = "*"
BACK_KEY = "#"
LANGUAGE_KEY = "9"
RESERVED_KEYS = frozenset({OPERATOR_KEY, REPEAT_KEY, BACK_KEY})
RETRY_KEY = "1"
TEXT_KEY = "8"

MENU_WORDS = frozenset({"menu", "menú", "inicio", "start over", "main menu", "menu principal"})
BACK_WORDS = frozenset({"back", "atras", "atrás", "regresar", "volver"})

Step = tuple[Position, tuple[Effect, ...]]


def start(flow: Flow, channel: str = "voice", lang: str | None = None) -> Position:
    """The position of a new call or conversation."""
    language = lang if lang in flow.languages else flow.default_language
    return Position(node=flow.start, lang=language, channel="sms" if channel == "sms" else "voice")


def step(flow: Flow, position: Position, event: Input, now: datetime | None = None) -> Step:
    position = _sanitize(flow, position)
    match event:
        case Start():
            return _present(flow, position.at(flow.start), announce=position.channel == "voice")
        case DialEnded(status=status):
            if position.state == "dialing" and position.contact is not None:
                return _dial_ended(flow, position, status, now)
            return _present(flow, position.at(position.node))
        case Silence():
            return _missed(flow, position, phrase(position.lang, "no_input"), now)
        case Key(key=key):
            return _on_key(flow, position, key.strip(), now)
        case Speech(text=text):
            chosen = match_words(flow, position, text)
            if chosen is None:
                return _missed(flow, position, phrase(position.lang, "not_understood"), now)
            return _on_key(flow, position, chosen, now)
        case Reply(text=text):
            return _on_reply(flow, position, text, now)


# -- presenting ---------------------------------------------------------------------------------


def choices(flow: Flow, position: Position) -> tuple[Choice, ...]:
    """The choices offered at a position, in the order they are read out."""
    if position.state == "retry" and position.contact is not None:
        offered = [Choice(RETRY_KEY, phrase(position.lang, "retry"))]
        offered.append(Choice(TEXT_KEY, phrase(position.lang, "text_number")))
        if position.contact != flow.operator:
            offered.append(Choice(OPERATOR_KEY, phrase(position.lang, "operator")))
        offered.append(Choice(BACK_KEY, phrase(position.lang, "back_to_menu")))
        return tuple(offered)
    node = flow.nodes[position.node]
    offered = []
    other = _other_language(flow, position)
    if other is not None:
        offered.append(Choice(LANGUAGE_KEY, PHRASES[other]["language_name"], language=other))
    offered.extend(Choice(option.key, option.label[position.lang]) for option in node.options)
    return tuple(offered)


def _present(flow: Flow, position: Position, *, announce: bool = False) -> Step:
    node = flow.nodes[position.node]
    text = node.sms if position.channel == "sms" and node.sms else node.say
    effects: list[Effect] = [Say(text[position.lang])]
    if node.contact is not None:
        effects.append(ReadNumber(node.contact))
    effects.append(Menu(node.id, choices(flow, position), announce_keys=announce))
    return position, tuple(effects)


def _menu_again(flow: Flow, position: Position, *before: Effect) -> Step:
    return position, (*before, Menu(position.node, choices(flow, position)))


# -- input --------------------------------------------------------------------------------------


def _on_reply(flow: Flow, position: Position, text: str, now: datetime | None) -> Step:
    words = _normalize(text)
    if not words:
        return _menu_again(flow, position, Say(phrase(position.lang, "sms_not_understood")))
    if words in MENU_WORDS:
        return _present(flow, position.at(flow.start))
    if words in BACK_WORDS:
        return _on_key(flow, position, BACK_KEY, now)
    if len(words) == 1 and (words.isdigit() or words in RESERVED_KEYS):
        return _on_key(flow, position, words, now)
    key = match_words(flow, position, text)
    if key is None:
        return _menu_again(flow, position, Say(phrase(position.lang, "sms_not_understood")))
    return _on_key(flow, position, key, now)


def _on_key(flow: Flow, position: Position, key: str, now: datetime | None) -> Step:
    if position.state == "dialing":
        position = position.at(position.node)
    if key == OPERATOR_KEY:
        return _connect(flow, position, flow.operator, 0, now)
    if key == REPEAT_KEY:
        if position.state == "retry":
            return _menu_again(flow, replace(position, misses=0))
        return _present(flow, replace(position, misses=0))
    if key == BACK_KEY:
        if position.state == "retry":
            return _present(flow, position.at(position.node))
        return _present(flow, position.at(flow.parents.get(position.node, flow.start)))
    if position.state == "retry" and position.contact is not None:
        if key == RETRY_KEY:
            return _connect(flow, position, position.contact, 0, now)
        if key == TEXT_KEY:
            return _menu_again(flow, replace(position, misses=0), TextContacts((position.contact,)))
        return _wrong_key(flow, position, key, now)
    if key == LANGUAGE_KEY and (other := _other_language(flow, position)) is not None:
        switched = replace(position.at(flow.start), lang=other)
        return _present(flow, switched, announce=position.channel == "voice")
    option = _option(flow.nodes[position.node], key)
    if option is None:
        return _wrong_key(flow, position, key, now)
    return _choose(flow, position, option, now)


def _choose(flow: Flow, position: Position, option: Option, now: datetime | None) -> Step:
    if option.goto is not None:
        return _present(flow, position.at(option.goto))
    if option.connect is not None:
        return _connect(flow, position, option.connect, 0, now)
    if option.text:
        if position.channel == "sms":
            return position, (TextContacts(option.text),)
        return _menu_again(flow, replace(position, misses=0), TextContacts(option.text))
    if option.language is not None:
        switched = replace(position.at(flow.start), lang=option.language)
        return _present(flow, switched, announce=position.channel == "voice")
    return position, (Say(phrase(position.lang, "goodbye")), HangUp())


def _wrong_key(flow: Flow, position: Position, key: str, now: datetime | None) -> Step:
    spoken = {"*": phrase(position.lang, "star"), "#": phrase(position.lang, "pound")}.get(key, key)
    return _missed(flow, position, phrase(position.lang, "not_an_option", key=spoken), now)


def _missed(flow: Flow, position: Position, sorry: str, now: datetime | None) -> Step:
    """A silence, a wrong key or words not understood: say so, and after too many, get a person."""
    if position.channel == "sms":
        return _menu_again(flow, position, Say(sorry))
    missed = replace(position, misses=position.misses + 1)
    if missed.misses < MAX_MISSES:
        return _menu_again(flow, missed, Say(sorry))
    if position.state == "retry" and position.contact is not None:
        return missed, _farewell_with_number(flow, position, position.contact)
    operator = flow.contacts[flow.operator]
    if not is_open(operator, now):
        return missed, _farewell_with_number(flow, position, flow.operator)
    return _connect(
        flow, missed, flow.operator, 0, now, Say(phrase(position.lang, "too_many_misses"))
    )


def _farewell_with_number(flow: Flow, position: Position, contact_id: str) -> tuple[Effect, ...]:
    return (
        ReadNumber(contact_id, lead="call_them_at"),
        Say(phrase(position.lang, "goodbye")),
        HangUp(),
    )


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
    if not is_open(contact, now) and contact.hours is not None:
        closed = phrase(
            position.lang,
            "closed",
            name=_capitalized(contact.name[position.lang]),
            hours=contact.hours.description[position.lang],
        )
        menu_position = position.at(position.node)
        return _menu_again(flow, menu_position, *before, Say(closed), ReadNumber(contact_id))
    if position.channel == "sms":
        return position.at(position.node), (*before, Connect(contact_id, line))
    dialing = replace(position, state="dialing", contact=contact_id, line=line, misses=0)
    return dialing, (*before, Connect(contact_id, line))


def _dial_ended(flow: Flow, position: Position, status: str, now: datetime | None) -> Step:
    assert position.contact is not None
    if status in ("completed", "answered"):
        return position.at(position.node), (Say(phrase(position.lang, "goodbye")), HangUp())
    if status == "canceled":
        return position.at(position.node), (HangUp(),)
    what = {"busy": "lines_busy", "no-answer": "no_answer"}.get(status, "dial_failed")
    contact = flow.contacts[position.contact]
    if position.line + 1 < len(contact.numbers):
        trying = (Say(phrase(position.lang, what)), Say(phrase(position.lang, "trying_other_line")))
        return _connect(flow, position, position.contact, position.line + 1, now, *trying)
    retry = replace(position, state="retry", misses=0)
    return _menu_again(flow, retry, Say(phrase(position.lang, what)))


def is_open(contact: Contact, now: datetime | None) -> bool:
    """Whether a contact takes calls at `now` (always, when it has no hours or no time is given)."""
    if contact.hours is None or now is None:
        return True
    local = now.astimezone(ZoneInfo(contact.hours.timezone))
    return any(
        local.weekday() in span.days and span.opens <= local.time() < span.closes
        for span in contact.hours.spans
    )


# -- words --------------------------------------------------------------------------------------


def match_words(flow: Flow, position: Position, text: str) -> str | None:
    """The key that spoken (or texted) words choose at this position, if they clearly choose one."""
    tokens = _normalize(text).split()
    spoken = SPOKEN_WORDS.get(position.lang, {})
    for token in tokens:
        if token.isdigit() and len(token) == 1:
            return token
    for token in tokens:
        if token in spoken:
            return spoken[token]
    if position.state != "menu":
        return None
    wanted = {token for token in tokens if token not in STOPWORDS}
    scores: dict[str, int] = {}
    for option in flow.nodes[position.node].options:
        vocabulary = set(_normalize(option.label[position.lang]).split()) - STOPWORDS
        vocabulary |= {_normalize(word) for word in option.words.get(position.lang, ())}
        score = len(wanted & vocabulary)
        if score:
            scores[option.key] = score
    if not scores:
        return None
    best = max(scores.values())
    winners = [key for key, score in scores.items() if score == best]
    return winners[0] if len(winners) == 1 else None


def hints(flow: Flow, position: Position) -> tuple[str, ...]:
    """Words to help a speech recognizer at this position: the option labels, then the key words."""
    labels = [choice.label for choice in choices(flow, position) if choice.language is None]
    keywords = [word for word, key in SPOKEN_WORDS.get(position.lang, {}).items() if key == "0"]
    return (*labels, *keywords[:3])


def _normalize(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).strip().lower()
    return " ".join(re.findall(r"[\wáéíóúüñ*#]+", folded))


# -- helpers ------------------------------------------------------------------------------------


def _option(node: Node, key: str) -> Option | None:
    return next((option for option in node.options if option.key == key), None)


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
