"""`phoneline staff add|list|disable|enable|rollup` (and `purge`'s refusal of an age it cannot
use)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.db import Database
from service.models import AuditEntry, StaffUser, utcnow
from service.staff.auth import sign_in
from service.staff.rollup import MAX_DAYS, PART_BEHIND
from tests.recorder import Recorder
from tests.staff.conftest import NOW, record_call

PASSWORD = "a long enough passphrase"


@pytest.fixture
def runner(database: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()  # type: ignore[misc]
    get_settings.cache_clear()


def test_add_list_and_disable(runner: CliRunner, database: Database) -> None:
    result = runner.invoke(
        app, ["staff", "add", "Grace", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "Added admin grace." in result.output
    result = runner.invoke(app, ["staff", "add", "linus"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with database.session() as session:
        grace = session.scalars(select(StaffUser).where(StaffUser.username == "grace")).one()
        assert grace.role == "admin"
        assert grace.password_hash.startswith("$argon2id$")
        assert PASSWORD not in grace.password_hash
        assert sign_in(session, "grace", PASSWORD, "127.0.0.1", NOW).user is not None
    result = runner.invoke(app, ["staff", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("grace\tadmin\tactive\tlast sign-in 2026-11-24 15:00 UTC")
    assert lines[1] == "linus\tviewer\tactive\tlast sign-in never\tevery line"
    result = runner.invoke(app, ["staff", "disable", "linus"])
    assert result.exit_code == 0 and "Disabled linus." in result.output
    assert "linus\tviewer\tdisabled" in runner.invoke(app, ["staff", "list"]).output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["staff", "add", "ann", "--password-stdin"], "short\n", "at least 12 characters"),
        (["staff", "add", "ann"], f"{PASSWORD}\n{PASSWORD}x\n", "The two passwords differ"),
        (
            ["staff", "add", "ann", "--role", "owner", "--password-stdin"],
            PASSWORD,
            "viewer, navigator, editor or admin",
        ),
        (["staff", "disable", "nobody"], "", "there is no staff account named 'nobody'"),
    ],
)
def test_refusals(
    runner: CliRunner, database: Database, args: list[str], stdin: str, message: str
) -> None:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    with database.session(read_only=True) as session:
        assert session.scalars(select(StaffUser)).all() == []


def test_a_username_is_taken_once(runner: CliRunner) -> None:
    args = ["staff", "add", "ann", "--password-stdin"]
    assert runner.invoke(app, args, input=PASSWORD).exit_code == 0
    result = runner.invoke(app, ["staff", "add", "ANN", "--password-stdin"], input=PASSWORD)
    assert result.exit_code == 1
    assert "there is already a staff account named 'ann'" in result.output


def test_purge_refuses_an_age_past_a_century(runner: CliRunner) -> None:
    result = runner.invoke(app, ["purge", "--older-than", "99999999d"])
    assert result.exit_code == 2
    assert "at most 36500d" in result.output


def add_account(runner: CliRunner, name: str, role: str = "viewer") -> None:
    args = ["staff", "add", name, "--role", role, "--password-stdin"]
    result = runner.invoke(app, args, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output


def audited(database: Database, action: str) -> list[tuple[str, str | None]]:
    with database.session(read_only=True) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return [(entry.actor, entry.detail) for entry in entries]


def test_the_last_active_admin_cannot_be_disabled(runner: CliRunner, database: Database) -> None:
    add_account(runner, "grace", "admin")
    result = runner.invoke(app, ["staff", "disable", "grace"])
    assert result.exit_code == 1
    assert (
        "Not changed: grace is the last active administrator; add or enable another "
        "administrator first." in result.output
    )
    assert "grace\tadmin\tactive" in runner.invoke(app, ["staff", "list"]).output
    add_account(runner, "linus", "admin")
    assert runner.invoke(app, ["staff", "disable", "grace"]).exit_code == 0
    result = runner.invoke(app, ["staff", "disable", "linus"])  # now linus is the last one
    assert result.exit_code == 1 and "linus is the last active administrator" in result.output
    assert audited(database, "disable-staff") == [("system", "grace")]


def test_enable_lets_a_disabled_account_sign_in_again(
    runner: CliRunner, database: Database
) -> None:
    add_account(runner, "linus")
    assert runner.invoke(app, ["staff", "disable", "linus"]).exit_code == 0
    with database.session() as session:
        assert sign_in(session, "linus", PASSWORD, "127.0.0.1", NOW).user is None
    result = runner.invoke(app, ["staff", "enable", "linus"])
    assert result.exit_code == 0 and "Enabled linus." in result.output
    assert "linus\tviewer\tactive" in runner.invoke(app, ["staff", "list"]).output
    with database.session() as session:
        assert sign_in(session, "linus", PASSWORD, "127.0.0.2", NOW).user is not None
    assert audited(database, "enable-staff") == [("system", "linus")]
    result = runner.invoke(app, ["staff", "enable", "nobody"])
    assert result.exit_code == 1
    assert "Not changed: there is no staff account named 'nobody'." in result.output


def test_rollup_rolls_up_the_year_and_today_so_far(
    runner: CliRunner, database: Database, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`phoneline staff rollup` rolls up every day of the longest range, and today up to a
    whole hour at least an hour ago (in TIMEZONE), at once."""
    monkeypatch.setenv("TIMEZONE", "Asia/Kolkata")
    get_settings.cache_clear()
    zone = ZoneInfo("Asia/Kolkata")
    record_call(recorder, "CA" + "1" * 32, "+18045550101", utcnow() - timedelta(days=3))

    def today_part(now: datetime) -> str:
        until = (now - PART_BEHIND).replace(minute=0, second=0, microsecond=0).astimezone(zone)
        return f" Today up to {until:%H:%M}." if until.date() == now.astimezone(zone).date() else ""

    before = today_part(utcnow())
    result = runner.invoke(app, ["staff", "rollup"])
    after = today_part(utcnow())  # (an hour may begin meanwhile)
    assert result.exit_code == 0, result.output
    # (The day of the call, written just now, is counted again at each run: one changed less
    # than MARGIN before a run may have committed after it.)
    found = re.fullmatch(
        rf"Overview rollup \(Asia/Kolkata\): {MAX_DAYS} days added, [0-9]+ counted again\.(.*)\n",
        result.output,
    )
    assert found and found.group(1) in (before, after), result.output
    result = runner.invoke(app, ["staff", "rollup"])
    assert result.output.startswith("Overview rollup (Asia/Kolkata): 0 days added")


def test_the_service_hashes_passwords_with_argon2ids_recommended_parameters() -> None:
    """In a process of its own: the tests' processes use the cheapest (tests/conftest.py)."""
    code = "from service.staff.auth import hash_password as h; print(h(12 * 'x'))"
    made = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert made.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), made
