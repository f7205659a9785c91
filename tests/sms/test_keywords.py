"""Carrier keywords: classified without case, spaces, punctuation or accents; answered with the
words carriers require, in English and Spanish."""

from __future__ import annotations

import pytest

from service.flowengine import Flow
from service.flowengine.segments import count_segments
from service.texts.keywords import (
    FALLBACK_COORDINATOR,
    Keyword,
    classify,
    coordinator_display,
    keyword_reply,
    language_of,
    starts_in_spanish,
)

SEGMENTS = {"en": 2, "es": 3}

OPT_OUT_WORDS = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "PARAR",
    "ALTO",
]


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
@pytest.mark.parametrize("dress", ["{}", "{}\n", " {} ", "{}.", "{}!"])
def test_every_opt_out_word_in_any_case_and_spacing(word: str, dress: str) -> None:
    for written in (word, word.lower(), word.capitalize()):
        assert classify(dress.format(written))[0] is Keyword.OPT_OUT


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("Stop All", Keyword.OPT_OUT),
        ("opt out", Keyword.OPT_OUT),
        ("Opt-Out", Keyword.OPT_OUT),
        ("S T O P", Keyword.OPT_OUT),
        ("párar", Keyword.OPT_OUT),
        ("start", Keyword.OPT_IN),
        ("Yes", Keyword.OPT_IN),
        ("UNSTOP", Keyword.OPT_IN),
        ("help", Keyword.HELP),
        ("Info", Keyword.HELP),
        ("AYUDA", Keyword.HELP),
        ("hola", Keyword.SPANISH),
        ("¡Hola!", Keyword.SPANISH),
        ("ESPAÑOL", Keyword.SPANISH),
        ("español", Keyword.SPANISH),
        ("Espanol", Keyword.SPANISH),
        ("menu", Keyword.MENU),
        ("MENÚ", Keyword.MENU),
        ("hi", Keyword.MENU),
        ("call", Keyword.CALL),
        ("Llámame", Keyword.CALL),
    ],
)
def test_keywords(text: str, keyword: Keyword) -> None:
    assert classify(text)[0] is keyword


@pytest.mark.parametrize(
    "text", ["1", "0", "#", "*", "", "  ", "please stop calling my doctor", "back", "stopp", "yess"]
)
def test_everything_else_goes_to_the_engine(text: str) -> None:
    assert classify(text)[0] is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_help_names_the_program_the_coordinator_rates_and_stop(flow: Flow, lang: str) -> None:
    text = keyword_reply(flow, lang, "sms_help")
    assert flow.title[lang] in text
    assert "(804) 828-7999" in text
    assert "STOP" in text
    rates = {"en": "Msg&data rates may apply", "es": "Pueden aplicarse tarifas de mensajes y datos"}
    assert rates[lang] in text
    frequency = {"en": "Msg frequency varies", "es": "Frecuencia de mensajes variable"}
    assert frequency[lang] in text
    assert "VCU Massey" in text
    assert count_segments(text) <= SEGMENTS[lang]


@pytest.mark.parametrize(
    ("lang", "no_more", "restart"),
    [
        ("en", "No more messages will be sent", "Reply START"),
        ("es", "No le enviaremos más mensajes", "Responda START"),
    ],
)
def test_the_stop_confirmation_says_nothing_more_comes_and_how_to_come_back(
    flow: Flow, lang: str, no_more: str, restart: str
) -> None:
    text = keyword_reply(flow, lang, "sms_stopped")
    assert no_more in text
    assert restart in text
    assert "(804) 828-7999" in text  # how to get help
    assert count_segments(text) <= SEGMENTS[lang]


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("stop texting me", "en"),
        ("Please STOP sending these texts", "en"),
        ("unsubscribe me", "en"),
        ("no more texts", "en"),
        ("Do not text me", "en"),
        ("opt me out please", "en"),
        ("no me manden más mensajes", "es"),
        ("Por favor dejen de enviarme mensajes", "es"),
        ("quiero cancelar mi suscripción", "es"),
    ],
)
def test_a_plain_request_to_stop_is_an_opt_out(text: str, lang: str) -> None:
    keyword, word = classify(text)
    assert keyword is Keyword.OPT_OUT
    assert word.startswith("WORDS") and len(word) <= 32
    assert language_of(word, "en") == lang


@pytest.mark.parametrize(
    "text",
    ["stop the pain", "can you stop by my doctor", "no more chemo", "I want to stop treatment"],
)
def test_stop_about_something_else_is_not(text: str) -> None:
    assert classify(text)[0] is None


@pytest.mark.parametrize(
    ("text", "spanish"),
    [
        ("Hola necesito ayuda", True),
        ("¿Hablan español?", True),
        ("Buenas tardes", True),
        ("hello there", False),
        ("holanda", False),
    ],
)
def test_a_first_text_in_spanish_is_seen_anywhere_in_it(text: str, spanish: bool) -> None:
    assert starts_in_spanish(text) is spanish


def test_the_fallback_coordinator_is_the_shipped_flows(flow: Flow) -> None:
    assert coordinator_display(flow, "") == FALLBACK_COORDINATOR
    assert FALLBACK_COORDINATOR in keyword_reply(None, "en", "sms_unavailable")


def test_keywords_and_the_text_dialogue_are_pure() -> None:
    import subprocess
    import sys

    code = (
        "import sys, service.texts.keywords, service.texts.dialogue, service.simulator\n"
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'twilio', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
