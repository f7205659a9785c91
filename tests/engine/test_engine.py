"""`step()` rule by rule: keys, words, silence, transfers, office hours, and positions from URLs."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.flowengine import Flow, Position, load_flow, start, step
from service.flowengine.effects import (
    Connect,
    EmergencyWarning,
    HangUp,
    Menu,
    NotUnderstood,
    PlaceCallBack,
    ReadNumber,
    RequestCallBack,
    Say,
    TextContacts,
)
from service.flowengine.engine import MAX_MISSES, hints, match_elsewhere, match_words
from service.flowengine.position import DialEnded, Key, Reply, Silence, Speech, Start
from service.flowengine.render import SPOKEN_NUMBER, render_sms, render_voice, spoken_digits

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "tests" / "fixtures" / "flows" / "features.yaml"
# A Wednesday, 15:00 UTC = 10:00 in New York (open); and the same day at 03:00 UTC (closed).
OPEN = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
CLOSED = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def features() -> Flow:
    return load_flow(FEATURES)


def says(effects: tuple[object, ...]) -> list[str]:
    return [effect.text for effect in effects if isinstance(effect, Say)]


def test_the_engine_imports_no_web_database_or_twilio_code() -> None:
    banned = ("fastapi", "starlette", "sqlalchemy", "twilio", "httpx", "uvicorn", "service.db")
    for path in (ROOT / "service" / "flowengine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
    code = (
        "import sys, service.flowengine, service.flowengine.validate;"
        f"print([m for m in sys.modules if m.split('.')[0] in {banned!r}])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_start_in_a_language(flow: Flow) -> None:
    assert start(flow, "sms", "es") == Position("main", "es", "sms")
    assert start(flow, "voice", "xx") == Position("main", "en", "voice")


def test_option_moves_to_its_node_and_hash_goes_back(flow: Flow) -> None:
    position, effects = step(flow, start(flow), Key("2"))
    assert position.node == "reach"
    position, effects = step(flow, position, Key("3"))
    assert position.node == "cancer_information_service"
    assert ReadNumber("cancer_information_service") in effects
    position, _ = step(flow, position, Key("#"))
    assert position.node == "reach"
    position, _ = step(flow, position, Key("#"))
    position, _ = step(flow, position, Key("#"))
    assert position.node == "main"


def test_star_repeats_the_node(flow: Flow) -> None:
    position, first = step(flow, start(flow), Key("3"))
    again, repeated = step(flow, replace(position, misses=2), Key("*"))
    assert repeated == first and again.misses == 0


def test_wrong_key_says_so_and_keeps_the_menu(flow: Flow) -> None:
    position, effects = step(flow, start(flow), Key("7"))
    assert says(effects) == ["Sorry, 7 is not an option."]
    assert isinstance(effects[-1], Menu) and effects[-1].node == "main"
    assert position.misses == 1
    _, effects = step(flow, position, Key("6"))
    assert says(effects) == ["Sorry, 6 is not an option."]


def test_silence_twice_reprompts_then_connects_the_operator(flow: Flow) -> None:
    """A caller who never pressed anything still reaches a person."""
    position = start(flow)
    for expected_misses in range(1, MAX_MISSES):
        position, effects = step(flow, position, Silence())
        assert position.misses == expected_misses and isinstance(effects[-1], Menu)
    position, effects = step(flow, position, Silence())
    assert effects[-1] == Connect("coordinator", 0)
    assert position.state == "dialing"


def test_silence_after_content_ends_with_the_coordinators_number_and_a_goodbye(flow: Flow) -> None:
    """At the directories (nothing more to hear) or back on the first menu after a part of the
    handout: the coordinator's number, twice, and a goodbye; no transfer."""
    position, _ = step(flow, start(flow), Key("2"))
    position, _ = step(flow, position, Key("5"))
    assert position.node == "directories" and position.heard
    for _ in range(MAX_MISSES):
        position, effects = step(flow, position, Silence())
    assert effects[1] == ReadNumber("coordinator", lead="call_them_at")
    assert isinstance(effects[-1], HangUp) and not any(isinstance(e, Connect) for e in effects)
    lines = render_voice(flow, "en", effects).lines
    assert lines[:4] == (
        "Sorry, I didn't hear anything.",
        "You can call the patient referral coordinator at VCU Massey Comprehensive Cancer Center.",
        "The number is 8 0 4, 8 2 8, 7 9 9 9.",
        "Again, that's 8 0 4, 8 2 8, 7 9 9 9.",
    )
    assert lines[-1] == "Thank you for calling. Take care. Goodbye."
    back, _ = step(flow, Position("why", "en", heard=True), Key("#"))
    assert back.node == "main" and back.heard
    for _ in range(MAX_MISSES):
        back, effects = step(flow, back, Silence())
    assert isinstance(effects[-1], HangUp)


def test_star_and_pound_give_the_first_menu_again_not_the_greeting(flow: Flow) -> None:
    _, greeting = step(flow, start(flow), Start())
    assert says(greeting)[0].startswith("Welcome") and "9 1 1" in says(greeting)[0]
    for key in ("*", "#"):
        _, effects = step(flow, start(flow), Key(key))
        assert says(effects) == [] and isinstance(effects[-1], Menu)
        assert [choice.key for choice in effects[-1].choices] == ["9", "1", "2", "3", "4", "8"]
    _, back = step(flow, Position("why", "en"), Key("#"))
    assert says(back) == []
    # A texter's menu keeps its title line (and its 911 line).
    _, texted = step(flow, start(flow, "sms"), Key("*"))
    assert "911" in says(texted)[0]


def test_no_sequence_of_misses_loops_forever(flow: Flow) -> None:
    """Whatever a silent or confused caller does, the call reaches a transfer or a goodbye."""
    position, turns = start(flow), 0
    events = [Silence(), Key("7"), Speech("mumble"), DialEnded("no-answer")]
    while True:
        turns += 1
        event = events[turns % len(events)] if position.state != "dialing" else events[-1]
        position, effects = step(flow, position, event)
        if isinstance(effects[-1], HangUp):
            break
        assert turns < 20, "the call did not end"


def test_zero_connects_the_operator_from_anywhere(flow: Flow) -> None:
    position, _ = step(flow, start(flow), Key("4"))
    position, _ = step(flow, position, Key("1"))
    position, effects = step(flow, position, Key("0"))
    assert effects == (Connect("coordinator", 0),)
    assert render_voice(flow, "en", effects).dial_number == "+18048287999"


def test_dial_outcomes(flow: Flow) -> None:
    dialing, _ = step(flow, Position("coordinator", "en"), Key("1"))
    assert dialing.state == "dialing" and dialing.contact == "coordinator"
    for status in ("completed", "answered"):
        _, effects = step(flow, dialing, DialEnded(status))  # type: ignore[arg-type]
        assert isinstance(effects[-1], HangUp) and "Goodbye" in says(effects)[-1]
    _, effects = step(flow, dialing, DialEnded("canceled"))
    assert effects == (HangUp(),)
    for status, words in (
        ("busy", "busy"),
        ("no-answer", "No one answered"),
        ("failed", "could not"),
    ):
        retry, effects = step(flow, dialing, DialEnded(status))  # type: ignore[arg-type]
        assert retry.state == "retry" and words in says(effects)[0]
        assert effects[1] == ReadNumber("coordinator")  # the number again
        menu = effects[-1]
        assert isinstance(menu, Menu)
        assert [choice.key for choice in menu.choices] == ["1", "2", "3", "8", "#"]
        # Even when the coordinator did not answer, the menu ends with how to reach a person.
        assert render_voice(flow, "en", effects).lines[-1] == "To talk with a person, press 0."


def test_retry_menu(flow: Flow) -> None:
    dialing, _ = step(flow, Position("library", "en"), Key("1"))
    second, effects = step(flow, dialing, DialEnded("busy"))
    assert effects[-1] == Connect("library", 1) and "Trying the other line." in says(effects)
    retry, effects = step(flow, second, DialEnded("no-answer"))
    menu = effects[-1]
    assert isinstance(menu, Menu)
    assert [choice.key for choice in menu.choices] == ["1", "2", "3", "8", "#"]
    assert render_voice(flow, "en", effects).lines == (
        "No one answered.",
        "The first number is 8 0 4, 8 2 8, 8 7 0 9.",
        "Again, that's 8 0 4, 8 2 8, 8 7 0 9.",
        "The second number is 8 0 4, 8 2 8, 0 4 5 0.",
        "Again, that's 8 0 4, 8 2 8, 0 4 5 0.",
        "To try again, press 1.",
        "To ask for a call back, press 2.",
        "To leave a message, press 3.",
        "To get the numbers by text, press 8.",
        "To go back, press pound.",
        "To talk with a person, press 0.",
    )
    again, effects = step(flow, retry, Key("1"))
    assert effects == (Connect("library", 0),) and again.state == "dialing"
    _, effects = step(flow, retry, Key("8"))
    assert effects[0] == TextContacts(("library",))
    _, effects = step(flow, retry, Key("*"))
    assert isinstance(effects[-1], Menu) and effects[-1].choices[0].key == "1"
    back, _ = step(flow, retry, Key("#"))
    assert back.node == "library" and back.state == "menu"
    _, effects = step(flow, retry, Key("5"))
    assert says(effects) == ["Sorry, 5 is not an option."]
    missed = replace(retry, misses=MAX_MISSES - 1)
    _, effects = step(flow, missed, Silence())
    assert effects[1] == ReadNumber("library", lead="call_them_at") and effects[-1] == HangUp()
    lines = render_voice(flow, "en", effects).lines
    assert lines[1:4] == (
        "You can call the Patient Resource Library at VCU Massey.",
        "The first number is 8 0 4, 8 2 8, 8 7 0 9.",
        "Again, that's 8 0 4, 8 2 8, 8 7 0 9.",
    )


def test_a_caller_whose_transfer_went_unanswered_can_ask_for_a_call_back(flow: Flow) -> None:
    retry = Position("coordinator", "es", state="retry", contact="coordinator", heard=True)
    after, effects = step(flow, retry, Key("2"))
    assert effects[0] == RequestCallBack("coordinator") and isinstance(effects[-1], HangUp)
    assert after.state == "menu"
    turn = render_voice(flow, "es", effects)
    assert turn.callback == "coordinator" and turn.ending == "hangup"
    assert turn.lines == (
        "Gracias. Un miembro del personal le devolverá la llamada al número desde el que llama, "
        "lo antes posible.",
        "También puede llamar directamente a la coordinación de referidos de pacientes del "
        "Centro Integral de Cáncer VCU Massey.",
        "El número es 8 0 4, 8 2 8, 7 9 9 9.",
        "Repito: 8 0 4, 8 2 8, 7 9 9 9.",
        "Gracias por llamar. Cuídese mucho. Adiós.",
    )
    assert render_voice(flow, "es", (Say("x"), HangUp())).callback is None


def test_a_key_while_dialing_counts_as_a_menu_key(flow: Flow) -> None:
    dialing = Position("reach", "en", state="dialing", contact="coordinator")
    position, _ = step(flow, dialing, Key("3"))
    assert position.node == "cancer_information_service"


def test_a_stale_dial_result_shows_the_menu(flow: Flow) -> None:
    position, effects = step(flow, Position("why", "en"), DialEnded("completed"))
    assert position.node == "why" and isinstance(effects[-1], Menu)


def test_language_switch_with_nine_on_the_first_menu_only(flow: Flow) -> None:
    position, effects = step(flow, start(flow), Key("9"))
    assert position.lang == "es" and isinstance(effects[-1], Menu) and effects[-1].announce_keys
    position, _ = step(flow, position, Key("9"))
    assert position.lang == "en"
    _, effects = step(flow, Position("reach", "en"), Key("9"))
    assert says(effects) == ["Sorry, 9 is not an option."]


def test_speech_chooses_options_and_reserved_keys(flow: Flow) -> None:
    main = start(flow)
    assert match_words(flow, main, "I want to talk to a person") == "0"
    assert match_words(flow, main, "um, can someone call me") == "0"
    assert match_words(flow, main, "repeat that") == "*"
    assert match_words(flow, main, "number two") == "2"
    assert match_words(flow, main, "2") == "2"
    assert match_words(flow, main, "why") == "1"
    assert match_words(flow, main, "prepare my records") == "3"
    assert match_words(flow, main, "what do I need to bring") == "3"
    assert match_words(flow, main, "my doctors disagree") == "4"
    assert match_words(flow, main, "bananas") is None
    # Two different keys, or a story with a number in it: no guess.
    assert match_words(flow, main, "1 or 2") is None
    assert match_words(flow, main, "I was told 3 weeks ago that my cancer came back") is None
    # In a long sentence, one word of a label is not enough ("ask" is in 5's label).
    rambling = "my neighbor said that maybe I should ask around about this whole thing"
    assert match_words(flow, Position("reach", "en"), rambling) is None
    assert match_words(flow, Position("reach", "en"), "which ones should I ask for") == "5"
    scared = "I was told I have cancer and I am scared and I do not know what to do next"
    assert match_words(flow, main, scared) is None
    assert match_elsewhere(flow, main, scared) is None
    assert match_words(flow, Position("main", "es"), "quiero hablar con alguien") == "0"
    assert match_words(flow, Position("reach", "en"), "the resource library") == "2"
    # Two options match equally: no guess.
    assert match_words(flow, Position("reach", "en"), "call") is None
    retry = Position("coordinator", "en", state="retry", contact="coordinator")
    assert match_words(flow, retry, "library") is None
    position, effects = step(flow, main, Speech("bananas"))
    assert says(effects) == ["Sorry, I didn't understand that."] and position.misses == 1
    position, _ = step(flow, main, Speech("why get one"))
    assert position.node == "why"


def test_words_that_name_a_topic_or_a_contact_lead_there_from_any_menu(flow: Flow) -> None:
    """ "library" is understood on the first menu (the library is a menu further down), and a
    topic of the first menu is understood from any menu."""
    main = start(flow)
    assert match_words(flow, main, "library") is None
    assert match_elsewhere(flow, main, "library") == "library"
    position, effects = step(flow, main, Speech("the library"))
    assert position.node == "library" and ReadNumber("library") in effects
    assert match_elsewhere(flow, Position("disagree", "en"), "medicare") == "medicare_hotline"
    assert match_elsewhere(flow, Position("why", "en"), "what do I need to bring") == "prepare"
    assert match_elsewhere(flow, Position("main", "es"), "la biblioteca") == "library"
    position, _ = step(flow, Position("coordinator", "en", "sms"), Reply("which directories"))
    assert position.node == "directories"
    # Where the words already are, or in a transfer's retry menu: nothing to jump to.
    assert match_elsewhere(flow, Position("library", "en"), "library") is None
    retry = Position("library", "en", state="retry", contact="library")
    assert match_elsewhere(flow, retry, "medicare") is None


def test_words_of_an_emergency_get_911_then_988_then_a_person(flow: Flow) -> None:
    _, effects = step(flow, Position("reach", "en"), Speech("I have chest pain"))
    warning = effects[0]
    assert isinstance(warning, EmergencyWarning) and warning.kind == "emergency"
    assert warning.text.startswith("If this is an emergency, hang up and dial 9 1 1 now.")
    assert "9 8 8" in warning.text and warning.text.endswith("press 0.")
    assert isinstance(effects[-1], Menu) and effects[-1].node == "reach"
    for text, lang in (("I can't breathe", "en"), ("tengo dolor de pecho", "es"), ("911", "en")):
        position, effects = step(flow, Position("why", lang, "sms"), Reply(text))
        assert isinstance(effects[0], EmergencyWarning), text
        assert "911" in effects[0].text and "988" in effects[0].text
        reply = render_sms(flow, lang, effects)
        assert "(804) 828-7999" in reply and reply.index("911") < reply.index("(804)")
        assert position.node == "why"
    # Not an emergency: a fear, a question.
    _, effects = step(flow, start(flow, "sms"), Reply("I am scared of my diagnosis"))
    assert not any(isinstance(effect, EmergencyWarning) for effect in effects)


def test_hints_come_from_the_labels(flow: Flow) -> None:
    assert hints(flow, start(flow))[:2] == ("hear why it matters", "find another doctor")
    assert "coordinator" in hints(flow, start(flow))


def test_texting_replies(flow: Flow) -> None:
    texter = start(flow, "sms")
    sorry = "Sorry, we didn't understand that. In an emergency, call 911."
    position, effects = step(flow, texter, Reply("  "))
    assert says(effects) == [sorry] and isinstance(effects[0], NotUnderstood)
    position, effects = step(flow, texter, Reply("what?"))
    assert says(effects) == [sorry] and position.misses == 0
    _, effects = step(flow, texter, Reply("7"))
    assert not isinstance(effects[0], NotUnderstood)  # a wrong digit was understood
    position, _ = step(flow, texter, Reply("2"))
    position, _ = step(flow, position, Reply("BACK"))
    assert position.node == "main"
    position, effects = step(flow, Position("reach", "en", "sms"), Reply("Menu"))
    assert position.node == "main"
    position, effects = step(
        flow, Position("reach", "en", "sms"), Reply("the resource library please")
    )
    assert position.node == "library"
    # In a contact's menu, "1" calls the texter back and connects them; 0 gives the
    # coordinator's number and offers the call back.
    position, effects = step(flow, Position("coordinator", "en", "sms"), Reply("1"))
    assert effects == (PlaceCallBack("coordinator"),) and position.state == "menu"
    assert render_sms(flow, "en", effects).startswith("We will call you in a moment")
    position, effects = step(flow, Position("library", "en", "sms"), Reply("0"))
    assert effects == (Connect("coordinator", 0),) and position.state == "menu"
    assert "Reply CALL" in render_sms(flow, "en", effects)
    _, effects = step(flow, Position("reach", "en", "sms"), Reply("8"))
    assert len(effects) == 1 and isinstance(effects[0], TextContacts)
    # "Get this number by text" is for callers: a texter has the number already.
    _, effects = step(flow, Position("coordinator", "en", "sms"), Reply("8"))
    assert says(effects) == ["Sorry, 8 is not an option."]
    _, effects = step(flow, Position("coordinator", "en", "sms"), Key("*"))
    assert [choice.key for choice in effects[-1].choices] == ["1"]  # type: ignore[union-attr]
    assert render_sms(flow, "en", effects).splitlines()[-2] == "1 Call me and connect me"
    for _ in range(5):
        texter, effects = step(flow, texter, Reply("7"))
    assert isinstance(effects[-1], Menu), "texters are never transferred for mistakes"


def test_unknown_positions_are_made_safe(flow: Flow) -> None:
    cases = [
        Position("no-such-node", "en"),
        Position("main", "xx"),
        Position("main", "en", state="dialing", contact="nobody"),
        Position("main", "en", state="retry", contact="coordinator", line=7),
        Position("main", "en", misses=99),
        Position("main", "en", misses=-1),
    ]
    for position in cases:
        after, effects = step(flow, position, Key("*"))
        assert after.node in flow.nodes and after.lang in flow.languages
        assert effects


def test_hangup_and_language_options(features: Flow) -> None:
    _, effects = step(features, start(features), Key("3"))
    assert isinstance(effects[-1], HangUp)
    position, _ = step(features, start(features), Key("4"))
    assert position.lang == "es" and position.node == "main"


def test_office_hours(features: Flow) -> None:
    clinic = Position("clinic", "en")
    position, effects = step(features, clinic, Key("2"), now=OPEN)
    assert effects[-1] == Connect("desk", 0)
    position, effects = step(features, clinic, Key("2"), now=CLOSED)
    assert says(effects) == [
        "The front desk is closed right now.",
        "They are open again tomorrow at 8 a.m.",
    ]
    assert effects[-2] == ReadNumber("desk")
    assert (position.state, position.contact) == ("closed", "desk")  # its choices follow
    saturday_night = datetime(2026, 11, 29, 4, 30, tzinfo=UTC)  # Sat 23:30 in New York
    _, effects = step(features, clinic, Key("2"), now=saturday_night)
    assert effects[-1] == Connect("desk", 0)
    # Silent callers outside office hours are not put through: they hear that the office is
    # closed, when it opens, and its choices (a message, a call back...), not a goodbye.
    silent = replace(start(features), misses=MAX_MISSES - 1)
    waiting, effects = step(features, silent, Silence(), now=CLOSED)
    assert effects[1] == Say("The front desk is closed right now.")
    assert (waiting.state, waiting.contact, waiting.misses) == ("closed", "desk", 0)
    assert not any(isinstance(effect, Connect | HangUp) for effect in effects)
    _, effects = step(features, silent, Silence(), now=OPEN)
    assert effects[-1] == Connect("desk", 0)
    # A texter choosing a closed contact hears the hours, not a call back.
    _, effects = step(features, Position("clinic", "en", "sms"), Reply("2"), now=CLOSED)
    assert not any(isinstance(effect, PlaceCallBack) for effect in effects)
    _, effects = step(features, Position("clinic", "en", "sms"), Reply("2"), now=OPEN)
    assert effects == (PlaceCallBack("desk"),)


def test_spoken_digits() -> None:
    assert spoken_digits("+18048287999") == "8 0 4, 8 2 8, 7 9 9 9"
    # Toll free as people say it: "one, eight hundred, …".
    assert spoken_digits("+18004226237") == "1, 800, 4 2 2, 6 2 3 7"
    assert spoken_digits("+442071838750") == "4 4 2, 0 7 1, 8 3 8, 7 5 0"
    for number in ("+18048287999", "+18004226237", "+442071838750"):
        assert SPOKEN_NUMBER.fullmatch(spoken_digits(number))
    assert SPOKEN_NUMBER.search("hang up and dial 9 1 1.") is None


def test_a_number_given_as_information_is_said_twice(flow: Flow) -> None:
    _, effects = step(flow, Position("cancer_information_service", "en"), Key("*"))
    lines = render_voice(flow, "en", effects).lines
    assert lines[1:3] == (
        "The number is 1, 800, 4 2 2, 6 2 3 7.",
        "Again, that's 1, 800, 4 2 2, 6 2 3 7.",
    )
    # Before a transfer it is said once, so the call is not held up.
    _, effects = step(flow, Position("cancer_information_service", "en"), Key("1"))
    assert render_voice(flow, "en", effects).lines[1] == "The number is 1, 800, 4 2 2, 6 2 3 7."


def test_render_voice_without_an_ending_hangs_up(features: Flow) -> None:
    turn = render_voice(features, "en", (Say("Hello."),))
    assert turn.ending == "hangup" and turn.lines == ("Hello.",)
    turn = render_voice(features, "en", (TextContacts(("clinic",)), HangUp()), can_text=False)
    assert turn.lines[0] == "Sorry, we can't send a text message to this phone." and not turn.texts
    # The number instead of the text (a landline caller can still write it down).
    assert turn.lines[1:3] == (
        "The first number is 1, 800, 6 3 8, 6 8 3 3.",
        "Again, that's 1, 800, 6 3 8, 6 8 3 3.",
    )
    many = (TextContacts(("clinic", "desk")), HangUp())
    assert len(render_voice(features, "en", many, can_text=False).lines) == 1
    assert render_sms(features, "en", (Say("Bye."), HangUp())).startswith("Bye.")


def test_first_start_announces_keys_once(flow: Flow) -> None:
    _, effects = step(flow, start(flow), Start())
    assert isinstance(effects[-1], Menu) and effects[-1].announce_keys
    _, effects = step(flow, start(flow), Key("*"))
    assert isinstance(effects[-1], Menu) and not effects[-1].announce_keys
