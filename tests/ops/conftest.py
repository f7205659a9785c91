"""Fixtures for the production-readiness tests: an app on a migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from service.config import Settings
from service.db import Database
from service.main import create_app
from tests.support import PUBLIC_BASE, TEST_AUTH_TOKEN, AppClient, app_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": "AC" + "0" * 32,
        "public_base_url": PUBLIC_BASE,
        "secret_key": "test-secret-key-for-the-ops-tests",
        "flows_dir": REPO_ROOT / "flows",
        "var_dir": tmp_path / "var",
        "run_worker_in_server": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return make_settings(tmp_path, database.url.render_as_string(hide_password=False))


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[AppClient]:
    with app_client(app) as client:
        yield client
