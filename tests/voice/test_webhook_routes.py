"""Twilio's webhooks are plain routes: every middleware of the app is on them too, even one added
after the app is built, and they answer errors as every route does."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.db import Database
from service.main import create_app
from tests.support import app_client
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER
from tests.voice.conftest import voice_settings

CALL = {"CallSid": "CA" + "3" * 32, "From": CALLER_NUMBER, "To": LINE_NUMBER}


class Seen:
    """A middleware added once the app is built: the paths that went through it."""

    paths: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Seen.paths.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@pytest.fixture
def app(sqlite_database: Database, tmp_path: Path) -> FastAPI:
    app = create_app(voice_settings(tmp_path, sqlite_database.url.render_as_string(False)))
    Seen.paths = []
    app.add_middleware(Seen)
    return app


def test_a_middleware_added_after_the_app_is_built_is_on_the_webhooks_too(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with app_client(app) as client, caplog.at_level(logging.INFO, "phoneline.request"):
        answer = client.twilio("/twilio/voice", {**CALL, "CallStatus": "ringing"})
        assert client.get("/healthz").status_code == 200
        not_allowed = client.get("/twilio/voice")
    assert answer.status_code == 200 and "<Gather" in answer.text
    assert answer.headers["x-request-id"]  # RequestLog ran
    assert Seen.paths == ["POST /twilio/voice", "GET /healthz", "GET /twilio/voice"]
    assert not_allowed.status_code == 405
    lines = [r for r in caplog.records if r.name == "phoneline.request"]
    first = lines[0].__dict__
    assert (first["route"], first["status"], first["call_sid"]) == (
        "/twilio/voice",
        200,
        CALL["CallSid"],
    )


def test_a_refused_webhook_gets_a_json_detail(app: FastAPI) -> None:
    with app_client(app) as client:
        forged = client.twilio("/twilio/voice", CALL, token="not-the-token")
        unsigned = client.post("/twilio/voice", data=CALL)
    assert forged.status_code == 403
    assert forged.json() == {"detail": "Invalid X-Twilio-Signature"}
    assert unsigned.json() == {"detail": "Missing X-Twilio-Signature"}


def test_a_handler_that_raises_gets_a_500_and_an_error_line(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: object) -> None:
        raise RuntimeError("boom")

    from service.texts import router as sms_router

    monkeypatch.setitem(sms_router.WEBHOOKS, "/twilio/sms/status", broken)
    app = create_app(app.state.settings)  # built with the broken handler
    # (The server, uvicorn, logs the exception; the test's client would raise it instead.)
    with app_client(app, raise_app_exceptions=False) as client:
        answer = client.twilio("/twilio/sms/status", {"MessageSid": "SM" + "4" * 32})
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(getattr(r, "status", None) == 500 for r in failed)  # the request's own line
