"""Free text the engine answers without a menu choice: a crisis (988 and 911 first), words in
the other language, thanks, questions about the line; and the phrase lists and the language
identification behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.flowengine import Flow, Position, load_flow, start, step
from service.flowengine import language as language_module
from service.flowengine.effects import Courtesy, EmergencyWarning, Menu, NotUnderstood, ReadNumber
from service.flowengine.engine import hints
from service.flowengine.freetext import (
    about_the_line,
    call_request,
    courtesy,
    crisis_in,
    plain_opt_out,
)
from service.flowengine.language import evidence, language_of, warm_up
from service.flowengine.position import Key, Reply, Speech
from service.flowengine.render import render_sms, render_voice
from service.flowengine.wordlists import (
    LANGUAGES,
    LIST_NAMES,
    WORDS_DIR,
    WordListError,
    fold,
    load_all,
    parse,
)

FEATURES = Path(__file__).resolve().parents[1] / "fixtures" / "flows" / "features.yaml"


# -- the lists --------------------------------------------------------------------------------


def test_fold_drops_case_accents_apostrophes_and_repeats() -> None:
    assert fold("  Can't BREATHE!!  ") == "cant breathe"
    assert fold("Llámenme, por favor") == "llamenme por favor"
    assert fold("stooop  pleeease") == "stop please"
    assert fold("thanks👍🏽🙏") == "thanks 👍 🙏"  # an emoji is a word, its skin tone is not


def test_the_phrase_grammar() -> None:
    source = """
    # a comment
    want ... die            # a gap of up to three words
    suicid*                 # a prefix
    kill|hurt myself        # one of these words
    [please] stop [it|now]  # optional words
    por_favor llamen        # words joined into one choice
    whole text:
    thanks|ok
    """
    words = parse("test", "en", source)
    assert words.found_in(fold("I want to just die"))
    assert not words.found_in(fold("I want to go out and see my grandchildren die laughing"))
    assert words.found_in(fold("feeling suicidal")) and words.found_in(fold("Hurt myself"))
    assert words.found_in(fold("please stop now")) and words.found_in(fold("stop"))
    assert words.found_in(fold("por favor llamen")) and not words.found_in(fold("por llamen"))
    assert words.count_in(fold("I want to die, I want to die")) == 2
    assert words.is_whole(fold("ok thanks ok")) and not words.is_whole(fold("ok, who is this"))
    assert not words.is_whole("")
    nowhere = parse("test", "en", "whole text:\nok\n")
    assert not nowhere.found_in("ok") and nowhere.count_in("ok") == 0
    assert not parse("test", "en", "ok\n").is_whole("ok")


@pytest.mark.parametrize(
    ("line", "problem"), [("[only] [optional]", "not optional"), ("?!", "no letters")]
)
def test_a_phrase_that_cannot_be_read_names_its_file_and_line(line: str, problem: str) -> None:
    with pytest.raises(WordListError, match=f"lists.txt:2: .*{problem}"):
        parse("test", "en", f"fine\n{line}\n", "lists.txt")


def test_every_list_exists_in_every_language_and_reads() -> None:
    load_all()
    for lang in LANGUAGES:
        for name in LIST_NAMES:
            assert (WORDS_DIR / lang / f"{name}.txt").is_file()


# -- which language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("hola", "es"),
        ("gracias", "es"),
        ("Menú", "es"),  # a Spanish letter
        ("thanks", "en"),
        ("who is this", "en"),
        ("my name is Carlos Rodriguez", "en"),
        ("mi esposo tiene cancer", "es"),
        ("ok", None),
        ("2", None),
        ("Maria", None),
        ("", None),
    ],
)
def test_the_language_a_text_is_written_in(text: str, lang: str | None) -> None:
    assert language_of(text) == lang


def test_the_model_decides_when_the_words_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    warm_up()
    # No marker words at all: only the model can tell.
    assert evidence("aceptan medicare") == {"en": 0, "es": 1}
    assert evidence("Richmond Virginia chemotherapy oncology") == {"en": 0, "es": 0}
    assert language_of("quimioterapia radioterapia oncologia") == "es"

    class Unsure:
        def classify(self, text: str) -> tuple[str, float]:
            return "es", 0.6

    monkeypatch.setattr(language_module, "_model", lambda: Unsure())
    assert language_of("quimioterapia radioterapia oncologia") is None
    assert language_of("hola Richmond Virginia") == "es"  # the marker word, then


# -- what the words are -----------------------------------------------------------------------


def test_what_free_text_says() -> None:
    assert crisis_in("I don't want to live anymore") == crisis_in("i dont want to live")
    found = crisis_in("Me quiero morir")
    assert found is not None and found.kind == "self-harm" and found.lang == "es"
    found = crisis_in("my chest hurts")
    assert found is not None and found.kind == "emergency" and found.lang == "en"
    found = crisis_in("911")  # in both lists: the text's language, which "911" has none of
    assert found is not None and found.lang is None
    assert crisis_in("thanks") is None and crisis_in("I want to stop treatment") is None
    assert courtesy("ok thanks 👍") is not None and courtesy("ok, who is this?") is None
    heard = about_the_line("¿quién es?")
    assert heard is not None and heard.lang == "es"
    assert plain_opt_out("STOP please") is not None
    assert plain_opt_out("the pain won't stop") is None
    heard = call_request("llámenme por favor")
    assert heard is not None and heard.lang == "es"
    assert call_request("can you call my doctor") is None


# -- the engine's answers ---------------------------------------------------------------------


def test_a_crisis_by_text_gets_988_first_in_the_texters_language(flow: Flow) -> None:
    position, effects = step(flow, Position("why", "en", "sms"), Reply("ya no quiero vivir"))
    assert position.lang == "es" and position.node == "why"
    warning = effects[0]
    assert isinstance(warning, EmergencyWarning) and warning.kind == "self-harm"
    reply = render_sms(flow, "es", effects)
    assert reply.startswith("¿Piensa en el suicidio o en hacerse daño? Llame o escriba al 988")
    assert reply.index("988") < reply.index("911") < reply.index("(804) 828-7999")
    assert reply.endswith("llame al (804) 828-7999 o responda 0.")
    assert "1 " not in reply  # no menu: 988, 911, a person, how to go on


def test_a_crisis_by_voice_then_the_menu_again(flow: Flow) -> None:
    position, effects = step(flow, Position("reach", "en", misses=2), Speech("I want to die"))
    assert position.misses == 2  # not a miss: it never ends the call
    lines = render_voice(flow, "en", effects).lines
    assert lines[0].startswith("If you are thinking about suicide or hurting yourself, please")
    assert lines[0].count("9 8 8") == 2 and "9 1 1" in lines[0]
    assert render_voice(flow, "en", effects).crisis == "self-harm"
    assert isinstance(effects[-1], Menu) and effects[-1].node == "reach"
    _, effects = step(flow, Position("main", "en"), Speech("me duele el pecho"))
    spanish = render_voice(flow, "es", effects)
    assert spanish.lines[0].startswith("Si es una emergencia, cuelgue y marque el 9 1 1 ahora.")
    assert spanish.lines[0].count("9 1 1") == 2 and "9 8 8" in spanish.lines[0]
    assert spanish.crisis == "emergency"


def test_spanish_words_at_the_first_menu_choose_spanish(flow: Flow) -> None:
    by_key = step(flow, start(flow), Key("9"))
    for words in ("hola", "ayuda", "quiero hablar con alguien", "necesito ayuda"):
        assert step(flow, start(flow), Speech(words)) == by_key, words


def test_spanish_words_elsewhere_are_understood_in_spanish(flow: Flow) -> None:
    position, effects = step(flow, Position("why", "en", "sms"), Reply("quiero hablar con alguien"))
    assert position.lang == "es"
    assert "Coordinación de referidos: (804) 828-7999" in render_sms(flow, "es", effects)
    # Not a choice: the same menu, in Spanish, without "sorry".
    position, effects = step(flow, Position("why", "en", "sms"), Reply("no se que hacer ahora"))
    assert (position.node, position.lang) == ("why", "es")
    assert not any(isinstance(effect, NotUnderstood) for effect in effects)
    assert render_sms(flow, "es", effects).startswith("Una segunda opinión")
    # By voice, after an unanswered transfer: that menu again, in Spanish.
    retry = Position("library", "en", state="retry", contact="library", misses=1)
    position, effects = step(flow, retry, Speech("no entiendo nada de esto"))
    assert position.lang == "es" and position.state == "retry" and position.misses == 0
    assert render_voice(flow, "es", effects).lines[0] == "Para intentar de nuevo, oprima 1."


def test_a_short_english_text_keeps_a_spanish_conversation_in_spanish(flow: Flow) -> None:
    position, effects = step(flow, Position("why", "es", "sms"), Reply("thanks"))
    assert position.lang == "es"
    assert render_sms(flow, "es", effects).startswith("De nada.")
    position, _ = step(flow, Position("why", "es", "sms"), Reply("I want to talk to a person"))
    assert position.lang == "en"


def test_thanks_gets_a_friendly_answer_not_a_miss(flow: Flow) -> None:
    position, effects = step(flow, Position("why", "en", "sms"), Reply("ok thank you!"))
    assert isinstance(effects[0], Courtesy)
    assert render_sms(flow, "en", effects) == (
        "You're welcome. Take care!\nReply MENU for the menu, 0 for a person."
    )
    position, effects = step(flow, Position("why", "en", misses=1), Speech("thank you"))
    assert position.misses == 1
    lines = render_voice(flow, "en", effects).lines
    assert lines[0] == "You're welcome." and "911" not in " ".join(lines)


def test_a_question_about_the_line_says_who_it_is_and_how_to_reach_a_person(
    flow: Flow,
) -> None:
    _, effects = step(flow, Position("main", "en", "sms"), Reply("who is this?"))
    assert render_sms(flow, "en", effects) == (
        "This is VCU Massey Second Opinion Line, a text line about getting a second opinion.\n"
        "Patient referral coordinator, VCU Massey: (804) 828-7999\n"
        "Texted us by mistake? Reply STOP.\n"
        "Reply MENU for the menu, 0 for a person."
    )
    _, effects = step(flow, Position("reach", "es"), Speech("quién habla"))
    lines = render_voice(flow, "es", effects).lines
    assert lines[0].startswith("Esta es la Línea de Segunda Opinión de VCU Massey.")
    assert "Puede llamar a la coordinación de referidos" in lines[1]
    assert lines[2] == "El número es 8 0 4, 8 2 8, 7 9 9 9."


def test_a_person_with_hours_is_named_with_them() -> None:
    features = load_flow(FEATURES)
    _, effects = step(features, Position("main", "en", "sms"), Reply("what are your hours?"))
    assert ReadNumber("desk", lead="call_them_at") in effects
    assert "Hours: weekdays 8 to 5." in render_sms(features, "en", effects)


def test_the_first_menu_listens_for_the_other_languages_answers(flow: Flow) -> None:
    english = hints(flow, start(flow))
    assert {"hola", "necesito ayuda", "quiero hablar con alguien"} <= set(english)
    spanish = hints(flow, start(flow, "voice", "es"))
    assert {"hello", "I need help"} <= set(spanish)
    retry = Position("coordinator", "en", state="retry", contact="coordinator")
    assert "call me back" in hints(flow, retry)
    assert "hola" not in hints(flow, Position("why", "en"))
