"""Fixtures for the voice line: an app on a migrated database and a scripted caller.

`client`/`caller` run on SQLite only (the tests about what a caller hears); `db_client`/
`db_caller` run on SQLite and PostgreSQL (the tests about what is recorded or queued).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from service.config import Settings
from service.db import Database, set_database
from service.main import create_app
from tests.support import PUBLIC_BASE, TEST_AUTH_TOKEN, AppClient, app_client
from tests.voice.caller import Caller

REPO_ROOT = Path(__file__).resolve().parents[2]


def voice_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "public_base_url": PUBLIC_BASE,
        "database_url": database_url,
        "run_worker_in_server": False,
        "flows_dir": REPO_ROOT / "flows",
        "var_dir": tmp_path / "var",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database installed as the app's (for tests that need one backend)."""
    path = tmp_path / "voice.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    previous = set_database(db)
    try:
        yield db
    finally:
        set_database(previous)
        db.dispose()


@pytest.fixture
def app(sqlite_database: Database, tmp_path: Path) -> FastAPI:
    url = sqlite_database.url.render_as_string(hide_password=False)
    return create_app(voice_settings(tmp_path, url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[AppClient]:
    with app_client(app) as client:
        yield client


@pytest.fixture
def caller(client: AppClient) -> Caller:
    return Caller(client)


@pytest.fixture
def db_app(database: Database, tmp_path: Path) -> FastAPI:
    url = database.url.render_as_string(hide_password=False)
    return create_app(voice_settings(tmp_path, url))


@pytest.fixture
def db_client(db_app: FastAPI) -> Iterator[AppClient]:
    with app_client(db_app) as client:
        yield client


@pytest.fixture
def db_caller(db_client: AppClient) -> Caller:
    return Caller(db_client)
