"""Carrier keywords and the line's own words for a text: what kind of text came in.

Pure: no database, no Twilio. The SMS webhook and the simulator both classify with `classify`,
so the terminal behaves like the real line.

A keyword is the whole text, compared without case, spaces, punctuation or accents ("Stop.",
" stop ", "S T O P", "Español" and "ESPANOL" all match); a keyword inside a longer sentence is
not one (carriers match whole messages too).

`INFO` is a HELP keyword here, not a menu word: carriers treat INFO as HELP on short codes, and a
texter who asks for information gets the program's help text (which says how to reach the menu).
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from service.flowengine.model import Flow
from service.flowengine.phrases import CARRIER_KEYWORDS, phrase


class Keyword(StrEnum):
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"
    SPANISH = "spanish"
    MENU = "menu"
    CALL = "call"


KEYWORDS: dict[Keyword, frozenset[str]] = {
    Keyword.OPT_OUT: CARRIER_KEYWORDS["opt-out"],
    Keyword.OPT_IN: CARRIER_KEYWORDS["opt-in"],
    Keyword.HELP: CARRIER_KEYWORDS["help"],
    Keyword.SPANISH: frozenset({"HOLA", "ESPANOL"}),
    Keyword.MENU: frozenset({"MENU", "HI", "HELLO", "INICIO"}),
    Keyword.CALL: frozenset({"CALL", "LLAMAME"}),
}

SPANISH_WORDS = frozenset({"PARAR", "ALTO", "AYUDA", "HOLA", "ESPANOL", "INICIO", "LLAMAME"})
"""Keywords that are Spanish: their answer is in Spanish whatever the conversation's language."""

DEFAULT_PROGRAM = "Second Opinion Line"


def fold(text: str) -> str:
    """`text` upper-cased without accents, spaces or punctuation: " Español! " -> "ESPANOL"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char for char in decomposed if char.isalnum() and not unicodedata.combining(char)
    ).upper()


def classify(text: str) -> tuple[Keyword | None, str]:
    """The keyword a text is (or None: a reply for the flow engine) and the word as folded."""
    word = fold(text)
    if not word or word.isdigit():
        return None, word
    for keyword, words in KEYWORDS.items():
        if word in words:
            return keyword, word
    return None, word


def language_of(word: str, current: str) -> str:
    """The language to answer a keyword in: Spanish for a Spanish word, else the conversation's."""
    return "es" if word in SPANISH_WORDS else current


def _program(flow: Flow | None, lang: str) -> str:
    if flow is None:
        return DEFAULT_PROGRAM
    return flow.title.get(lang) or flow.title.get(flow.default_language) or DEFAULT_PROGRAM


def coordinator_display(flow: Flow | None, fallback: str) -> str:
    """How the coordinator's number is written ("(804) 828-7999"), from the flow's operator."""
    if flow is None:
        return fallback
    operator = flow.contacts.get(flow.operator)
    if operator is None or not operator.display:
        return fallback
    return operator.display[0]


# The coordinator's number for when no flow could be loaded at all: the last resort, kept equal
# to the shipped flow's `coordinator` contact (a test checks).
FALLBACK_COORDINATOR = "(804) 828-7999"


def keyword_reply(flow: Flow | None, lang: str, name: str) -> str:
    """One of the fixed replies: sms_help, sms_stopped, sms_started, sms_unavailable."""
    return phrase(
        lang,
        name,
        program=_program(flow, lang),
        coordinator=coordinator_display(flow, FALLBACK_COORDINATOR),
    )
