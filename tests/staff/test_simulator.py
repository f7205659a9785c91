"""The browser simulator: plain forms, the same engine, nothing recorded."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import func, select

from service.db import Database
from service.models import Call, Message
from tests.staff.conftest import VIEWER, csrf_of, signed_in
from tests.support import AppClient

STATE = re.compile(r'name="state" value="([^"]+)"')


def transcript(page: httpx.Response) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r'<li class="(?:line|you)">(.*?)</li>', page.text, re.S)
    ]


class Browser:
    def __init__(self, client: AppClient) -> None:
        self.client = client
        self.page = client.get("/staff/simulator")
        assert self.page.status_code == 200

    def submit(self, **fields: str) -> httpx.Response:
        data = {"csrf_token": csrf_of(self.page), **fields}
        state = STATE.search(self.page.text)
        if state and "start" not in fields:
            data["state"] = state.group(1)
        self.page = self.client.post("/staff/simulator", data=data)
        assert self.page.status_code == 200, self.page.text
        return self.page


def test_a_caller_reaches_the_coordinator(client: AppClient, database: Database) -> None:
    signed_in(client, VIEWER)
    browser = Browser(client)
    page = browser.submit(start="1", channel="voice", lang="en")
    lines = transcript(page)
    assert lines[0] == "Line: Para español, oprima 9."  # Spanish is offered first
    assert "For emergencies, hang up and dial 9 1 1." in lines[1]
    assert 'value="0"' in page.text and 'name="silence"' in page.text
    browser.submit(key="2")
    browser.submit(key="1")
    page = browser.submit(key="1")
    lines = transcript(page)
    assert "You: pressed 2" in lines
    assert "Line: [connects to +18048287999]" in lines
    # Dialing: the buttons are how the transfer ended.
    for status in ("completed", "busy", "no-answer", "failed", "canceled"):
        assert f'name="dial" value="{status}"' in page.text
    assert 'name="key"' not in page.text
    page = browser.submit(dial="no-answer")
    assert "You: the transfer ended: no-answer" in transcript(page)
    with database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 0


def test_silence_three_times_reaches_a_person(client: AppClient) -> None:
    signed_in(client, VIEWER)
    browser = Browser(client)
    browser.submit(start="1", channel="voice", lang="en")
    for _ in range(3):
        page = browser.submit(silence="1")
    lines = transcript(page)
    assert lines.count("You: (silence)") == 3
    assert "Line: [connects to +18048287999]" in lines


def test_a_texter_in_spanish(client: AppClient, database: Database) -> None:
    signed_in(client, VIEWER)
    browser = Browser(client)
    page = browser.submit(start="1", channel="sms", lang="es")
    assert 'name="text"' in page.text
    first = transcript(page)[0]
    assert "Línea de Segunda Opinión" in first
    page = browser.submit(text="2")
    assert "You: 2" in transcript(page)
    assert "Si su médico no puede recomendarle a un colega" in "\n".join(transcript(page))
    page = browser.submit(text="1")
    lines = transcript(page)
    reply = "\n".join(lines[lines.index("You: 1") :])
    assert "(804) 828-7999" in reply
    page = browser.submit(text="STOP")
    assert "You: STOP" in transcript(page)
    with database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_tampered_simulation_is_refused_cleanly(client: AppClient) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/simulator")
    response = client.post(
        "/staff/simulator",
        data={"csrf_token": csrf_of(page), "state": "W10.forged", "key": "1"},
    )
    assert response.status_code == 400
    assert "Simulation expired" in response.text
