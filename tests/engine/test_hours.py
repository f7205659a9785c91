"""Office hours and closures: whether a contact takes calls, when it opens next, and how that is
said in English and Spanish (the clinic's time zone, across the end of daylight saving time)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.flowengine import load_flow
from service.flowengine.effects import Connect, PlaceCallBack, ReadNumber, Say
from service.flowengine.engine import is_open, step
from service.flowengine.hours import Closure, closure_at, in_hours, next_opening, when_words
from service.flowengine.model import Flow, Hours, OpenHours
from service.flowengine.position import Key, Position, Reply

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
ZONE = "America/New_York"
WEEKDAYS = (0, 1, 2, 3, 4)
OFFICE = Hours(ZONE, (OpenHours(WEEKDAYS, time(8), time(17)),), {"en": "weekdays 8 to 5"})
NIGHTS = Hours(ZONE, (OpenHours((4,), time(22), time(2)),), {"en": "Friday nights"})


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.fixture(scope="module")
def features() -> Flow:
    return load_flow(ROOT / "tests" / "fixtures" / "flows" / "features.yaml")


def with_closures(flow: Flow, *closures: Closure) -> Flow:
    desk = replace(flow.contacts["desk"], closures=closures)
    return replace(flow, contacts={**flow.contacts, "desk": desk})


def says(effects: tuple[object, ...]) -> list[str]:
    return [effect.text for effect in effects if isinstance(effect, Say)]


def test_a_closure_covers_a_date_a_yearly_date_and_the_nth_or_last_weekday() -> None:
    christmas_eve = Closure(ZONE, on=date(2026, 12, 24))
    new_year = Closure(ZONE, month=1, day=1)
    thanksgiving = Closure(ZONE, month=11, weekday=3, nth=4)
    memorial_day = Closure(ZONE, month=5, weekday=0, nth=-1)
    assert christmas_eve.covers(date(2026, 12, 24)) and not christmas_eve.covers(date(2027, 12, 24))
    assert new_year.covers(date(2027, 1, 1)) and new_year.covers(date(2031, 1, 1))
    assert not new_year.covers(date(2027, 1, 2)) and not new_year.covers(date(2027, 2, 1))
    assert thanksgiving.covers(date(2026, 11, 26)) and thanksgiving.covers(date(2027, 11, 25))
    assert not thanksgiving.covers(date(2026, 11, 19))
    assert not thanksgiving.covers(date(2026, 11, 27))
    assert memorial_day.covers(date(2026, 5, 25)) and not memorial_day.covers(date(2026, 5, 18))


def test_an_early_closing_closes_from_its_time_to_the_end_of_the_day() -> None:
    early = Closure(ZONE, on=date(2026, 12, 24), closes_at=time(12))
    assert closure_at((early,), at(2026, 12, 24, 11, 59)) is None
    assert closure_at((early,), at(2026, 12, 24, 12, 0)) is early
    assert closure_at((early,), at(2026, 12, 25, 9, 0)) is None


def test_a_span_past_midnight_is_open_that_evening_and_the_next_small_hours() -> None:
    assert in_hours(NIGHTS, at(2026, 12, 4, 23, 0))  # Friday 11 p.m.
    assert in_hours(NIGHTS, at(2026, 12, 5, 1, 30))  # Saturday 1:30 a.m.
    assert not in_hours(NIGHTS, at(2026, 12, 5, 2, 0))
    assert not in_hours(NIGHTS, at(2026, 12, 4, 21, 0))
    assert not in_hours(NIGHTS, at(2026, 12, 3, 23, 0))  # Thursday


def test_the_next_opening_skips_closed_days_and_keeps_to_the_clinics_clock() -> None:
    friday_evening = at(2026, 12, 4, 18, 0)
    assert next_opening(OFFICE, (), friday_evening) == at(2026, 12, 7, 8, 0)
    monday_off = Closure(ZONE, on=date(2026, 12, 7))
    assert next_opening(OFFICE, (monday_off,), friday_evening) == at(2026, 12, 8, 8, 0)
    # Across the end of daylight saving time (1 November 2026): 8 a.m. in New York both sides.
    saturday = at(2026, 10, 31, 12, 0)
    opening = next_opening(OFFICE, (), saturday)
    assert opening is not None and opening.astimezone(UTC).hour == 13  # EST: UTC-5
    assert next_opening(OFFICE, (), at(2026, 10, 30, 18, 0)) == at(2026, 11, 2, 8, 0)
    # No hours, a snow day: open again at midnight.
    snow = Closure(ZONE, on=date(2026, 12, 8))
    assert next_opening(None, (snow,), at(2026, 12, 8, 10, 0)) == at(2026, 12, 9, 0, 0)
    # Closed every day for longer than anyone looks ahead: no opening to say.
    every_day = tuple(Closure(ZONE, on=date(2026, 12, day)) for day in range(1, 32))
    assert next_opening(OFFICE, every_day, at(2026, 12, 1, 9, 0)) is None


@pytest.mark.parametrize(
    ("moment", "en", "es"),
    [
        (at(2026, 12, 4, 13, 0), "today at 1 p.m.", "hoy a la 1 de la tarde"),
        (at(2026, 12, 5, 8, 30), "tomorrow at 8:30 a.m.", "mañana a las 8:30 de la mañana"),
        (at(2026, 12, 7, 12, 0), "Monday at noon", "el lunes a las 12 del mediodía"),
        (at(2026, 12, 10, 0, 0), "Thursday at midnight", "el jueves a la medianoche"),
        (at(2026, 12, 10, 21, 0), "Thursday at 9 p.m.", "el jueves a las 9 de la noche"),
        (
            at(2026, 12, 14, 8, 0),
            "Monday, December 14, at 8 a.m.",
            "el lunes 14 de diciembre a las 8 de la mañana",
        ),
    ],
)
def test_an_opening_is_said_in_words_in_each_language(moment: datetime, en: str, es: str) -> None:
    now = at(2026, 12, 4, 9, 0)  # a Friday
    assert when_words(moment, now, "en") == en
    assert when_words(moment, now, "es") == es


def test_a_caller_asking_for_a_closed_contact_hears_its_closure_and_the_next_opening(
    features: Flow,
) -> None:
    closed = with_closures(
        features,
        Closure(ZONE, on=date(2026, 11, 25),
                message={"en": "We are closed for the holiday.", "es": "Cerramos por el feriado."}),
    )  # fmt: skip
    wednesday = at(2026, 11, 25, 10, 0)  # in the desk's hours, but a closure
    assert not is_open(closed.contacts["desk"], wednesday)
    _, effects = step(closed, Position("clinic", "en"), Key("2"), now=wednesday)
    assert not any(isinstance(effect, Connect) for effect in effects)
    assert says(effects)[:3] == [
        "The front desk is closed right now.",
        "We are closed for the holiday.",
        "They are open again tomorrow at 8 a.m.",
    ]
    assert ReadNumber("desk") in effects
    _, effects = step(closed, Position("clinic", "es"), Key("2"), now=wednesday)
    assert "Cerramos por el feriado." in says(effects)
    assert "Vuelve a abrir mañana a las 8 de la mañana." in says(effects)
    # A texter is told the same, and no call back is placed.
    _, effects = step(closed, Position("clinic", "en", "sms"), Reply("2"), now=wednesday)
    assert not any(isinstance(effect, PlaceCallBack) for effect in effects)
    # The day after, the desk takes calls again.
    _, effects = step(closed, Position("clinic", "en"), Key("2"), now=at(2026, 11, 26, 10, 0))
    assert effects[-1] == Connect("desk", 0)


def test_a_contact_closed_for_weeks_says_its_hours_instead(features: Flow) -> None:
    weeks = tuple(Closure(ZONE, on=date(2026, 12, day)) for day in range(1, 32))
    closed = with_closures(features, *weeks)
    _, effects = step(closed, Position("clinic", "en"), Key("2"), now=at(2026, 12, 2, 10, 0))
    assert says(effects)[:2] == [
        "The front desk is closed right now.",
        "Hours: weekdays 8 to 5.",
    ]


def test_a_flow_with_a_closure_depends_on_the_time(features: Flow) -> None:
    shipped = load_flow(ROOT / "flows" / "second-opinion.yaml")
    assert not shipped.keeps_hours
    new_year = (Closure(ZONE, month=1, day=1),)
    operator = replace(shipped.contacts[shipped.operator], closures=new_year)
    closed = replace(shipped, contacts={**shipped.contacts, shipped.operator: operator})
    assert closed.keeps_hours
    assert not is_open(operator, at(2027, 1, 1, 10, 0)) and is_open(operator, at(2027, 1, 2, 10, 0))
    assert is_open(operator, None)


@pytest.mark.parametrize(
    ("moment", "en", "es"),
    [
        (at(2026, 12, 7, 8, 0), "Monday after 8 a.m.", "el lunes a partir de las 8 de la mañana"),
        (at(2026, 12, 5, 13, 0), "tomorrow after 1 p.m.", "mañana a partir de la 1 de la tarde"),
        (
            at(2026, 12, 7, 12, 0),
            "Monday after 12 noon",
            "el lunes a partir de las 12 del mediodía",
        ),
    ],
)
def test_a_call_back_is_promised_from_the_opening_on(moment: datetime, en: str, es: str) -> None:
    now = at(2026, 12, 4, 18, 0)  # a Friday evening
    assert when_words(moment, now, "en", after=True) == en
    assert when_words(moment, now, "es", after=True) == es


def test_a_caller_who_finds_a_contact_closed_may_ask_for_a_call_back_once_it_opens(
    features: Flow,
) -> None:
    from service.flowengine.effects import HangUp, RequestCallBack, TextContacts
    from service.flowengine.engine import choices

    tuesday_night = at(2026, 11, 24, 22, 0)
    waiting, effects = step(features, Position("clinic", "en"), Key("2"), now=tuesday_night)
    assert (waiting.state, waiting.contact) == ("closed", "desk")
    assert [choice.label for choice in choices(features, waiting)] == [
        "ask for a call back once they open", "leave a message", "call the clinic instead",
        "get the number by text", "go back",
    ]  # fmt: skip
    _, effects = step(features, waiting, Key("2"), now=tuesday_night)
    assert effects[0] == RequestCallBack("desk") and effects[-1] == HangUp()
    assert says(effects)[0] == (
        "Thank you. A staff member will call you back at the number you are calling from, "
        "tomorrow after 8 a.m."
    )
    _, effects = step(features, replace(waiting, lang="es"), Key("2"), now=tuesday_night)
    assert "mañana a partir de las 8 de la mañana" in says(effects)[0]
    _, effects = step(features, waiting, Key("8"), now=tuesday_night)
    assert TextContacts(("desk",)) in effects
    back, _ = step(features, waiting, Key("#"), now=tuesday_night)
    assert back.state == "menu" and back.node == "clinic"
    again, _ = step(features, waiting, Key("*"), now=tuesday_night)  # the choices again
    assert again.state == "closed"
    again, _ = step(features, waiting, Key("1"), now=tuesday_night)  # not a choice here
    assert again.state == "closed" and again.misses == 1


def test_a_contact_closed_for_weeks_leaves_the_caller_in_the_menu(features: Flow) -> None:
    weeks = tuple(Closure(ZONE, on=date(2026, 12, day)) for day in range(1, 32))
    position, _ = step(
        with_closures(features, *weeks), Position("clinic", "en"), Key("2"),
        now=at(2026, 12, 2, 10, 0),
    )  # fmt: skip
    assert position.state == "menu"
    # It heard the number: silences from here end with it and a goodbye, not round again.
    assert position.heard
