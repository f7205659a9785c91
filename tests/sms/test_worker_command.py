"""`phoneline worker`: sends what is due (`--once` for one pass); refuses to run without Twilio
credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.config import Settings, get_settings
from service.db import Database
from service.models import OutboxKind
from service.outbound.outbox import enqueue
from tests.sms.conftest import ACCOUNT_SID, LINE, TEXTER, FakeTwilio


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, fake_twilio: FakeTwilio
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("TWILIO_API_BASE", fake_twilio.url)
    # The command configures the process's logging onto CliRunner's stderr, which is closed
    # after the run; later log lines (other tests) would then fail to write.
    monkeypatch.setattr("service.logs.configure_logging", lambda level="info": {})
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("environment")
def test_worker_once_sends_what_is_due(database: Database, fake_twilio: FakeTwilio) -> None:
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "your numbers", from_number=LINE)
    result = CliRunner().invoke(cli_app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 1, retrying 0, failed 0, suppressed 0" in result.output
    assert [r.form["Body"] for r in fake_twilio.requests] == ["your numbers"]


@pytest.mark.usefixtures("environment")
def test_worker_without_credentials_says_so(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli_app, ["worker", "--once"])
    assert result.exit_code == 1
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set" in result.output
