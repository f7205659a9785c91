"""The spool keeps what the line acknowledged until the database has it: through an outage, a
process that dies, a full in-memory queue and a record the database refuses, each written
exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.calls.facts import CallEventHappened, CallStarted
from service.calls.jobs import end_forgotten_calls
from service.db import Database
from service.messages.records import MessageReceived
from service.models import (
    Call,
    CallEvent,
    CallEventKind,
    Message,
    OptOut,
    OutboxKind,
    OutboxMessage,
    SpoolCheckpoint,
)
from service.optouts.store import OptOutChanged, pending_changes
from service.outbound.outbox import OutboxQueued
from service.spool.codec import decode, encode
from service.spool.segments import read_lines
from service.spool.spool import Kept, Spool
from service.stores import STORES

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


class Switch:
    """The spool's database: the real one, or one that refuses every connection."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.down = Database(DOWN, connect_args={"connect_timeout": 1})
        self.is_down = False

    def __call__(self) -> Database:
        return self.down if self.is_down else self.database


@pytest.fixture
def switch(database: Database) -> Iterator[Switch]:
    switch = Switch(database)
    yield switch
    switch.down.dispose()


@pytest.fixture
def spools(tmp_path: Path, switch: Switch) -> Iterator[list[Spool]]:
    made: list[Spool] = []
    yield made
    for spool in made:
        spool.close(timeout=5)


def new_spool(spools: list[Spool], tmp_path: Path, switch: Switch, **options: object) -> Spool:
    options.setdefault("linger", 0.01)
    options.setdefault("retry_delays", (0.05,))
    options.setdefault("orphans_every", 0.1)
    spool = Spool(tmp_path / "spool", switch, stores=STORES, **options)  # type: ignore[arg-type]
    spools.append(spool)
    return spool


def a_call(n: int) -> list[object]:
    sid = f"CA{n:032x}"
    at = T0 + timedelta(seconds=n)
    return [
        CallStarted(sid, at, "+18045550111", "+18045550100", "en", "hash"),
        CallEventHappened(sid, at, CallEventKind.MENU, "main"),
    ]


def count(database: Database, model: type) -> int:
    with database.session(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_line_decodes_to_the_records_it_was_made_of() -> None:
    records = [
        *a_call(7),
        MessageReceived("SM1", "+18045550111", "+18045550100", "hola, ¿qué tal?\n", 1, T0),
        OptOutChanged("+18045550111", True, "STOP", T0 + timedelta(microseconds=1)),
        OutboxQueued(OutboxKind.SMS, "+18045550111", "numbers", None, "key", T0),
    ]
    seq, decoded = decode(encode(42, records))
    assert seq == 42
    assert decoded == records
    assert isinstance(decoded[1].kind, CallEventKind)
    assert isinstance(decoded[4].kind, OutboxKind)


def test_records_reach_the_database_once_with_the_checkpoint(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch)
    for n in range(20):
        assert spool.submit(a_call(n)) is Kept.DISK
    assert spool.drain(10)
    assert count(database, Call) == 20
    assert count(database, CallEvent) == 20
    [segment] = spool.directory.segments()
    assert len(list(read_lines(segment))) == 20, "each submission is one line on disk"
    with database.session(read_only=True) as session:
        checkpoint = session.get(SpoolCheckpoint, segment.name)
    assert checkpoint is not None and checkpoint.applied_seq == 20


def test_an_outage_loses_nothing_and_doubles_nothing(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch)
    switch.is_down = True
    for n in range(50):
        assert spool.submit(a_call(n)) is Kept.DISK, "on disk at once, database or not"
    assert not spool.drain(0.5)
    assert spool.pending == 50
    assert spool.database_down_since is not None
    switch.is_down = False
    assert spool.drain(15)
    assert spool.pending == 0
    assert count(database, Call) == 50
    assert count(database, CallEvent) == 50


@pytest.mark.parametrize("away", ["writes refused", "schema never read"])
def test_a_stop_during_an_outage_leaves_the_records_on_disk_without_waiting_for_it(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path, away: str
) -> None:
    """A process stopped while the database is away (docker stop gives it 10 s) stops at once:
    what it acknowledged is on disk already, and the next process writes it."""
    if away == "schema never read":  # started while the database was away: never migrated
        ready = lambda: not switch.is_down  # noqa: E731
        spool = new_spool(spools, tmp_path, switch, ready=ready, retry_delays=(0.05, 5.0))
    else:
        spool = new_spool(spools, tmp_path, switch, retry_delays=(0.05, 5.0))
    switch.is_down = True
    for n in range(5):
        spool.submit(a_call(n))
    wait_for(lambda: spool.database_down_since is not None, "the spool to see the outage")
    started = time.monotonic()
    spools.remove(spool)
    spool.close(timeout=30)
    assert time.monotonic() - started < 10, "the stop waited for the database"
    switch.is_down = False
    assert count(database, Call) == 0
    heir = new_spool(spools, tmp_path, switch)
    heir.start()
    wait_for(lambda: count(database, Call) == 5, "the next process to write them")


def test_a_process_that_dies_leaves_its_records_to_the_next_one(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    """Some records written, others not, then the process is gone (its segment unlocked, not
    removed): another process takes the segment over and writes exactly what is missing."""
    dying = new_spool(spools, tmp_path, switch)
    for n in range(10):
        dying.submit(a_call(n))
    assert dying.drain(10)
    switch.is_down = True
    for n in range(10, 25):
        dying.submit(a_call(n))
    assert not dying.drain(0.3)
    spools.remove(dying)
    die(dying)
    switch.is_down = False
    assert count(database, Call) == 10

    heir = new_spool(spools, tmp_path, switch)
    heir.start()
    wait_for(lambda: count(database, Call) == 25, "the orphan segment to be replayed")
    wait_for(lambda: heir.directory.segments() == [], "the replayed segment to be removed")
    assert count(database, CallEvent) == 25
    with database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(SpoolCheckpoint)) == 0


def test_a_live_process_keeps_its_segment(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    switch.is_down = True
    alive = new_spool(spools, tmp_path, switch)
    alive.submit(a_call(1))
    other = new_spool(spools, tmp_path, switch)
    other.start()
    switch.is_down = False
    assert alive.drain(10)
    assert count(database, Call) == 1
    assert count(database, CallEvent) == 1, "written by its owner only, not also by the other"


def test_a_full_memory_queue_reads_the_rest_back_from_disk(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch, max_in_memory=10, max_batch=7)
    switch.is_down = True
    for n in range(60):
        assert spool.submit(a_call(n)) is Kept.DISK
    switch.is_down = False
    assert spool.drain(20)
    assert count(database, Call) == 60
    assert count(database, CallEvent) == 60
    spool.submit(a_call(100))
    assert spool.drain(10)
    assert count(database, Call) == 61


def test_a_record_the_database_refuses_is_set_aside_and_stops_nothing(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch)
    # A text without a body: NOT NULL refuses it on both databases (a bug, not an outage).
    refused = MessageReceived("SM" + "2" * 32, "+18045550111", "+18045550100", None, 1, T0)  # type: ignore[arg-type]
    spool.submit(a_call(1))
    spool.submit([refused])
    spool.submit(a_call(2))
    assert spool.drain(10)
    assert count(database, Call) == 2
    assert count(database, Message) == 0
    [rejected] = (tmp_path / "spool" / "rejected").iterdir()
    assert "SM" + "2" * 32 in rejected.read_text()


def test_opt_outs_are_fsynced_and_seen_by_every_process_until_the_database_has_them(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    switch.is_down = True
    server = new_spool(spools, tmp_path, switch)
    worker = new_spool(spools, tmp_path, switch)
    stop = OptOutChanged("+18045550111", True, "STOP", T0)
    assert server.submit([stop], durable=True) is Kept.DISK
    assert pending_changes(worker.pending_records()) == {("+18045550111", "*"): stop}
    start = OptOutChanged("(804) 555-0111", False, "START", T0 + timedelta(seconds=1))
    server.submit([start], durable=True)
    assert pending_changes(worker.pending_records()) == {("+18045550111", "*"): start}, (
        "the latest change wins"
    )
    switch.is_down = False
    assert server.drain(10)
    wait_for(lambda: worker.pending_records() == [], "the written opt-outs to leave the spool")
    with database.session(read_only=True) as session:
        assert session.get(OptOut, ("+18045550111", "*")).opted_out is False  # type: ignore[union-attr]


def test_with_the_disk_refusing_a_record_waits_in_memory_and_the_spool_is_not_healthy(
    database: Database,
    switch: Switch,
    spools: list[Spool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.spool import segments

    def full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    switch.is_down = True
    spool = new_spool(spools, tmp_path, switch)
    monkeypatch.setattr(segments, "_write_all", full)
    stop = OptOutChanged("+18045550111", True, "STOP", T0)
    assert spool.submit([stop], durable=True) is Kept.MEMORY
    assert not spool.healthy
    assert pending_changes(spool.pending_records()) == {("+18045550111", "*"): stop}, (
        "still obeyed from memory"
    )
    switch.is_down = False
    assert spool.drain(10)
    assert not spool.healthy, "the disk still refuses"
    monkeypatch.undo()
    assert spool.submit(a_call(1)) is Kept.DISK
    assert spool.healthy
    with database.session(read_only=True) as session:
        assert session.get(OptOut, ("+18045550111", "*")).opted_out is True  # type: ignore[union-attr]


def test_texts_and_opt_outs_keep_their_order(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch)
    spool.submit([OptOutChanged("+18045550111", True, "STOP", T0)])
    spool.submit([OutboxQueued(OutboxKind.SMS, "+18045550111", "numbers", None, "k1", T0)])
    spool.submit([OptOutChanged("+18045550111", False, "START", T0 + timedelta(seconds=1))])
    spool.submit([OutboxQueued(OutboxKind.SMS, "+18045550111", "numbers", None, "k2", T0)])
    assert spool.drain(10)
    with database.session(read_only=True) as session:
        statuses = dict(
            session.execute(select(OutboxMessage.dedupe_key, OutboxMessage.status)).all()
        )
    assert statuses == {"k1": "suppressed", "k2": "pending"}


def test_a_text_the_database_has_is_recorded_once(
    database: Database, switch: Switch, spools: list[Spool], tmp_path: Path
) -> None:
    spool = new_spool(spools, tmp_path, switch)
    received = MessageReceived("SM" + "1" * 32, "+18045550111", "+18045550100", "1", 1, T0)
    spool.submit([received])
    spool.submit([received])
    assert spool.drain(10)
    assert count(database, Message) == 1


def die(spool: Spool) -> None:
    """What `kill -9` leaves: the thread stops, the files stay, the locks go with the fds."""
    with spool._lock:
        spool._stopping = True
        spool._wake.notify_all()
        segments = [*spool._active.values(), *spool._sealed]
    if spool._thread is not None:
        spool._thread.join(5)
    for segment in segments:
        segment.close()


def wait_for(condition: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_call_nothing_more_is_heard_of_ends_unknown_never_in_progress(
    spools: list[Spool], tmp_path: Path, switch: Switch, database: Database
) -> None:
    """The last resort after reconciliation (UNKNOWN_AFTER, 4 h; a second here)."""
    import time

    from service.models import Call

    spool = new_spool(
        spools,
        tmp_path,
        switch,
        periodic=[end_forgotten_calls(timedelta(seconds=1))],
        periodic_every=0.05,
    )
    assert spool.submit(a_call(7)) is Kept.DISK
    assert spool.drain(10)
    deadline = time.monotonic() + 15
    while True:
        with database.session(read_only=True) as session:
            outcome = session.scalar(select(Call.outcome))
        if outcome != "in-progress" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert outcome == "unknown"
