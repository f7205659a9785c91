"""Call screening, on SQLite and PostgreSQL: a coordinator who screens is dialed with a whisper
(`<Number url>`); a transfer that Twilio reports `completed` is a person reached only when
whoever answered pressed 1, otherwise the caller hears that nobody answered and gets the
choices (a message among them), and the call is recorded as not answered."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.main import create_app
from service.models import Call
from tests.support import AppClient, app_client
from tests.voice.caller import Caller
from tests.voice.conftest import REPO_ROOT, voice_settings

COORDINATOR = "+18048287999"


@pytest.fixture
def screening_app(database: Database, tmp_path: Path) -> FastAPI:
    """The shipped line, its coordinator screening calls."""
    flows = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "flows", flows)
    flow = flows / "second-opinion.yaml"
    text = flow.read_text()
    marker = "    words: {en: [coordinator, referral]"
    assert text.count(marker) == 1
    flow.write_text(text.replace(marker, "    screen: true\n" + marker))
    url = database.url.render_as_string(hide_password=False)
    return create_app(voice_settings(tmp_path, url, flows_dir=flows))


@pytest.fixture
def client(screening_app: FastAPI) -> Iterator[AppClient]:
    with app_client(screening_app) as client:
        yield client


def dial_coordinator(client: AppClient, sid: str, caller_number: str) -> tuple[Caller, str]:
    caller = Caller(client, call_sid=sid, caller=caller_number)
    caller.call()
    heard = caller.press("0")
    assert heard.numbers == [COORDINATOR]
    return caller, number_url(heard.xml)


def number_url(xml: str) -> str:
    """The `<Number url>` of a screened transfer."""
    number = ET.fromstring(xml).find("Dial/Number")
    assert number is not None and number.get("method") == "POST"
    return number.get("url") or ""


def answer(client: AppClient, url: str, child: str, **extra: str) -> str:
    """Twilio asks the whisper's TwiML for the answered leg (its own CallSid)."""
    params = {"CallSid": child, "From": "+18045550100", "To": COORDINATOR, **extra}
    response = client.twilio(url, params)
    assert response.status_code == 200, response.text
    return response.text


def outcome(database: Database, sid: str) -> str:
    with database.session() as session:
        return session.scalars(select(Call.outcome).where(Call.call_sid == sid)).one()


def test_a_screened_transfer_taken_with_1_is_a_person_reached(
    client: AppClient, screening_app: FastAPI, database: Database
) -> None:
    sid = "CA" + "5" * 32
    caller, url = dial_coordinator(client, sid, "+18045552001")
    query = parse_qs(urlsplit(url).query)
    assert query["call"] == [sid] and query["contact"] == ["coordinator"]
    whisper = answer(client, url, "CA" + "6" * 32)
    gather = parse_whisper(whisper)
    assert gather["words"] == ["Call from VCU Massey Second Opinion Line. Press 1 to take it."] * 2
    taken = answer(client, gather["action"], "CA" + "6" * 32, Digits="1")
    assert "<Hangup" not in taken  # nothing: the parties are connected
    heard = caller.dial_ends("completed", duration="180")
    assert heard.hangup and heard.words == ["Thank you for calling. Take care. Goodbye."]
    caller.hang_up()
    assert screening_app.state.spool.drain(15)
    assert outcome(database, sid) == "reached"


def test_a_machine_or_no_key_is_not_a_person_reached(
    client: AppClient, screening_app: FastAPI, database: Database
) -> None:
    sid = "CA" + "7" * 32
    caller, url = dial_coordinator(client, sid, "+18045552002")
    gather = parse_whisper(answer(client, url, "CA" + "8" * 32))
    # An answering machine presses nothing: the gather reports no key, the leg is hung up.
    declined = answer(client, gather["action"], "CA" + "8" * 32)
    assert "<Hangup" in declined
    heard = caller.dial_ends("completed", duration="12")  # what Twilio reports all the same
    assert heard.words[0] == "No one answered."
    assert "To leave a message, press 3." in heard.words
    caller.hang_up()
    assert screening_app.state.spool.drain(15)
    assert outcome(database, sid) == "not-answered"


def test_the_whisper_names_a_callers_other_language(client: AppClient) -> None:
    caller = Caller(client, call_sid="CA" + "9" * 32, caller="+18045552003")
    caller.call()
    caller.press("9")
    heard = caller.press("0")
    gather = parse_whisper(answer(client, number_url(heard.xml), "CA" + "a" * 32))
    assert gather["words"][0] == (
        "Call from VCU Massey Second Opinion Line, a caller who speaks Spanish. Press 1 to take it."
    )


def test_a_contact_that_does_not_screen_is_dialed_plainly(app: FastAPI) -> None:
    with app_client(app) as plain:
        caller = Caller(plain)
        caller.call()
        heard = caller.press("0")
        assert 'url="' not in heard.xml and heard.numbers == [COORDINATOR]


def parse_whisper(xml: str) -> dict[str, Any]:
    root = ET.fromstring(xml)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1", xml
    assert gather.get("actionOnEmptyResult") == "true" and gather.get("timeout") == "8"
    assert root[-1].tag == "Hangup"  # no key at all: the leg ends, not a person
    return {
        "action": gather.get("action", ""),
        "words": ["".join(say.itertext()) for say in gather.findall("Say")],
    }


def test_when_nothing_can_tell_whether_it_was_taken_twilios_word_stands(tmp_path: Path) -> None:
    """The database away and this host's spool without the key: None (the webhook then keeps
    Twilio's `completed`: the line fails open to a person reached)."""
    from service.calls.screening import was_taken
    from service.spool.spool import Spool
    from service.stores import STORES

    away = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1")
    spool = Spool(tmp_path / "spool", lambda: away, stores=STORES)
    try:
        assert was_taken(spool, lambda: away, "CA" + "b" * 32) is None
    finally:
        spool.close()
        away.dispose()
