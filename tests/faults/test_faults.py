"""The fault suite: each scenario runs the line as real processes (`phoneline serve` with
workers, `phoneline worker`, the CLI beside them, a private PostgreSQL that is stopped, a fake
Twilio that fails and hangs, `kill -9`, a full and a read-only disk), drives it as Twilio does,
and holds the ledger of what the line acknowledged against the database and what Twilio sent:
nothing lost, nothing doubled, no wrong outcome, no call left in progress, every promised text
sent exactly once, none to a number that opted out.

`make test` runs a short version of each (a few dozen calls, outages of seconds); `make faults`
runs the long one (FAULT_LOAD=long: hundreds of calls, a 60 s database outage, every scenario
on SQLite and PostgreSQL). Each scenario's figures are appended to test-artifacts/faults.md.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench.harness import PHONELINE, local_get
from tests.faults.lab import (
    Ledger,
    Line,
    PrivatePostgres,
    Twilio,
    audit,
    break_disk,
    can_mount,
    engine_for,
    fill,
    load,
    record,
    rows,
    settle,
    small_disk,
)
from tests.ops.fake_twilio import FakeTwilio
from tests.ops.test_multiprocess import metric_total

pytestmark = [pytest.mark.faults]

LONG = os.environ.get("FAULT_LOAD") == "long"
CALLS = 300 if LONG else 24
OUTAGE_SECONDS = 60 if LONG else 5
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BACKENDS = ["sqlite", "postgres"]


def backends(short: str) -> list[object]:
    """Both databases in the long run; in the short one, the one named."""
    chosen = BACKENDS if LONG else [short]
    marks = {"postgres": [pytest.mark.postgres]}
    return [pytest.param(name, id=name, marks=marks.get(name, [])) for name in chosen]


def start_line(
    lines: list[Line], url: str, tmp_path: Path, fake: FakeTwilio, **options: object
) -> Line:
    separate = options.pop("separate_worker", url.startswith("sqlite"))
    line = Line(url, tmp_path, fake, separate_worker=bool(separate), **options)  # type: ignore[arg-type]
    lines.append(line)
    line.start()
    line.add_a_second_line()  # every scenario runs with two lines, each patient on one of them
    return line


def check(name: str, url: str, ledger: Ledger, fake: FakeTwilio, **expect: int) -> None:
    engine = engine_for(url)
    try:
        settle(engine, ledger, fake)
        result = audit(f"{name} ({url.split(':')[0].split('+')[0]})", engine, ledger, fake)
    finally:
        engine.dispose()
    record(result, ARTIFACTS)
    assert result.clean(), (result.row(), result.details[:20])
    for key, value in expect.items():
        assert getattr(result, key) == value, (key, result.row(), ledger.errors[:10])


def wait_for_a_sending_worker(url: str, timeout: float = 60) -> None:
    engine = engine_for(url)
    try:
        deadline = time.monotonic() + timeout
        while not rows(engine, "SELECT count(*) FROM outbox_workers")[0][0]:
            assert time.monotonic() < deadline, "no outbox worker beat"
            time.sleep(0.2)
    finally:
        engine.dispose()


def drive(line: Line, ledger: Ledger, fake: FakeTwilio, **options: object) -> threading.Thread:
    """Callers and texters in the background (so that the test can break things meanwhile)."""
    twilio = Twilio([line.base_url], ledger, fake, numbers=line.numbers)
    thread = threading.Thread(target=lambda: asyncio.run(load(twilio, **options)))  # type: ignore[arg-type]
    thread.start()
    return thread


@pytest.mark.parametrize("backend", backends("postgres"))
def test_steady_load(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(lines, database_url, tmp_path, fake)
    ledger = Ledger()
    drive(line, ledger, fake, calls=CALLS, first_index=0, texters=5, stoppers=3).join()
    check("steady load", database_url, ledger, fake, refused=0)


@pytest.mark.parametrize("backend", backends("postgres"))
def test_kill_9_of_a_serve_worker_three_times(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(lines, database_url, tmp_path, fake, workers=3)
    ledger = Ledger()
    thread = drive(line, ledger, fake, calls=CALLS * 2, first_index=100_000, stoppers=3)
    for _ in range(3):
        time.sleep(2.0)
        line.kill_a_serve_worker()
        line.wait_for_workers()  # the supervisor starts another
    thread.join()
    check("kill -9 of a serve worker x3", database_url, ledger, fake)


@pytest.mark.postgres
def test_postgres_stopped_under_load(tmp_path: Path, fake: FakeTwilio, lines: list[Line]) -> None:
    postgres = PrivatePostgres()
    try:
        postgres.start()
        line = start_line(lines, postgres.url, tmp_path, fake)
        ledger = Ledger()
        stop_at = time.monotonic() + OUTAGE_SECONDS + 6
        thread = drive(
            line,
            ledger,
            fake,
            calls=CALLS,
            first_index=200_000,
            stoppers=4,
            until=lambda: time.monotonic() > stop_at,
        )
        time.sleep(3)
        postgres.stop()
        down_since = time.monotonic()
        time.sleep(1)
        status, body = line.ready()
        assert status == 503 and "database" in body
        while time.monotonic() - down_since < OUTAGE_SECONDS:
            time.sleep(0.5)
        postgres.start()
        thread.join()
        # During the outage a press 8 is promised nothing (the database cannot say whether the
        # number said STOP before it went down); once it is back, texts are promised again.
        assert any(c.texted_at and c.texted_at > down_since for c in ledger.calls.values()), (
            "press 8 was answered with a text once the database was back"
        )
        check(f"PostgreSQL stopped {OUTAGE_SECONDS} s", postgres.url, ledger, fake, refused=0)
    finally:
        for line in lines:
            line.stop()
        lines.clear()
        postgres.remove()


@pytest.mark.parametrize("backend", backends("postgres"))
def test_twilio_fails_then_hangs_then_a_worker_is_killed_mid_send(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(
        lines, database_url, tmp_path, fake, separate_worker=True, OUTBOX_FIRST_RETRY_SECONDS="1"
    )
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake, numbers=line.numbers)

    def callers(first: int) -> None:
        asyncio.run(load(twilio, calls=10, first_index=first, concurrency=4))

    fake.fail(500)
    callers(300_000)
    time.sleep(4)  # sends and "already sent?" lookups answered 500: retried, not failed
    fake.hang()
    callers(300_100)
    time.sleep(4)  # a send hangs in the worker
    line.kill_worker()
    fake.recover()
    line.start_worker()
    callers(300_200)
    check("Twilio 500, then hanging, then the worker killed", database_url, ledger, fake)
    statuses = [row.status for row in rows_of(database_url, "SELECT status FROM outbox")]
    assert set(statuses) <= {"sent", "suppressed"}, statuses


@pytest.mark.parametrize("backend", backends("postgres"))
def test_duplicate_and_early_status_callbacks_across_two_writers(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(lines, database_url, tmp_path, fake, workers=2)
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake, numbers=line.numbers)
    asyncio.run(
        load(
            twilio,
            calls=CALLS,
            first_index=400_000,
            think=0.0,
            duplicate_status=True,
            early_status=True,
        )
    )
    check("duplicate and early status callbacks, 2 writers", database_url, ledger, fake)
    metrics = local_get(line.base_url + "/metrics").text
    counted = sum(
        float(sample.split()[-1])
        for sample in metrics.splitlines()
        if sample.startswith("phoneline_calls_total{")
    )
    assert counted == len(ledger.calls) + line.probes, "each call counted once, by its outcome"


@pytest.mark.parametrize("backend", backends("postgres"))
def test_sigterm_and_restart_loses_nothing(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(lines, database_url, tmp_path, fake)
    ledger = Ledger()
    thread = drive(line, ledger, fake, calls=CALLS, first_index=500_000, stoppers=2)
    time.sleep(2)
    line.restart()
    thread.join()
    check("SIGTERM and restart", database_url, ledger, fake)


@pytest.mark.parametrize("backend", backends("postgres"))
def test_kill_hup_replaces_the_workers_and_refuses_no_caller(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    line = start_line(lines, database_url, tmp_path, fake, workers=2)
    ledger = Ledger()
    done = threading.Event()
    thread = drive(
        line, ledger, fake, calls=CALLS, first_index=600_000, concurrency=6, until=done.is_set
    )
    time.sleep(2)
    line.replace_workers()
    line.replace_workers()
    done.set()
    thread.join()
    check("kill -HUP (workers replaced twice) under load", database_url, ledger, fake, refused=0)


def disk_faults() -> list[object]:
    """var/ full and var/ read-only, on PostgreSQL (and in the long run on SQLite, its file on
    another disk: with the database on the broken disk too, nothing could be kept, and callers
    would still reach a person)."""
    chosen = BACKENDS if LONG else ["postgres"]
    marks = {"postgres": [pytest.mark.postgres]}
    return [
        pytest.param(fault, backend, id=f"{backend}-{fault}", marks=marks.get(backend, []))
        for backend in chosen
        for fault in ("full", "read-only")
    ]


@pytest.mark.skipif(not can_mount(), reason="needs root, mkfs.ext4 and a loop device for var/")
@pytest.mark.parametrize(("fault", "backend"), disk_faults())
def test_var_full_or_read_only(
    backend: str,
    fault: str,
    database_url: str,
    tmp_path: Path,
    fake: FakeTwilio,
    lines: list[Line],
) -> None:
    var = tmp_path / "var"
    if backend == "sqlite":
        (tmp_path / "db").mkdir()
        database_url = f"sqlite:///{tmp_path / 'db' / 'phoneline.db'}"
    with small_disk(var):
        line = start_line(lines, database_url, tmp_path, fake)
        ledger = Ledger()
        twilio = Twilio([line.base_url], ledger, fake, numbers=line.numbers)
        asyncio.run(load(twilio, calls=10, first_index=700_000))
        if line.separate_worker:
            # The worker checks var/ once, at its start: the fault comes to a running one.
            wait_for_a_sending_worker(database_url)
        filler = fill(var) if fault == "full" else None
        if fault == "read-only":
            break_disk(var)
        try:
            asyncio.run(load(twilio, calls=10, first_index=700_100, stoppers=3))
            refusals = metric_total(local_get(line.base_url + "/metrics").text,
                                    "phoneline_spool_write_errors_total")  # fmt: skip
            assert refusals > 0  # the disk did refuse records
            if fault == "read-only":
                status, body = line.ready()
                assert status == 503, body  # records are held in memory only
        finally:
            if filler is not None:
                filler.unlink()
        asyncio.run(load(twilio, calls=10, first_index=700_200))
        check(f"var/ {fault}", database_url, ledger, fake)
        line.stop()
        lines.clear()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_cli_and_a_sqlite3_reader_beside_serve(
    backend: str, database_url: str, tmp_path: Path, fake: FakeTwilio, lines: list[Line]
) -> None:
    """serve (its sender on) and a separate `phoneline worker` on one SQLite file, while the
    CLI adds, lists and disables staff, purges, and the sqlite3 shell reads the file."""
    line = start_line(lines, database_url, tmp_path, fake, workers=1, separate_worker=False)
    line.start_worker()
    ledger = Ledger()
    thread = drive(line, ledger, fake, calls=CALLS, first_index=800_000, texters=4, stoppers=3)
    path = database_url.removeprefix("sqlite:///")
    cli = [PHONELINE, "staff"]
    for n in range(4):
        name = f"nurse{n}"
        run(line, [*cli, "add", name, "--role", "viewer", "--password-stdin"], stdin=PASSWORD)
        run(line, [*cli, "list"])
        run(line, [PHONELINE, "purge", "--older-than", "30d"])
        with sqlite3.connect(path) as reader:
            reader.execute("SELECT count(*) FROM calls").fetchall()
        subprocess.run(["sqlite3", path, "SELECT count(*) FROM call_events;"], check=False)
    run(line, [*cli, "disable", "nurse0"])
    thread.join()
    check("the CLI and a sqlite3 reader beside serve", database_url, ledger, fake)
    assert sign_in(line, "nurse1") == 303, "an account added while the line ran signs in"
    assert sign_in(line, "nurse0") == 401, "a disabled account does not"
    assert Path(f"{path}-wal").exists()


PASSWORD = "a long enough password 42"


def run(line: Line, command: list[str], stdin: str | None = None) -> None:
    subprocess.run(
        command, env=line.env, input=stdin, text=True, check=True, capture_output=True, timeout=60
    )


def sign_in(line: Line, username: str) -> int:
    with httpx.Client(base_url=line.base_url) as client:
        form = client.get("/staff/login").text
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/staff/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
        )
    return response.status_code


def rows_of(url: str, sql: str) -> list[object]:
    engine = engine_for(url)
    try:
        return rows(engine, sql)
    finally:
        engine.dispose()
