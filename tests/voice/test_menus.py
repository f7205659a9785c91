"""What a caller hears when they press the wrong key, say nothing, speak, repeat or go back."""

from __future__ import annotations

import re
from itertools import cycle

from tests.voice.caller import Caller, Heard

COORDINATOR = "+18048287999"
MAIN_OPTIONS = [
    "To hear why it matters, press 1.",
    "To find another doctor, press 2.",
    "To get ready for the visit, press 3.",
    "To hear what to do if the doctors disagree, press 4.",
    "To get all the phone numbers by text, press 8.",
]


def in_menu(heard: Heard, node: str) -> bool:
    return heard.gather is not None and f"?at={node}&" in heard.gather["action"]


def test_the_greeting_offers_spanish_first_then_warns_about_emergencies(caller: Caller) -> None:
    heard = caller.call()
    # The first words a caller hears offer Spanish, in Spanish (4 words: about 2 seconds).
    assert heard.words[0] == "Para español, oprima 9."
    assert heard.says[0].language == "es-US" and heard.says[0].voice == "Polly.Lupe-Neural"
    assert "emergencies" in heard.words[1] and "9 1 1" in heard.words[1]
    assert heard.says[1].language == "en-US"
    assert heard.words[2:7] == MAIN_OPTIONS
    # It listens in English, and for a Spanish speaker's first words.
    assert heard.gather is not None and heard.gather["language"] == "en-US"
    for answer in ("hola", "necesito ayuda", "quiero hablar con alguien"):
        assert answer in heard.gather["hints"].split(", ")
    # The first "press 1" within 25 words (about 10 seconds at 160 words a minute).
    up_to_press_1 = heard.text.split("press 1.")[0].split()
    assert len(up_to_press_1) - 1 <= 25
    assert heard.words[-1] == (
        "At any time, press star to repeat, pound to go back, or 0 to talk with a person."
    )


def test_star_and_pound_on_the_first_menu_give_the_menu_not_the_greeting(caller: Caller) -> None:
    caller.call()
    for key in ("*", "#"):
        heard = caller.press(key)
        assert in_menu(heard, "main")
        assert heard.words[0] == "Para español, oprima 9."
        assert "9 1 1" not in heard.text
        assert heard.words[1:6] == MAIN_OPTIONS
        assert heard.words[-1] == "To talk with a person, press 0."


def test_a_wrong_key_keeps_the_caller_in_the_menu(caller: Caller) -> None:
    caller.call()
    heard = caller.press("7")
    assert heard.words[0] == "Sorry, 7 is not an option."
    assert heard.words[2:7] == MAIN_OPTIONS
    assert in_menu(heard, "main")
    assert heard.gather is not None and "&m=1&" in heard.gather["action"]
    heard = caller.press("2")
    assert in_menu(heard, "reach")
    heard = caller.press("#")
    assert in_menu(heard, "main")
    assert not caller.dialed


def test_star_and_pound_are_keys_not_terminators(caller: Caller) -> None:
    caller.call()
    caller.press("2")
    heard = caller.press("*")
    assert in_menu(heard, "reach")
    assert heard.words[0].startswith("If your doctor cannot recommend a colleague")
    heard = caller.press("#")
    assert in_menu(heard, "main")


def test_silence_is_reprompted_twice_then_the_coordinator_is_dialed(caller: Caller) -> None:
    """A caller who never pressed anything still reaches a person."""
    caller.call()
    for _ in range(2):
        heard = caller.silence()
        assert heard.words[0] == "Sorry, I didn't hear anything."
        assert in_menu(heard, "main")
        assert heard.words[2] == MAIN_OPTIONS[0]
    heard = caller.silence()
    assert heard.dial is not None
    assert heard.numbers == [COORDINATOR]
    assert heard.words[:2] == [
        "Sorry, I didn't hear anything.",
        "Let me connect you with someone who can help.",
    ]
    assert "The number is 8 0 4, 8 2 8, 7 9 9 9." in heard.words


def test_silence_after_a_part_of_the_handout_ends_with_the_number_and_a_goodbye(
    caller: Caller,
) -> None:
    caller.call()
    caller.press("3")
    for _ in range(2):
        heard = caller.silence()
        assert in_menu(heard, "prepare")
        assert heard.words[1] == "To find another doctor, press 2."
    heard = caller.silence()
    assert heard.hangup and not caller.dialed
    assert heard.words[1:] == [
        "You can call the patient referral coordinator at VCU Massey Comprehensive Cancer Center.",
        "The number is 8 0 4, 8 2 8, 7 9 9 9.",
        "Again, that's 8 0 4, 8 2 8, 7 9 9 9.",
        "Thank you for calling. Take care. Goodbye.",
    ]


def test_zero_reaches_the_coordinator_from_any_menu(caller: Caller) -> None:
    caller.call()
    for key in ("4", "1", "1"):
        caller.press(key)
    heard = caller.press("0")
    assert heard.numbers == [COORDINATOR]
    assert heard.words[0].startswith("Connecting you to the patient referral coordinator")


def test_no_call_loops_past_a_bound(caller: Caller) -> None:
    """Fifty misses in a row (silence and wrong keys), with every transfer unanswered: the
    caller is put through within three turns each time, and the call ends with a goodbye."""
    caller.call()
    misses = cycle(["", "7", "", "5"])
    turns_since_ending = 0
    for _ in range(50):
        heard = caller.last
        assert heard is not None
        if heard.hangup:
            break
        if heard.dial is not None:
            turns_since_ending = 0
            caller.dial_ends("no-answer")
            continue
        turns_since_ending += 1
        assert turns_since_ending <= 3, "more than three misses without a transfer or goodbye"
        miss = next(misses)
        if miss:
            caller.press(miss)
        else:
            caller.silence()
    assert caller.last is not None and caller.last.hangup, "the call never ended"
    assert re.search(r"Goodbye", caller.last.text)
    assert "You can call the patient referral coordinator" in caller.last.text
    assert caller.turns <= 12
    assert set(caller.dialed) == {COORDINATOR}


def test_an_unanswered_transfer_offers_a_retry_the_number_by_text_and_a_person(
    caller: Caller,
) -> None:
    caller.call()
    caller.press("2")
    caller.press("3")
    caller.press("1")
    heard = caller.dial_ends("busy")
    assert heard.words[:3] == [
        "The line is busy.",
        "The number is 1, 800, 4 2 2, 6 2 3 7.",
        "Again, that's 1, 800, 4 2 2, 6 2 3 7.",
    ]
    assert heard.words[3:] == [
        "To try again, press 1.",
        "To ask for a call back, press 2.",
        "To leave a message, press 3.",
        "To get the number by text, press 8.",
        "To go back, press pound.",
        "To talk with a person, press 0.",
    ]
    # The number is read slowly: a pause between its groups.
    assert '<prosody rate="85%">1,<break time="400ms" /> 800,' in heard.xml
    heard = caller.press("1")
    assert heard.numbers == ["+18004226237"]
    heard = caller.dial_ends("failed")
    assert heard.words[0] == "The call could not be connected."
    heard = caller.press("0")
    assert heard.numbers == [COORDINATOR]
    heard = caller.dial_ends("completed", duration="120")
    assert heard.hangup and heard.words == ["Thank you for calling. Take care. Goodbye."]


def test_the_library_rings_its_second_line_when_the_first_does_not_answer(caller: Caller) -> None:
    caller.call()
    caller.press("2")
    caller.press("2")
    heard = caller.press("1")
    assert heard.numbers == ["+18048288709"]
    assert "The number is 8 0 4, 8 2 8, 8 7 0 9." in heard.words
    heard = caller.dial_ends("no-answer")
    assert heard.words[:2] == ["No one answered.", "Trying the other line."]
    assert heard.numbers == ["+18048280450"]
    assert "The number is 8 0 4, 8 2 8, 0 4 5 0." in heard.words


def test_a_caller_hanging_up_during_a_transfer_gets_no_more_words(caller: Caller) -> None:
    caller.call()
    caller.press("0")
    heard = caller.dial_ends("canceled")
    assert heard.hangup and heard.words == []


def test_speech_chooses_options(caller: Caller) -> None:
    caller.call()
    heard = caller.say("I want to find another doctor")
    assert in_menu(heard, "reach")
    heard = caller.say("the patient resource library please")
    assert in_menu(heard, "library")
    heard = caller.say("mumble grumble")
    assert heard.words[0] == "Sorry, I didn't understand that."
    assert in_menu(heard, "library")
    heard = caller.say("operator")
    assert heard.numbers == [COORDINATOR]


def test_spanish_is_spoken_in_a_spanish_voice_and_kept(caller: Caller) -> None:
    caller.call()
    heard = caller.press("9")
    assert heard.gather is not None and heard.gather["language"] == "es-US"
    assert "lang=es" in heard.gather["action"]
    assert heard.words[0].startswith("Esta es la Línea de Segunda Opinión de VCU Massey.")
    assert heard.words[1] == "Para saber por qué es importante, oprima 1."
    assert "For English, press 9." in heard.words
    assert {said.language for said in heard.says if said.text != "For English, press 9."} == {
        "es-US"
    }
    heard = caller.press("3")
    assert heard.words[0].startswith("Cuando se comunique con el segundo médico, le preguntará")
    assert all(said.voice == "Polly.Lupe-Neural" for said in heard.says)
    heard = caller.press("7")
    assert heard.words[0] == "Lo siento, 7 no es una opción."
    heard = caller.press("0")
    assert heard.words[0].startswith("Le estoy comunicando con la coordinación de referidos")
    assert heard.numbers == [COORDINATOR]


def test_spanish_speech_is_recognised_in_spanish(caller: Caller) -> None:
    caller.call()
    caller.press("9")
    heard = caller.say("quiero prepararme para la visita")
    assert in_menu(heard, "prepare")
    assert heard.gather is not None and "análisis de laboratorio" in heard.text
