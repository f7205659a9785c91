"""The text dialogue on its own (pure: no database, no Twilio): what a texter is answered and the
flag staff get with it (asked for a person, not understood, sounds like an emergency)."""

from __future__ import annotations

import pytest

from service.flowengine import Flow, Position
from service.texts.dialogue import respond
from service.texts.keywords import Keyword

MAIN = Position("main", "en", "sms")
REACH = Position("reach", "en", "sms")


@pytest.mark.parametrize(
    "body",
    ["0", "person", "Can someone call me?", "I want to talk to a human", "operator please"],
)
def test_asking_for_a_person_is_flagged_and_answered_with_the_coordinator(
    flow: Flow, body: str
) -> None:
    turn = respond(flow, body, REACH)
    assert turn.flag == "asked_for_person"
    assert turn.reply is not None and "(804) 828-7999" in turn.reply
    assert "Reply CALL and we will call you" in turn.reply


def test_asking_for_a_person_in_spanish_is_flagged(flow: Flow) -> None:
    turn = respond(flow, "quiero hablar con alguien", Position("why", "es", "sms"))
    assert turn.flag == "asked_for_person"
    assert turn.reply is not None and "Responda LLAMAME" in turn.reply


def test_a_first_text_asking_for_a_person_gets_the_menu_and_is_flagged(flow: Flow) -> None:
    turn = respond(flow, "can someone call me", None)
    assert turn.flag == "asked_for_person" and turn.new_conversation
    assert turn.reply is not None and turn.reply.startswith("VCU Massey Second Opinion Line")


@pytest.mark.parametrize(
    "body",
    ["purple", "what?", "I was told I have cancer and I am scared and I don't know what to do"],
)
def test_a_text_not_understood_gets_911_and_a_person_and_is_flagged(flow: Flow, body: str) -> None:
    turn = respond(flow, body, REACH)
    assert turn.flag == "not_understood"
    assert turn.position.node == "reach", "a long frightened text is not misrouted"
    assert turn.reply is not None
    assert turn.reply.startswith("Sorry, we didn't understand that. In an emergency, call 911.")
    assert turn.reply.endswith("Reply # to go back, 0 for a person.")


@pytest.mark.parametrize(
    ("body", "lang", "words"),
    [
        ("I have chest pain", "en", "If this is an emergency, call 911 now."),
        ("my husband can't breathe", "en", "If this is an emergency, call 911 now."),
        ("911", "en", "If this is an emergency, call 911 now."),
        ("tengo dolor de pecho", "es", "Si es una emergencia, llame al 911 ahora."),
    ],
)
def test_a_text_that_sounds_like_an_emergency_gets_911_first(
    flow: Flow, body: str, lang: str, words: str
) -> None:
    for here in (Position("why", lang, "sms"), None):
        turn = respond(flow, body, here, lang=lang)
        assert turn.flag == "emergency"
        assert turn.reply is not None and turn.reply.startswith(words)
        assert "(804) 828-7999" in turn.reply  # and how to reach a person
        if here is None:  # the first text: still the opt-in notice
            assert "STOP" in turn.reply


@pytest.mark.parametrize(
    ("body", "lang", "first"),
    [
        ("I don't want to live anymore", "en", "If you are thinking about suicide"),
        ("ya no quiero vivir", "es", "¿Piensa en el suicidio"),
        ("Me quiero morir", "es", "¿Piensa en el suicidio"),
    ],
)
def test_thoughts_of_self_harm_get_988_first_in_the_texters_language(
    flow: Flow, body: str, lang: str, first: str
) -> None:
    for here, opted_out in ((Position("why", "en", "sms"), False), (None, False), (MAIN, True)):
        turn = respond(flow, body, here, opted_out=opted_out)
        assert turn.flag == "crisis" and turn.position.lang == lang
        reply = turn.reply or ""
        assert reply.startswith(first), reply
        assert reply.index("988") < reply.index("911") < reply.index("(804) 828-7999")
        assert turn.opted_out is None  # an opted-out number stays opted out
        if opted_out:  # it cannot reply 0: it is told to call
            assert "responda 0" not in reply.lower() and "reply 0" not in reply.lower()


def test_a_crisis_that_also_asks_to_stop_texts_is_answered_then_stopped(flow: Flow) -> None:
    turn = respond(flow, "stop texting me, I want to kill myself", MAIN)
    assert turn.flag == "crisis" and turn.opted_out is True
    reply = turn.reply or ""
    assert reply.startswith("If you are thinking about suicide")
    assert reply.endswith("For help call (804) 828-7999.")  # then the STOP confirmation


@pytest.mark.parametrize("body", ["thanks", "ok", "gracias", "👍", "Thank you so much!", "ok bye"])
def test_courtesy_gets_a_friendly_answer_and_no_flag(flow: Flow, body: str) -> None:
    for here in (REACH, Position("why", "es", "sms"), None):
        turn = respond(flow, body, here)
        reply = turn.reply or ""
        assert turn.flag is None, body
        assert "911" not in reply and "understand" not in reply and "entend" not in reply
        assert reply.split("\n")[0] in ("You're welcome. Take care!", "De nada. ¡Cuídese!")


@pytest.mark.parametrize(
    "body", ["who is this?", "wrong number", "are you open?", "what are your hours?"]
)
def test_a_question_about_the_line_says_who_it_is(flow: Flow, body: str) -> None:
    for here in (REACH, None):
        turn = respond(flow, body, here)
        reply = turn.reply or ""
        assert turn.flag is None
        assert reply.startswith("This is VCU Massey Second Opinion Line, a text line"), reply
        assert "Patient referral coordinator, VCU Massey: (804) 828-7999" in reply
        if here is None:
            assert "Reply STOP to opt out" in reply


def test_llamame_in_an_english_conversation_answers_and_calls_in_spanish(flow: Flow) -> None:
    for body in ("LLAMAME", "llámenme", "llamenme", "llamame por favor"):
        turn = respond(flow, body, Position("coordinator", "en", "sms"))
        assert turn.keyword is Keyword.CALL and turn.call_contact == "coordinator"
        assert turn.position.lang == "es", body
        assert (turn.reply or "").startswith("En un momento le llamaremos")


def test_ordinary_choices_carry_no_flag(flow: Flow) -> None:
    for body, here in (("2", MAIN), ("library", MAIN), ("HELP", REACH), ("hi", None)):
        assert respond(flow, body, here).flag is None, body


def test_call_me_in_a_contacts_menu_calls_the_texter_back(flow: Flow) -> None:
    turn = respond(flow, "1", Position("library", "en", "sms"))
    assert turn.call_contact == "library" and turn.flag is None
    assert turn.reply is not None and turn.reply.startswith(
        "We will call you in a moment and connect you to the Patient Resource Library"
    )
    spanish = respond(flow, "1", Position("coordinator", "es", "sms"))
    assert spanish.call_contact == "coordinator"
    assert spanish.reply is not None and spanish.reply.startswith("En un momento le llamaremos")


@pytest.mark.parametrize(
    "body",
    [
        "Stop texting me",
        "please unsubscribe me",
        "No more texts!",
        "don't text me again",
        "take me off this list",
    ],
)
def test_plain_words_to_stop_opt_out(flow: Flow, body: str) -> None:
    turn = respond(flow, body, REACH)
    assert turn.keyword is Keyword.OPT_OUT and turn.opted_out is True
    assert turn.reply is not None and "No more messages will be sent" in turn.reply
    assert len(turn.word) <= 32


@pytest.mark.parametrize(
    "body", ["No me manden más mensajes", "dejen de enviarme mensajes", "quiero darme de baja"]
)
def test_plain_spanish_words_to_stop_opt_out_in_spanish(flow: Flow, body: str) -> None:
    turn = respond(flow, body, REACH)
    assert turn.opted_out is True
    assert turn.reply is not None and "No le enviaremos más mensajes" in turn.reply


@pytest.mark.parametrize("body", ["stop the pain", "I want to stop treatment", "no more chemo"])
def test_stop_in_a_sentence_about_something_else_is_not_an_opt_out(flow: Flow, body: str) -> None:
    assert respond(flow, body, REACH).opted_out is None


@pytest.mark.parametrize("body", ["YES", "start", "Unstop"])
def test_yes_from_a_number_that_never_opted_out_gets_the_menu(flow: Flow, body: str) -> None:
    turn = respond(flow, body, REACH, opted_out=False)
    # Recorded as an opt-in all the same: it must win over a STOP acknowledged before it that
    # the database may not have yet.
    assert turn.opted_out is False
    assert turn.position.node == "main"
    assert turn.reply is not None and "1 Why a second opinion" in turn.reply
    assert "subscribed" not in turn.reply
    back = respond(flow, body, REACH, opted_out=True)
    assert back.opted_out is False
    assert back.reply is not None and "subscribed to VCU Massey Second Opinion Line again" in (
        back.reply
    )


@pytest.mark.parametrize(
    "body", ["Hola necesito ayuda", "hola, buenas tardes", "¿Tienen información en español?"]
)
def test_hola_or_espanol_anywhere_in_a_first_text_starts_in_spanish(flow: Flow, body: str) -> None:
    turn = respond(flow, body, None)
    assert turn.position.lang == "es"
    assert turn.reply is not None and turn.reply.startswith(
        "Línea de Segunda Opinión de VCU Massey"
    )
    assert "Responda STOP para cancelar" in turn.reply.split("\n")[1]


def test_spanish_later_in_an_english_conversation_switches_it(flow: Flow) -> None:
    turn = respond(flow, "hola doctor", MAIN)
    assert turn.position.lang == "es"
    assert turn.reply is not None and turn.reply.startswith("Si su médico")  # "doctor"
    assert turn.flag is None  # not "didn't understand"


def test_help_names_the_program_vcu_massey_frequency_rates_and_how_to_stop(flow: Flow) -> None:
    english = respond(flow, "HELP", REACH).reply or ""
    for words in (
        "VCU Massey Second Opinion Line",
        "Msg frequency varies",
        "Msg&data rates may apply",
        "Reply STOP to opt out",
        "(804) 828-7999",
    ):
        assert words in english
    spanish = respond(flow, "AYUDA", REACH).reply or ""
    for words in (
        "Línea de Segunda Opinión de VCU Massey",
        "Frecuencia de mensajes variable",
        "Pueden aplicarse tarifas de mensajes y datos",
        "Responda STOP para cancelar",
    ):
        assert words in spanish
