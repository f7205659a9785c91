"""Effects into words: the one place that decides what a caller hears and a texter reads.

The voice channel wraps these lines in TwiML, the SMS channel sends the text, and the simulator
prints
both; so the same path gives the same words everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
from service.flowengine.model import Contact, Flow
from service.flowengine.phrases import PHRASES, phrase

TOLL_FREE_AREA_CODES = frozenset({"800", "833", "844", "855", "866", "877", "888"})


@dataclass(frozen=True)
class VoiceTurn:
    """What one webhook answer says, and how it ends."""

    lines: tuple[str, ...]
    ending: Literal["gather", "dial", "hangup"]
    dial_number: str | None = None
    contact: str | None = None
    texts: tuple[str, ...] = ()
    """Contacts whose numbers the caller asked to get by text."""


def spoken_digits(number: str) -> str:
    """`+18048287999` → "8 0 4, 8 2 8, 7 9 9 9": grouped so a caller can write it down."""
    digits = number.lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):
        area, exchange, line = digits[1:4], digits[4:7], digits[7:]
        groups = ["1" + area if area in TOLL_FREE_AREA_CODES else area, exchange, line]
    else:
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return ", ".join(" ".join(group) for group in groups)


def spoken_key(key: str, lang: str) -> str:
    return {"*": phrase(lang, "star"), "#": phrase(lang, "pound")}.get(key, key)


def numbers_read_aloud(contact: Contact, lang: str, lead: str, lines: range) -> str:
    joined = phrase(lang, "sms_card_or").join(spoken_digits(contact.numbers[i]) for i in lines)
    if lead == "number_is" and len(lines) > 1:
        lead = "numbers_are"
    return phrase(lang, lead, name=contact.name[lang], digits=joined)


def voice_lines_for_menu(menu: Menu, lang: str) -> list[str]:
    lines = [_voice_choice(choice, lang) for choice in menu.choices]
    if menu.announce_keys:
        lines.append(phrase(lang, "announce_keys"))
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
    text_later: bool = False,
) -> VoiceTurn:
    """What these effects say on the phone. `can_text=False`: the caller's phone cannot take
    the text asked for; `text_later`: it is queued but goes out only once the line can."""
    lines: list[str] = []
    texts: list[str] = []
    for effect in effects:
        match effect:
            case Say(text=text):
                lines.append(text)
            case ReadNumber(contact=contact_id, lead=lead):
                contact = flow.contacts[contact_id]
                if contact.numbers:
                    lines.append(
                        numbers_read_aloud(contact, lang, lead, range(len(contact.numbers)))
                    )
            case Menu() as menu:
                lines.extend(voice_lines_for_menu(menu, lang))
                return VoiceTurn(tuple(lines), "gather", texts=tuple(texts))
            case Connect(contact=contact_id, line=line):
                contact = flow.contacts[contact_id]
                lines.append(phrase(lang, "connecting", name=contact.name[lang]))
                lines.append(numbers_read_aloud(contact, lang, "number_is", range(line, line + 1)))
                return VoiceTurn(
                    tuple(lines), "dial", contact.numbers[line], contact_id, tuple(texts)
                )
            case TextContacts(contacts=contact_ids):
                said = "texting_later" if text_later else "texting" if can_text else "cannot_text"
                lines.append(phrase(lang, said))
                if can_text:
                    texts.extend(contact_ids)
            case HangUp():
                return VoiceTurn(tuple(lines), "hangup", texts=tuple(texts))
    return VoiceTurn(tuple(lines), "hangup", texts=tuple(texts))


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
    """The reply a texter reads for these effects (segmenting is the SMS channel's job)."""
    parts: list[str] = []
    footer = phrase(lang, "sms_footer")
    for effect in effects:
        match effect:
            case Say(text=text):
                parts.append(text.strip())
            case ReadNumber(contact=contact_id):
                parts.append(contact_card(flow.contacts[contact_id], lang))
            case Menu(node=node, choices=offered):
                in_order = sorted(offered, key=lambda choice: choice.language is not None)
                parts.append("\n".join(_sms_choice(choice) for choice in in_order))
                if node == flow.start:
                    footer = phrase(lang, "sms_footer_start")
            case Connect(contact=contact_id):
                parts.append(contact_card(flow.contacts[contact_id], lang))
                parts.append(phrase(lang, "sms_call_back"))
            case TextContacts(contacts=contact_ids):
                parts.append("\n".join(contact_card(flow.contacts[c], lang) for c in contact_ids))
            case HangUp():
                pass
    parts.append(footer)
    if opt_in_notice:
        parts.append(phrase(lang, "sms_opt_in"))
    return "\n".join(part for part in parts if part)


def _sms_choice(choice: Choice) -> str:
    label = choice.label[:1].upper() + choice.label[1:]
    return f"{choice.key} {label}"
