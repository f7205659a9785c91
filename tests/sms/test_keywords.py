"""Carrier keywords: classified without case, spaces, punctuation or accents; answered with the
words carriers require, in English and Spanish."""

from __future__ import annotations

import pytest

from service.flowengine import Flow
from service.flowengine.language import language_of
from service.flowengine.segments import count_segments
from service.phone import LAST_RESORT_NUMBER
from service.texts.keywords import (
    FALLBACK_COORDINATOR,
    Keyword,
    classify,
    coordinator_display,
    keyword_reply,
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
        assert classify(dress.format(written)).keyword is Keyword.OPT_OUT


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
        ("LLAMAME", Keyword.CALL),
        ("llámenme", Keyword.CALL),
        ("llamenme", Keyword.CALL),
        ("llamame por favor", Keyword.CALL),
        ("Call me please", Keyword.CALL),
        ("please stop", Keyword.OPT_OUT),
        ("STOP please", Keyword.OPT_OUT),
        ("stop it", Keyword.OPT_OUT),
        ("ya no quiero mensajes", Keyword.OPT_OUT),
        ("no me escriban más", Keyword.OPT_OUT),
    ],
)
def test_keywords(text: str, keyword: Keyword) -> None:
    assert classify(text).keyword is keyword


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("AYUDA", "es"),
        ("PARAR", "es"),
        ("LLAMAME", "es"),
        ("llámenme", "es"),
        ("llamame por favor", "es"),
        ("MENÚ", "es"),
        ("menu", None),
        ("STOP", None),
        ("HELP", None),
        ("call me please", "en"),
    ],
)
def test_a_keyword_knows_its_language(text: str, lang: str | None) -> None:
    assert classify(text).lang == lang


@pytest.mark.parametrize(
    "text", ["1", "0", "#", "*", "", "  ", "please stop calling my doctor", "back", "stopp", "yess"]
)
def test_everything_else_goes_to_the_engine(text: str) -> None:
    assert classify(text).keyword is None


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
    said = classify(text)
    assert said.keyword is Keyword.OPT_OUT and said.lang == lang
    assert said.word.startswith("WORDS-ES:" if lang == "es" else "WORDS:")
    assert len(said.word) <= 32


@pytest.mark.parametrize(
    "text",
    [
        "stop the pain",
        "can you stop by my doctor",
        "no more chemo",
        "I want to stop treatment",
        "the pain won't stop",
        "My doctor wants me to stop taking the pills before the biopsy, is that normal?",
        "no quiero parar el tratamiento",
    ],
)
def test_stop_about_something_else_is_not(text: str) -> None:
    assert classify(text).keyword is None


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
    assert (language_of(text) == "es") is spanish


def test_the_fallback_coordinator_is_the_shipped_flows(flow: Flow) -> None:
    assert coordinator_display(flow, "") == FALLBACK_COORDINATOR
    assert flow.contacts[flow.operator].numbers[0] == LAST_RESORT_NUMBER  # what the fallback dials
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
