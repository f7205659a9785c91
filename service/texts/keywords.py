"""Carrier keywords and the line's own words for a text: what kind of text came in.

Pure: no database, no Twilio. The SMS webhook and the simulator both classify with `classify`,
so the terminal behaves like the real line.

A keyword is the whole text, compared without case, spaces, punctuation or accents ("Stop.",
" stop ", "S T O P", "Español" and "ESPANOL" all match); a keyword inside a longer sentence is
not one (carriers match whole messages too). Plain words count too, from the lists under
`service/flowengine/words/`: a plain request to stop texts ("please stop", "stop texting me",
"no me escriban más") is honoured like STOP, because a texter who asks to stop must never be
texted again, and a plain request to be called ("call me please", "llámenme") is CALL.

`INFO` is a HELP keyword here, not a menu word: carriers treat INFO as HELP on short codes, and a
texter who asks for information gets the program's help text (which says how to reach the menu).

Each keyword says which language it is in (`Classified.lang`): the answer is in it, and the
conversation switches to it (AYUDA, LLAMAME, HOLA are Spanish; STOP and MENU are either, unless
written with a Spanish letter: "Menú").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from service.flowengine.freetext import call_request, plain_opt_out
from service.flowengine.model import Flow
from service.flowengine.phrases import CARRIER_KEYWORDS, phrase
from service.flowengine.render import fixed_reply
from service.phone import LAST_RESORT_NUMBER, national


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
    Keyword.CALL: frozenset({"CALL", "LLAMAME", "LLAMENME", "LLAMEME"}),
}

SPANISH_WORDS = frozenset(
    {"PARAR", "ALTO", "AYUDA", "HOLA", "ESPANOL", "INICIO", "LLAMAME", "LLAMENME", "LLAMEME"}
)
"""Keywords that are Spanish: their answer is in Spanish whatever the conversation's language."""

PLAIN_OPT_OUT_PREFIX = "WORDS:"
"""How a plain-words opt-out is recorded as its keyword (`WORDS:STOPTEXTINGME`, at most 32)."""
PLAIN_OPT_OUT_SPANISH = "WORDS-ES:"
WORD_MAX = 32
_SPANISH_LETTERS = re.compile(r"[áéíóúñ¿¡]", re.IGNORECASE)

DEFAULT_PROGRAM = "VCU Massey Second Opinion Line"


@dataclass(frozen=True)
class Classified:
    """What kind of text came in."""

    keyword: Keyword | None
    """None: a reply for the flow engine."""
    word: str
    """The keyword as texted, folded ("STOP", "PARAR"); plain words as `WORDS:…`."""
    lang: str | None = None
    """The language of the keyword or words (None: either, or a reply for the engine)."""


def fold(text: str) -> str:
    """`text` upper-cased without accents, spaces or punctuation: " Español! " -> "ESPANOL"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char for char in decomposed if char.isalnum() and not unicodedata.combining(char)
    ).upper()


def classify(text: str) -> Classified:
    """The keyword a text is, whole, or in plain words; else no keyword (the engine's)."""
    word = fold(text)
    if not word or word.isdigit():
        return Classified(None, word)
    for keyword, words in KEYWORDS.items():
        if word in words:
            lang = "es" if word in SPANISH_WORDS or _SPANISH_LETTERS.search(text) else None
            return Classified(keyword, word, lang)
    stop = plain_opt_out(text)
    if stop is not None:
        prefix = PLAIN_OPT_OUT_SPANISH if stop.lang == "es" else PLAIN_OPT_OUT_PREFIX
        return Classified(Keyword.OPT_OUT, (prefix + word)[:WORD_MAX], stop.lang)
    call = call_request(text)
    if call is not None:
        return Classified(Keyword.CALL, word[:WORD_MAX], call.lang)
    return Classified(None, word)


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


FALLBACK_COORDINATOR = national(LAST_RESORT_NUMBER)
"""The coordinator's number as a text writes it, for when no flow could be loaded at all."""


def keyword_reply(flow: Flow | None, lang: str, name: str) -> str:
    """One of the fixed replies: sms_help, sms_stopped, sms_started, sms_unavailable (the
    engine's renderer words them for a flow, so `phoneline flows check` measures them)."""
    if flow is not None and flow.operator in flow.contacts:
        return fixed_reply(flow, lang, name)
    return phrase(
        lang,
        name,
        program=_program(flow, lang),
        coordinator=coordinator_display(flow, FALLBACK_COORDINATOR),
    )
