"""The fault scenarios' fixtures: a fake Twilio, the database a scenario runs on, and the
lines (`phoneline serve` and its worker) it started, stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.lab import Line
from tests.ops.fake_twilio import FakeTwilio, running_fake_twilio


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.node.callspec.params["backend"]
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'phoneline.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def lines() -> Iterator[list[Line]]:
    started: list[Line] = []
    yield started
    for line in started:
        line.stop()
