"""Office hours (a flow feature the shipped flow does not use): a closed contact is not dialed;
the caller hears when it opens again and its number, and may ask for a call back once it opens;
a silent caller outside hours is told goodbye."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.calls import router as voice_router
from service.db import Database
from service.main import create_app
from tests.support import app_client
from tests.voice.caller import Caller
from tests.voice.conftest import REPO_ROOT, voice_settings

SUNDAY_NIGHT = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # 03:00 in New York: the desk is closed
MONDAY_MORNING = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 10:00 in New York: open


@pytest.fixture
def features_caller(
    sqlite_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Caller, pytest.MonkeyPatch]]:
    settings = voice_settings(
        tmp_path,
        str(sqlite_database.url),
        flows_dir=REPO_ROOT / "tests" / "fixtures" / "flows",
        flow_file="features.yaml",
    )
    with app_client(create_app(settings)) as client:
        yield Caller(client), monkeypatch


def test_a_closed_contact_is_not_dialed(features_caller: tuple[Caller, pytest.MonkeyPatch]) -> None:
    caller, monkeypatch = features_caller
    monkeypatch.setattr(voice_router, "clock", lambda: SUNDAY_NIGHT)
    caller.call()
    heard = caller.press("0")
    assert heard.dial is None and heard.gather is not None
    assert "The front desk is closed right now." in heard.words
    assert "They are open again tomorrow at 8 a.m." in heard.words  # Monday morning
    monkeypatch.setattr(voice_router, "clock", lambda: MONDAY_MORNING)
    heard = caller.press("0")
    assert heard.dial is not None and heard.words[0] == "Connecting you to the front desk."


def test_a_silent_caller_outside_hours_hears_it_is_closed_and_then_goodbye(
    features_caller: tuple[Caller, pytest.MonkeyPatch],
) -> None:
    """Three silences at the start do not put the caller through to a closed office: they
    hear that it is closed, when it opens, and its choices (a message among them); three more
    silences end the call with its number and a goodbye, never in a loop."""
    caller, monkeypatch = features_caller
    monkeypatch.setattr(voice_router, "clock", lambda: SUNDAY_NIGHT)
    caller.call()
    caller.silence()
    caller.silence()
    heard = caller.silence()
    assert not caller.dialed and heard.gather is not None
    assert "The front desk is closed right now." in heard.words
    assert "To leave a message, press 3." in heard.words
    caller.silence()
    caller.silence()
    heard = caller.silence()
    assert heard.hangup and not caller.dialed
    assert heard.words[-1] == "Thank you for calling. Take care. Goodbye."
    assert "You can call the front desk." in heard.words
    assert "The number is 8 0 4, 8 2 8, 7 9 9 9." in heard.words


def test_a_caller_who_finds_it_closed_asks_for_a_call_back_once_it_opens(
    features_caller: tuple[Caller, pytest.MonkeyPatch], sqlite_database: Database
) -> None:
    from sqlalchemy import select

    from service.followups.sweep import sweep_follow_ups
    from service.models import CallEvent, FollowUp

    caller, monkeypatch = features_caller
    monkeypatch.setattr(voice_router, "clock", lambda: SUNDAY_NIGHT)
    caller.call()
    heard = caller.press("0")
    assert heard.dial is None
    assert "To ask for a call back once they open, press 2." in heard.words
    assert "To get the number by text, press 8." in heard.words
    heard = caller.press("2")
    assert heard.hangup and not caller.dialed
    assert heard.words[0] == (
        "Thank you. A staff member will call you back at the number you are calling from, "
        "tomorrow after 8 a.m."
    )
    caller.hang_up()  # the client waits for the spool to write what each request recorded
    with sqlite_database.session(read_only=True) as session:
        details = session.scalars(
            select(CallEvent.detail).where(CallEvent.kind == "callback_request")
        ).all()
    assert details == ["closed:desk"]
    with sqlite_database.session() as session:
        sweep_follow_ups(session, SUNDAY_NIGHT + timedelta(minutes=5))
    with sqlite_database.session(read_only=True) as session:
        (item,) = session.scalars(select(FollowUp)).all()
    assert item.reason == "asked-after-hours"  # "Asked for a call back after hours" on the list
