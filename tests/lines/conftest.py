"""Lines and revisions: flow texts for a second line, and the `phoneline` command on the test
database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.config import get_settings
from service.db import Database

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "flows" / "second-opinion.yaml"
SHIPPED_GREETING = "Welcome to VCU Massey's Second Opinion Line."
TRIALS_GREETING = "Welcome to VCU Massey's Clinical Trials Line."
TRIALS_OPERATOR = "+18048281111"


def shipped_text(greeting: str = SHIPPED_GREETING) -> str:
    """The shipped flow, its spoken greeting replaced by `greeting` (a new edition)."""
    return SHIPPED.read_text(encoding="utf-8").replace(SHIPPED_GREETING, greeting)


def trials_text(greeting: str = TRIALS_GREETING) -> str:
    """A second program's flow: its own name, title, greeting, text greeting and coordinator."""
    return (
        shipped_text(greeting)
        .replace("name: second-opinion", "name: clinical-trials")
        .replace("en: VCU Massey Second Opinion Line\n", "en: VCU Massey Clinical Trials Line\n")
        .replace(
            "VCU Massey Second Opinion Line. In an emergency",
            "VCU Massey Clinical Trials Line. In an emergency",
        )
        .replace('"+18048287999"', f'"{TRIALS_OPERATOR}"')
        .replace("(804) 828-7999", "(804) 828-1111")
    )


def broken_text() -> str:
    """A flow that fails the check: an option goes to a menu that does not exist."""
    return shipped_text().replace("goto: reach", "goto: nowhere", 1)


@pytest.fixture
def runner(
    database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    """`phoneline` on the test database (its shipped flow seeds it, as on a first start)."""
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLOWS_DIR", str(ROOT / "flows"))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def trials_file(tmp_path: Path) -> Path:
    path = tmp_path / "clinical-trials.yaml"
    path.write_text(trials_text(), encoding="utf-8")
    return path
