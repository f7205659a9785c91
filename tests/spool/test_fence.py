"""The fence between hosts that share the database but not var/: a spool directory whose
opt-outs may be missing from the database holds the others' replies and texts until they are in
it (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db import Database
from service.models import OptOut, SpoolFence
from service.optouts.store import OptOutChanged
from service.spool import fence
from service.spool.spool import Kept, Spool
from service.stores import STORES
from tests.spool.test_spool import Switch, die, wait_for

T0 = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


@pytest.fixture
def switch(database: Database) -> Iterator[Switch]:
    switch = Switch(database)
    yield switch
    switch.down.dispose()


@pytest.fixture
def spools() -> Iterator[list[Spool]]:
    made: list[Spool] = []
    yield made
    for spool in made:
        spool.close(timeout=5)


def host(spools: list[Spool], directory: Path, database: object, **options: object) -> Spool:
    options.setdefault("linger", 0.01)
    options.setdefault("retry_delays", (0.05,))
    spool = Spool(directory, database, stores=STORES, **options)  # type: ignore[arg-type]
    spools.append(spool)
    spool.start()
    return spool


def holding(database: Database, spool: Spool) -> list[str]:
    with database.session() as session:
        return [holder.directory for holder in spool.fence().holding(session)]


def test_each_directory_beats_its_row_and_a_clear_fresh_one_holds_nothing(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    a = host(spools, tmp_path / "a", switch)
    b = host(spools, tmp_path / "b", switch)
    assert a.fence().directory != b.fence().directory
    assert fence.directory_id(tmp_path / "a") == a.fence().directory, "kept in the directory"

    def both_beaten() -> bool:
        with database.session() as session:
            return len(session.scalars(select(SpoolFence)).all()) == 2

    wait_for(both_beaten, "both directories to beat")
    assert holding(database, b) == []
    assert b.fence().others, "b knows another host shares the database"
    assert (tmp_path / "b" / fence.OTHERS_FILE).exists(), "kept for a start without a database"


def test_a_stop_a_host_could_not_write_holds_the_others_until_it_is_written(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    a_is_down = False
    a = host(spools, tmp_path / "a", lambda: switch.down if a_is_down else database)
    b = host(spools, tmp_path / "b", switch)
    wait_for(lambda: holding(database, b) == [] and b.fence().others, "both to beat")
    a_is_down = True  # a cannot reach the database (b can)
    assert a.submit([OptOutChanged("+18045550111", True, "STOP", T0)], durable=True) is Kept.DISK
    wait_for(
        lambda: holding(database, b) == [a.fence().directory],
        "a's silence to hold b",
        timeout=fence.FRESH_SECONDS + 5,
    )
    a_is_down = False  # a's database is back: the STOP first, then a clear beat
    wait_for(lambda: holding(database, b) == [], "the fence to clear")
    with database.session() as session:
        assert session.get(OptOut, ("+18045550111", "*")).opted_out is True  # type: ignore[union-attr]


def test_a_directory_with_a_stop_not_yet_written_beats_not_clear(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    a = host(spools, tmp_path / "a", switch, retry_delays=(60,))
    b = host(spools, tmp_path / "b", switch)
    wait_for(lambda: holding(database, b) == [], "both to beat")
    switch.is_down = True
    a.submit([OptOutChanged("+18045550111", True, "STOP", T0)], durable=True)
    die(a)  # gone, its STOP on its disk: a's row goes stale and holds b
    switch.is_down = False
    wait_for(lambda: holding(database, b) != [], "a's stale row to hold b", timeout=10)
    # A process on a's disk (a restart on the same volume) replays the STOP and clears it.
    host(spools, tmp_path / "a", switch, orphans_every=0.1)
    wait_for(lambda: holding(database, b) == [], "a's volume to be replayed")


def test_a_host_silent_for_the_give_up_time_is_let_go_of(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    a = host(spools, tmp_path / "a", switch)
    b = host(spools, tmp_path / "b", switch, fence_give_up=0.5)
    wait_for(lambda: holding(database, b) == [] and b.fence().others, "both to beat")
    die(a)  # a host taken away for good
    wait_for(lambda: holding(database, b) != [], "a's silence to hold b", timeout=10)
    time.sleep(0.6)
    assert holding(database, b) == [], "let go of after the give-up time"
    with database.session() as session:
        assert session.get(SpoolFence, a.fence().directory) is None
