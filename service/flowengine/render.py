"""Effects into words: the one place that decides what a caller hears and a texter reads.

The voice channel wraps these lines in TwiML, the SMS channel sends the text, and the simulator
prints both; so the same path gives the same words everywhere.

A number given as information is said in groups as people say it ("8 0 4, 8 2 8, 7 9 9 9";
toll free "1, 800, 4 2 2, 6 2 3 7") and then again ("Again, that's …"); each line of a contact
in a sentence of its own. The voice channel finds the numbers in a line by `SPOKEN_NUMBER`
(the shape `spoken_digits` writes) to read them slowly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from service.flowengine.effects import (
    Choice,
    Connect,
    Courtesy,
    Effect,
    EmergencyWarning,
    HangUp,
    Menu,
    MessageTaken,
    PlaceCallBack,
    ReadNumber,
    RequestCallBack,
    Say,
    TakeMessage,
    TextContacts,
)
from service.flowengine.engine import TEXT_KEY
from service.flowengine.model import Contact, Flow
from service.flowengine.phrases import PERSON_KEY, PHRASES, phrase

TOLL_FREE_AREA_CODES = frozenset({"800", "833", "844", "855", "866", "877", "888"})

_GROUP = r"\d+(?: \d)*"
SPOKEN_NUMBER = re.compile(rf"{_GROUP}(?:, {_GROUP}){{2,}}")
"""A phone number as `spoken_digits` writes it: three or more groups of digits, ", " between."""


@dataclass(frozen=True)
class VoiceTurn:
    """What one webhook answer says, and how it ends."""

    lines: tuple[str, ...]
    ending: Literal["gather", "dial", "hangup", "record"]
    dial_number: str | None = None
    contact: str | None = None
    """The contact dialed (`dial`), or whose message is being recorded (`record`)."""
    texts: tuple[str, ...] = ()
    """Contacts whose numbers the caller asked to get by text."""
    callback: str | None = None
    """The contact that did not answer, when the caller asked to be called back."""
    crisis: str | None = None
    """"self-harm" or "emergency" when the caller's words sounded like one (staff follow up)."""
    message: str | None = None
    """The contact the caller left a message for (the recording reaches the worklist)."""
    screen: bool = False
    """The contact dialed screens its calls (whoever answers presses 1 to take it)."""


def spoken_digits(number: str) -> str:
    """`+18048287999` → "8 0 4, 8 2 8, 7 9 9 9": grouped so a caller can write it down; a toll
    free number as people say it, `+18004226237` → "1, 800, 4 2 2, 6 2 3 7"."""
    digits = number.lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):
        area, exchange, line = digits[1:4], digits[4:7], digits[7:]
        if area in TOLL_FREE_AREA_CODES:
            return ", ".join(["1", area, " ".join(exchange), " ".join(line)])
        groups = [area, exchange, line]
    else:
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return ", ".join(" ".join(group) for group in groups)


def spoken_key(key: str, lang: str) -> str:
    return {"*": phrase(lang, "star"), "#": phrase(lang, "pound")}.get(key, key)


def numbers_read_aloud(contact: Contact, lang: str, lead: str, lines: range) -> list[str]:
    """The sentences that give a contact's numbers: each said, then said again; with two or
    more lines, "The first number is …", "The second number is …"."""
    sentences = []
    if lead != "number_is":
        sentences.append(phrase(lang, lead, name=contact.name[lang]))
    ordinals = PHRASES.get(lang, PHRASES["en"])["ordinals"].split()
    several = len(lines) > 1
    for index, line in enumerate(lines):
        digits = spoken_digits(contact.numbers[line])
        if several:
            nth = ordinals[min(index, len(ordinals) - 1)]
            sentences.append(phrase(lang, "number_nth", nth=nth, digits=digits))
        else:
            sentences.append(phrase(lang, "number_is", digits=digits))
        sentences.append(phrase(lang, "number_again", digits=digits))
    return sentences


def voice_lines_for_menu(menu: Menu, lang: str, *, offer_texts: bool = True) -> list[str]:
    """The menu's choices, then how to go back (at a leaf), then how to reach a person: every
    menu ends with it (on the first menu, within the line that names star and pound). Without
    `offer_texts` (the caller's phone cannot take a text) the text choice is not said."""
    choices = [c for c in menu.choices if offer_texts or c.key != TEXT_KEY]
    lines = [_voice_choice(choice, lang) for choice in choices]
    if menu.back:
        lines.append(phrase(lang, "press", label=phrase(lang, "back"), key=spoken_key("#", lang)))
    if menu.announce_keys:
        lines.append(phrase(lang, "announce_keys"))
    else:
        lines.append(phrase(lang, "press", label=phrase(lang, "operator"), key=PERSON_KEY))
    return lines


def _voice_choice(choice: Choice, lang: str) -> str:
    if choice.language is not None:
        return PHRASES[choice.language]["language_offer"].format(key=choice.key)
    return phrase(lang, "press", label=choice.label, key=spoken_key(choice.key, lang))


def render_voice(
    flow: Flow,
    lang: str,
    effects: tuple[Effect, ...],
    *,
    can_text: bool = True,
    not_now: bool = False,
    offer_texts: bool = True,
) -> VoiceTurn:
    """What these effects say on the phone. `can_text=False`: the caller's phone cannot take
    the text asked for (`not_now`: the line cannot send one right now, so nothing is promised);
    `offer_texts=False`: menus do not offer a text (the phone cannot take one)."""
    lines: list[str] = []
    texts: list[str] = []
    callback: str | None = None
    crisis: str | None = None
    message: str | None = None
    for effect in effects:
        match effect:
            case ReadNumber(contact=contact_id, lead=lead):
                contact = flow.contacts[contact_id]
                if contact.numbers:
                    lines.extend(
                        numbers_read_aloud(contact, lang, lead, range(len(contact.numbers)))
                    )
            case EmergencyWarning(text=text, kind=kind):
                lines.append(text)
                crisis = kind
            case Say(text=text):
                lines.append(text)
            case Menu() as menu:
                menu_lines = voice_lines_for_menu(menu, lang, offer_texts=offer_texts)
                if menu.announce_keys and menu.choices and menu.choices[0].language is not None:
                    # At the start of a call the other language is offered before the
                    # greeting: a caller who needs it hears it, in it, within seconds.
                    lines.insert(0, menu_lines.pop(0))
                lines.extend(menu_lines)
                return VoiceTurn(
                    tuple(lines), "gather", texts=tuple(texts), callback=callback, crisis=crisis
                )
            case Connect(contact=contact_id, line=line):
                contact = flow.contacts[contact_id]
                number = spoken_digits(contact.numbers[line])
                lines.append(phrase(lang, "connecting", name=contact.name[lang]))
                lines.append(phrase(lang, "number_is", digits=number))
                lines.append(phrase(lang, "number_again", digits=number))
                return VoiceTurn(
                    tuple(lines),
                    "dial",
                    contact.numbers[line],
                    contact_id,
                    tuple(texts),
                    crisis=crisis,
                    screen=contact.screen,
                )
            case TextContacts(contacts=contact_ids):
                if can_text:
                    lines.append(phrase(lang, "texting"))
                    texts.extend(contact_ids)
                else:
                    lines.append(phrase(lang, "cannot_text_now" if not_now else "cannot_text"))
                    lines.extend(_numbers_instead_of_a_text(flow, lang, contact_ids))
            case RequestCallBack(contact=contact_id):
                callback = contact_id
            case TakeMessage(contact=contact_id):
                return VoiceTurn(tuple(lines), "record", contact=contact_id, crisis=crisis)
            case MessageTaken(contact=contact_id):
                message = contact_id
            case PlaceCallBack() | HangUp():
                pass
    return VoiceTurn(
        tuple(lines),
        "hangup",
        texts=tuple(texts),
        callback=callback,
        crisis=crisis,
        message=message,
    )


def _numbers_instead_of_a_text(flow: Flow, lang: str, contact_ids: tuple[str, ...]) -> list[str]:
    """A caller whose phone cannot take a text hears the number instead (when one contact's
    number was asked for: a whole list is heard in the menus, one part at a time)."""
    dialable = [flow.contacts[c] for c in contact_ids if flow.contacts[c].numbers]
    if len(dialable) != 1:
        return []
    contact = dialable[0]
    return numbers_read_aloud(contact, lang, "number_is", range(len(contact.numbers)))


def contact_card(contact: Contact, lang: str) -> str:
    if not contact.display:
        return contact.short[lang] + "."
    return phrase(
        lang,
        "sms_card",
        name=contact.short[lang],
        display=phrase(lang, "sms_card_or").join(contact.display),
    )


def render_sms(
    flow: Flow, lang: str, effects: tuple[Effect, ...], *, opt_in_notice: bool = False
) -> str:
    """The reply a texter reads for these effects (segmenting is the SMS channel's job).

    The opt-in notice of a new conversation comes right after the first line, so it is in the
    first message whatever the length of the rest."""
    parts: list[str] = []
    footer = phrase(lang, "sms_footer")
    for effect in effects:
        match effect:
            case EmergencyWarning(text=text):
                parts.append(text.strip())
                footer = phrase(lang, "sms_crisis_person", coordinator=_operator_display(flow))
            case Courtesy(text=text, how_to_stop=how_to_stop):
                parts.append(text.strip())
                footer = phrase(lang, "sms_footer_anywhere")
                if how_to_stop and not opt_in_notice:
                    footer = "\n".join((phrase(lang, "sms_wrong_number"), footer))
            case Say(text=text):
                parts.append(text.strip())
            case ReadNumber(contact=contact_id):
                contact = flow.contacts[contact_id]
                if contact.numbers:  # a place without a number is in the node's own words
                    parts.append(contact_card(contact, lang))
            case Menu(node=node, choices=offered):
                in_order = sorted(offered, key=lambda choice: choice.language is not None)
                parts.append("\n".join(_sms_choice(choice) for choice in in_order))
                if node == flow.start:
                    footer = phrase(lang, "sms_footer_start")
            case Connect(contact=contact_id):
                parts.append(contact_card(flow.contacts[contact_id], lang))
                parts.append(phrase(lang, "sms_call_back"))
            case PlaceCallBack(contact=contact_id):
                parts.append(phrase(lang, "sms_calling", name=flow.contacts[contact_id].name[lang]))
            case TextContacts(contacts=contact_ids):
                parts.append("\n".join(contact_card(flow.contacts[c], lang) for c in contact_ids))
            case RequestCallBack() | TakeMessage() | MessageTaken() | HangUp():
                pass  # voice only
    parts = [part for part in parts if part]
    parts.append(footer)
    if opt_in_notice:
        # After the title (in the first message, whatever the length of the rest); after a
        # crisis answer, at its end: 988, 911 and a person come first.
        crisis = any(isinstance(effect, EmergencyWarning) for effect in effects)
        parts.insert(len(parts) if crisis else min(1, len(parts) - 1), phrase(lang, "sms_opt_in"))
    return "\n".join(parts)


def _sms_choice(choice: Choice) -> str:
    text = choice.sms_label or choice.label
    return f"{choice.key} {text[:1].upper()}{text[1:]}"


def program_name(flow: Flow, lang: str) -> str:
    """The program's name in a text: the flow's title ("VCU Massey Second Opinion Line")."""
    return flow.title.get(lang) or flow.title.get(flow.default_language) or flow.name


def _operator_display(flow: Flow) -> str:
    """How the number of the flow's person (the coordinator) is written in a text."""
    operator = flow.contacts.get(flow.operator)
    return operator.display[0] if operator is not None and operator.display else ""


def fixed_reply(flow: Flow, lang: str, name: str) -> str:
    """One of the text line's fixed replies (sms_help, sms_stopped, …) for this flow."""
    return phrase(lang, name, program=program_name(flow, lang), coordinator=_operator_display(flow))


def voice_text_body(flow: Flow, lang: str, contacts: tuple[str, ...]) -> str:
    """The text a caller gets when they press 8: where it comes from and how to stop (first,
    so it is in the first message), then the contacts' cards."""
    cards = [contact_card(flow.contacts[c], lang) for c in contacts if c in flow.contacts]
    intro = phrase(lang, "voice_text_intro", title=program_name(flow, lang))
    return "\n".join([intro, *cards])
