"""Held-out probes (tests/sms/probes.yaml: written apart from the phrase lists, as patients
really write) through the signed webhooks: each text as a first text and in the middle of a
conversation, each spoken probe at the first menu and deeper; the KIND of answer is checked,
and nothing gets "didn't understand". On SQLite: what is checked is words, not storage."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from service.db import Database, set_database
from service.main import create_app
from tests.sms.conftest import Texter, make_settings
from tests.support import AppClient, app_client
from tests.voice.caller import Caller

PROBES: dict[str, Any] = YAML(typ="safe").load(
    (Path(__file__).with_name("probes.yaml")).read_text(encoding="utf-8")
)
COORDINATOR = "(804) 828-7999"
SORRY = ("didn't understand", "no entendimos", "didn't understand", "no le entendí")
SELF_HARM_FIRST = {"en": "If you are thinking about suicide", "es": "¿Piensa en el suicidio"}
EMERGENCY_FIRST = {"en": "If this is an emergency, call 911", "es": "Si es una emergencia"}
STOPPED = {"en": "No more messages will be sent", "es": "No le enviaremos más mensajes"}
WELCOME = {"en": "You're welcome.", "es": "De nada."}
WHO = {"en": "This is VCU Massey Second Opinion Line", "es": "Esta es la Línea de Segunda Opinión"}
CONTEXTS = ("first text", "mid-conversation")
_numbers = count(1)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[AppClient]:
    folder = tmp_path_factory.mktemp("probes")
    shutil.copyfile(sqlite_template, folder / "probes.db")
    database = Database(f"sqlite:///{folder / 'probes.db'}")
    previous = set_database(database)
    url = database.url.render_as_string(hide_password=False)
    app = create_app(make_settings(url, folder / "var"))
    app.state.spool.start()  # now, not in the first test (whose check of threads it would fail)
    try:
        with app_client(app) as client:
            yield client
    finally:
        set_database(previous)
        database.dispose()


def answer(
    client: AppClient, body: str, context: str, *, understood: bool = True
) -> tuple[Texter, str]:
    """A new texter's answer to `body`: as their first text, or after "hi" and "1"."""
    texter = Texter(client, phone=f"+1804555{next(_numbers):04d}")
    if context == "mid-conversation":
        texter.send("hi")
        texter.send("1")
    reply = texter.reply(body)
    assert reply, f"no answer to {body!r}"
    if understood:
        assert not any(sorry in reply for sorry in SORRY), (body, reply)
    return texter, reply


def cases(kind: str, *, languages: bool = True) -> list[Any]:
    found = []
    if languages:
        for lang, bodies in PROBES[kind].items():
            found += [(lang, body, context) for body in bodies for context in CONTEXTS]
    else:
        found += [(None, body, context) for body in PROBES[kind] for context in CONTEXTS]
    return [pytest.param(*case, id=f"{case[2]}: {case[1]}") for case in found]


@pytest.mark.parametrize(("lang", "body", "context"), cases("self_harm"))
def test_thoughts_of_self_harm_get_988_first(
    client: AppClient, lang: str, body: str, context: str
) -> None:
    _, reply = answer(client, body, context)
    assert reply.startswith(SELF_HARM_FIRST[lang]), reply
    assert reply.index("988") < reply.index("911") < reply.index(COORDINATOR)


@pytest.mark.parametrize(("lang", "body", "context"), cases("emergency"))
def test_an_emergency_gets_911_and_988_first(
    client: AppClient, lang: str, body: str, context: str
) -> None:
    _, reply = answer(client, body, context)
    assert reply.startswith((EMERGENCY_FIRST[lang], SELF_HARM_FIRST[lang])), reply
    assert "988" in reply and "911" in reply
    assert reply.index("911") < reply.index(COORDINATOR)


@pytest.mark.parametrize(("lang", "body", "context"), cases("spanish", languages=False))
def test_spanish_in_an_english_conversation_gets_spanish(
    client: AppClient, lang: None, body: str, context: str
) -> None:
    texter, reply = answer(client, body, context)
    assert "Reply" not in reply and "Responda" in reply, reply
    assert "Responda" in texter.reply("2")  # and the conversation goes on in Spanish


@pytest.mark.parametrize(("lang", "body", "context"), cases("opt_out"))
def test_plain_words_to_stop_opt_out(
    client: AppClient, lang: str, body: str, context: str
) -> None:
    texter, reply = answer(client, body, context)
    assert STOPPED[lang] in reply, reply
    assert texter.send("2") == []  # nothing more is sent


@pytest.mark.parametrize(("lang", "body", "context"), cases("not_opt_out", languages=False))
def test_a_long_text_that_mentions_stop_is_not_an_opt_out(
    client: AppClient, lang: None, body: str, context: str
) -> None:
    texter = Texter(client, phone=f"+1804555{next(_numbers):04d}")
    if context == "mid-conversation":
        texter.send("hi")
    reply = texter.reply(body)
    assert not any(stopped in reply for stopped in STOPPED.values()), reply
    assert texter.send("2") != []  # still texting


@pytest.mark.parametrize(("lang", "body", "context"), cases("courtesy"))
def test_courtesy_gets_a_friendly_answer(
    client: AppClient, lang: str, body: str, context: str
) -> None:
    _, reply = answer(client, body, context)
    assert reply.startswith(WELCOME[lang]), reply
    assert "911" not in reply


@pytest.mark.parametrize(("lang", "body", "context"), cases("about_line"))
def test_a_question_about_the_line_says_who_it_is(
    client: AppClient, lang: str, body: str, context: str
) -> None:
    _, reply = answer(client, body, context)
    assert reply.startswith(WHO[lang]), reply
    assert COORDINATOR in reply


@pytest.mark.parametrize(("lang", "body", "context"), cases("not_crisis", languages=False))
def test_ordinary_texts_do_not_get_the_crisis_answer(
    client: AppClient, lang: None, body: str, context: str
) -> None:
    _, reply = answer(client, body, context, understood=False)
    assert "988" not in reply, reply


# -- said on a call ---------------------------------------------------------------------------

VOICE_SELF_HARM = {"en": "If you are thinking about suicide", "es": "Si está pensando en el"}
VOICE_EMERGENCY = {"en": "If this is an emergency", "es": "Si es una emergencia"}
_calls = count(1)


def call(client: AppClient, deeper: bool) -> Caller:
    caller = Caller(client, call_sid=f"CA{next(_calls):032x}")
    caller.call()
    if deeper:
        caller.press("2")
    return caller


def voice_cases(kind: str) -> list[Any]:
    return [
        pytest.param(lang, words, deeper, id=f"{lang}-{'deeper' if deeper else 'first'}-{words}")
        for lang, said in PROBES["voice"][kind].items()
        for words in said
        for deeper in (False, True)
    ]


@pytest.mark.parametrize(("lang", "words", "deeper"), voice_cases("crisis"))
def test_a_crisis_said_on_a_call(client: AppClient, lang: str, words: str, deeper: bool) -> None:
    heard = call(client, deeper).say(words)
    first = heard.words[0]
    assert first.startswith((VOICE_SELF_HARM[lang], VOICE_EMERGENCY[lang])), first
    assert "9 8 8" in first and "9 1 1" in first and first.endswith(("press 0.", "oprima 0."))
    assert heard.gather is not None  # then the menu again


@pytest.mark.parametrize("words", PROBES["voice"]["spanish_first_menu"])
def test_spanish_answers_at_the_first_menu_choose_spanish(client: AppClient, words: str) -> None:
    heard = call(client, deeper=False).say(words)
    assert heard.words[0].startswith("Esta es la Línea de Segunda Opinión de VCU Massey.")
    assert heard.gather is not None and heard.gather["language"] == "es-US"


SPANISH_GREETING = "Esta es la Línea de Segunda Opinión de VCU Massey."


@pytest.mark.parametrize(("lang", "words", "deeper"), voice_cases("courtesy"))
def test_thanks_said_on_a_call(client: AppClient, lang: str, words: str, deeper: bool) -> None:
    heard = call(client, deeper).say(words)
    if lang == "es" and not deeper:  # Spanish at the first menu chooses Spanish
        assert heard.words[0].startswith(SPANISH_GREETING)
    else:
        assert heard.words[0] == WELCOME[lang]


@pytest.mark.parametrize(("lang", "words", "deeper"), voice_cases("about_line"))
def test_who_is_this_said_on_a_call(
    client: AppClient, lang: str, words: str, deeper: bool
) -> None:
    heard = call(client, deeper).say(words)
    if lang == "es" and not deeper:  # Spanish at the first menu: who it is, in Spanish
        assert heard.words[0].startswith(SPANISH_GREETING)
        return
    assert heard.words[0].startswith(WHO[lang]), heard.words[0]
    assert "8 0 4, 8 2 8, 7 9 9 9" in heard.text
