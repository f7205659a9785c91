"""Leaving a message: offered when a contact is closed and after an unanswered transfer; the
caller hears how, is recorded, and hears when to expect a call back; an empty recording brings
the contact's choices back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.flowengine import load_flow
from service.flowengine.effects import (
    Connect,
    HangUp,
    Menu,
    MessageTaken,
    ReadNumber,
    RequestCallBack,
    Say,
    TakeMessage,
)
from service.flowengine.engine import choices, step
from service.flowengine.model import Flow
from service.flowengine.position import (
    DialEnded,
    DialStatus,
    Key,
    Position,
    Recorded,
    Silence,
    Speech,
)
from service.flowengine.render import render_voice

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


TUESDAY_NIGHT = at(2026, 11, 24, 22, 0)
WEDNESDAY_MORNING = at(2026, 11, 25, 10, 0)


@pytest.fixture(scope="module")
def features() -> Flow:
    return load_flow(ROOT / "tests" / "fixtures" / "flows" / "features.yaml")


@pytest.fixture(scope="module")
def shipped() -> Flow:
    return load_flow(ROOT / "flows" / "second-opinion.yaml")


def says(effects: tuple[object, ...]) -> list[str]:
    return [effect.text for effect in effects if isinstance(effect, Say)]


def test_a_caller_at_a_closed_contact_leaves_a_message_and_hears_when_they_will_be_called(
    features: Flow,
) -> None:
    closed, _ = step(features, Position("clinic", "en"), Key("2"), now=TUESDAY_NIGHT)
    assert closed.state == "closed"
    keys = [choice.key for choice in choices(features, closed)]
    assert keys == ["2", "3", "4", "8", "#"]
    recording, effects = step(features, closed, Key("3"), now=TUESDAY_NIGHT)
    assert (recording.state, recording.contact) == ("message", "desk")
    assert effects[-1] == TakeMessage("desk")
    turn = render_voice(features, "en", effects)
    assert turn.ending == "record" and turn.contact == "desk"
    assert turn.lines == (
        "After the tone, please say your name, the best number to reach you, and your message. "
        "Press pound when you are done.",
    )
    done, effects = step(features, recording, Recorded(23), now=TUESDAY_NIGHT)
    assert effects[0] == MessageTaken("desk") and effects[-1] == HangUp()
    assert says(effects)[0] == (
        "Thank you. We got your message. A staff member will call you back tomorrow after 8 a.m."
    )
    assert ReadNumber("desk") in effects
    assert render_voice(features, "en", effects).message == "desk"
    assert done.state == "menu"
    # In Spanish, from the opening on, in words.
    _, effects = step(features, Position("clinic", "es", state="message", contact="desk"),
                      Recorded(5), now=TUESDAY_NIGHT)  # fmt: skip
    assert says(effects)[0] == (
        "Gracias. Recibimos su mensaje. Un miembro del personal le devolverá la llamada "
        "mañana a partir de las 8 de la mañana."
    )


def test_a_message_after_an_unanswered_transfer_is_called_back_as_soon_as_they_can(
    features: Flow,
) -> None:
    dialing, _ = step(features, Position("clinic", "en"), Key("2"), now=WEDNESDAY_MORNING)
    assert dialing.state == "dialing"
    retry, effects = step(features, dialing, DialEnded(DialStatus.NO_ANSWER), now=WEDNESDAY_MORNING)
    menu = effects[-1]
    assert isinstance(menu, Menu)
    assert [(c.key, c.label) for c in menu.choices] == [
        ("1", "try again"),
        ("2", "ask for a call back"),
        ("3", "leave a message"),
        ("8", "get the number by text"),
        ("#", "go back"),
    ]
    recording, _ = step(features, retry, Key("3"), now=WEDNESDAY_MORNING)
    _, effects = step(features, recording, Recorded(40), now=WEDNESDAY_MORNING)
    assert says(effects)[0] == (
        "Thank you. We got your message. A staff member will call you back as soon as they can."
    )
    assert not any(isinstance(effect, RequestCallBack) for effect in effects)


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "can I leave a voicemail"), ("en", "I'd like to leave a message please"),
     ("es", "quiero dejarle un recado"), ("es", "le dejo un mensaje")],
)  # fmt: skip
def test_a_message_can_be_asked_for_in_words(features: Flow, lang: str, words: str) -> None:
    closed, _ = step(features, Position("clinic", lang), Key("2"), now=TUESDAY_NIGHT)
    recording, effects = step(features, closed, Speech(words), now=TUESDAY_NIGHT)
    assert recording.state == "message", (words, says(effects))


def test_asking_for_the_number_by_text_is_not_leaving_a_message(features: Flow) -> None:
    closed, _ = step(features, Position("clinic", "es"), Key("2"), now=TUESDAY_NIGHT)
    after, _ = step(features, closed, Speech("mándeme el número por mensaje de texto"),
                    now=TUESDAY_NIGHT)  # fmt: skip
    assert after.state == "closed"


def test_a_closed_contact_offers_another_that_takes_calls(features: Flow) -> None:
    closed, effects = step(features, Position("clinic", "es"), Key("2"), now=TUESDAY_NIGHT)
    menu = effects[-1]
    assert isinstance(menu, Menu)
    assert ("4", "llamar en su lugar a la clínica") in [(c.key, c.label) for c in menu.choices]
    dialing, effects = step(features, closed, Key("4"), now=TUESDAY_NIGHT)
    assert (dialing.state, dialing.contact) == ("dialing", "clinic")
    assert effects[-1] == Connect("clinic", 0)
    # Said, too.
    dialing, _ = step(features, closed, Speech("llamar a la clínica"), now=TUESDAY_NIGHT)
    assert dialing.contact == "clinic"
    # A key no contact is offered on is a wrong key.
    again, _ = step(features, closed, Key("5"), now=TUESDAY_NIGHT)
    assert again.state == "closed" and again.misses == 1


def test_no_message_brings_the_contacts_choices_back(features: Flow) -> None:
    recording = Position("clinic", "en", state="message", contact="desk")
    again, effects = step(features, recording, Silence(), now=TUESDAY_NIGHT)
    assert again.state == "closed" and says(effects)[0] == "Sorry, we did not get a message."
    assert isinstance(effects[-1], Menu)
    # While the contact is open, the choices after an unanswered transfer.
    again, _ = step(features, recording, Silence(), now=WEDNESDAY_MORNING)
    assert again.state == "retry"
    # A key sent to a recording (a forged URL) is no message either.
    again, _ = step(features, recording, Key("5"), now=WEDNESDAY_MORNING)
    assert again.state == "retry"


def test_a_recording_report_outside_a_message_gives_the_menu(shipped: Flow) -> None:
    position, effects = step(shipped, Position("main", "en"), Recorded(10))
    assert position.state == "menu" and isinstance(effects[-1], Menu)


def test_the_shipped_line_takes_a_message_when_its_coordinator_does_not_answer(
    shipped: Flow,
) -> None:
    dialing, _ = step(shipped, Position("main", "en"), Key("0"))
    retry, _ = step(shipped, dialing, DialEnded(DialStatus.BUSY))
    recording, _ = step(shipped, retry, Key("3"))
    assert recording.state == "message" and recording.contact == shipped.operator
    _, effects = step(shipped, recording, Recorded(12))
    assert effects[0] == MessageTaken(shipped.operator)
