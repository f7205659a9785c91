"""Carrier keywords and the line's own words for a text: what kind of text came in.

Pure: no database, no Twilio. The SMS webhook and the simulator both classify with `classify`,
so the terminal behaves like the real line.

A keyword is the whole text, compared without case, spaces, punctuation or accents ("Stop.",
" stop ", "S T O P", "Español" and "ESPANOL" all match); a keyword inside a longer sentence is
not one (carriers match whole messages too). Opting out is the exception: a plain request in
words ("stop texting me", "unsubscribe me", "no more texts", "no me manden más mensajes") is
honoured like STOP, because a texter who asks to stop must never be texted again.

`INFO` is a HELP keyword here, not a menu word: carriers treat INFO as HELP on short codes, and a
texter who asks for information gets the program's help text (which says how to reach the menu).
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from service.flowengine.model import Flow
from service.flowengine.phrases import CARRIER_KEYWORDS, folded_words, phrase
from service.flowengine.render import fixed_reply


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

SPANISH_GREETINGS = frozenset({"hola", "espanol", "buenos", "buenas", "necesito"})
"""Words that, anywhere in the first text of a conversation ("Hola, necesito ayuda"), start it
in Spanish."""

OPT_OUT_WORDS_EN = re.compile(
    r"\b(stop|quit|cease) (texting|sending|messaging|the texts|these texts|texts|messages)\b"
    r"|\bunsubscribe\b"
    r"|\bno more (texts|text messages|messages)\b"
    r"|\b(dont|don t|do not) (text|message) me\b"
    r"|\bopt (me )?out\b"
    r"|\btake me off\b"
    r"|\bremove me from\b"
)
OPT_OUT_WORDS_ES = re.compile(
    r"\bno me (manden|envien|mande|envie|escriban) mas\b"
    r"|\bno (quiero )?(recibir )?mas mensajes\b"
    r"|\bdej(en|e) de (mandar|enviar|escribir)"
    r"|\b(darme|dar) de baja\b"
    r"|\bcancelar (la |mi )?suscripcion\b"
)
PLAIN_OPT_OUT_PREFIX = "WORDS:"
"""How a plain-words opt-out is recorded as its keyword (`WORDS:STOPTEXTINGME`, at most 32)."""
PLAIN_OPT_OUT_SPANISH = "WORDS-ES:"

DEFAULT_PROGRAM = "VCU Massey Second Opinion Line"


def fold(text: str) -> str:
    """`text` upper-cased without accents, spaces or punctuation: " Español! " -> "ESPANOL"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char for char in decomposed if char.isalnum() and not unicodedata.combining(char)
    ).upper()


def classify(text: str) -> tuple[Keyword | None, str]:
    """The keyword a text is (or None: a reply for the flow engine) and the word as folded.

    A plain request to stop in words is OPT_OUT too; its word is the folded text marked as
    words (`WORDS:…`, or `WORDS-ES:…` in Spanish), at most 32 characters."""
    word = fold(text)
    if not word or word.isdigit():
        return None, word
    for keyword, words in KEYWORDS.items():
        if word in words:
            return keyword, word
    words_only = folded_words(text)
    if OPT_OUT_WORDS_ES.search(words_only):
        return Keyword.OPT_OUT, (PLAIN_OPT_OUT_SPANISH + word)[:32]
    if OPT_OUT_WORDS_EN.search(words_only):
        return Keyword.OPT_OUT, (PLAIN_OPT_OUT_PREFIX + word)[:32]
    return None, word


def language_of(word: str, current: str) -> str:
    """The language to answer a keyword in: Spanish for a Spanish word, else the conversation's."""
    if word in SPANISH_WORDS or word.startswith(PLAIN_OPT_OUT_SPANISH):
        return "es"
    return current


def starts_in_spanish(text: str) -> bool:
    """Whether a first text greets in Spanish anywhere in it ("Hola, necesito ayuda")."""
    return not SPANISH_GREETINGS.isdisjoint(folded_words(text).split())


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
