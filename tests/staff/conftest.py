"""Fixtures for the staff dashboard: an app on a migrated database (SQLite and PostgreSQL),
staff accounts, a clock the tests move, and helpers to sign in and to record calls and texts
through the recording API the webhooks use."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.config import Settings
from service.db import Database
from service.main import create_app
from service.models import CallEventKind, StaffUser
from service.staff.auth import hash_password
from tests.recorder import Recorder
from tests.support import TEST_AUTH_TOKEN, AppClient, app_client

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
ADMIN = "ada"
VIEWER = "vic"
LINE = "+18045550100"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def staff_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "database_url": database_url,
        "run_worker_in_server": False,
        "flows_dir": REPO_ROOT / "flows",
        "var_dir": tmp_path / "var",
        "secret_key": "staff-test-secret-key-0123456789",
        # The tests read times as UTC unless they set the clinic's zone (default New York).
        "timezone": "UTC",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class Clock:
    """The dashboard's clock (app.state.staff_clock), moved by the tests."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff_app(database: Database, tmp_path: Path, clock: Clock) -> FastAPI:
    url = database.url.render_as_string(hide_password=False)
    app = create_app(staff_settings(tmp_path, url))
    app.state.staff_clock = clock
    with database.session() as session:
        # One argon2 hash for every test (hashing takes a fifth of a second).
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
        session.add(StaffUser(username=VIEWER, password_hash=password_hash(), role="viewer"))
    return app


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def client(staff_app: FastAPI) -> Iterator[AppClient]:
    with app_client(staff_app) as client:
        yield client


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, f"no CSRF token on the page: {page.text[:500]}"
    return match.group(1)


def sign_in(client: AppClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/staff/login")
    assert form.status_code == 200
    return client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form)},
    )


def signed_in(client: AppClient, username: str) -> AppClient:
    response = sign_in(client, username)
    assert response.status_code == 303, response.text
    return client


def post_form(client: AppClient, page: str, action: str, **fields: str) -> httpx.Response:
    """Open `page`, take its CSRF token, and post `fields` to `action` as the browser would."""
    token = csrf_of(client.get(page))
    return client.post(action, data={"csrf_token": token, **fields})


@dataclass
class RecordedCall:
    sid: str
    caller: str
    started: datetime


def record_call(
    recorder: Recorder,
    sid: str,
    caller: str,
    started: datetime,
    *,
    language: str = "en",
    keys: Sequence[tuple[str, str, str]] = (),
    transfer: tuple[str, str, str] | None = None,
    duration: int | None = 30,
    flow_hash: str = "abc123",
    line: str = LINE,
) -> RecordedCall:
    """A call to `line` as the voice webhooks record it: started, each (menu, key, next menu),
    a transfer (contact, number, dial status) and the final status callback."""
    at = started
    recorder.call_started(sid, caller, line, language=language, flow_hash=flow_hash, at=at)
    recorder.call_event(sid, CallEventKind.MENU, node="main", at=at)
    for menu, key, next_menu in keys:
        at += timedelta(seconds=5)
        recorder.call_event(sid, CallEventKind.KEY, node=menu, detail=key, at=at)
        if next_menu:
            recorder.call_event(sid, CallEventKind.MENU, node=next_menu, at=at)
    if transfer is not None:
        contact, number, status = transfer
        at += timedelta(seconds=5)
        recorder.call_transferred(sid, contact, number, node="reach", at=at)
        at += timedelta(seconds=20)
        recorder.dial_result(sid, status, contact=contact, number=number, node="reach", at=at)
    if duration is not None:
        recorder.call_status(
            sid, "completed", duration=duration, at=started + timedelta(seconds=duration)
        )
    return RecordedCall(sid, caller, started)
