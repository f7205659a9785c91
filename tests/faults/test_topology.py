"""The fault suite in the topologies people deploy (real processes, a private PostgreSQL that is
stopped, a fake Twilio over HTTP, a ledger): the compose topology (serve with two workers and a
separate `phoneline worker` sharing one var/ volume), two hosts that share the database but not
var/ (the fence), a redeploy during an outage, PostgreSQL down at start, `kill -9` of a worker
twice, and webhooks that waited in the backlog until Twilio gave up.

The opt-out story of each outage: people text the line, PostgreSQL stops, they text STOP (some
then call and press 8), PostgreSQL comes back, and at once half of them text START, MENU and
call again, and the other half text "hi". The ledger holds it against what happened: no reply
and no text to a number while it was opted out, every START honoured (the last word of each
number is what the database says), and everything acknowledged written once.

`make test` runs a short version of each (outages of seconds); `make faults` the long one
(FAULT_LOAD=long: outages of 45 s, more people and callers).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.harness import caller_number, local_get
from tests.faults.lab import (
    Ledger,
    Line,
    PrivatePostgres,
    Twilio,
    audit,
    engine_for,
    load,
    record,
    rows,
    settle,
)
from tests.ops.fake_twilio import FakeTwilio, running_fake_twilio

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

LONG = os.environ.get("FAULT_LOAD") == "long"
OUTAGE_SECONDS = 45 if LONG else 4
PEOPLE = 24 if LONG else 8
CALLS = 120 if LONG else 16
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUBSCRIBED_AGAIN = "You are subscribed to VCU Massey Second Opinion Line again"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def lines() -> Iterator[list[Line]]:
    started: list[Line] = []
    yield started
    for line in started:
        line.stop()


def start_line(
    lines: list[Line], url: str, root: Path, fake: FakeTwilio, **options: object
) -> Line:
    root.mkdir(parents=True, exist_ok=True)
    line = Line(url, root, fake, **options)  # type: ignore[arg-type]
    lines.append(line)
    line.start()
    return line


def check(name: str, url: str, ledger: Ledger, fake: FakeTwilio, **expect: int) -> None:
    engine = engine_for(url)
    try:
        settle(engine, ledger, fake)
        result = audit(name, engine, ledger, fake)
    finally:
        engine.dispose()
    record(result, ARTIFACTS)
    assert result.clean(), (result.row(), result.details[:20])
    for key, value in expect.items():
        assert getattr(result, key) == value, (key, result.row(), ledger.errors[:10])


async def in_thread(work: object) -> None:
    await asyncio.to_thread(work)  # type: ignore[arg-type]


async def ready(client: httpx.AsyncClient, base_urls: list[str], timeout: float = 30) -> None:
    """Until every one of these answers /readyz with 200 (the database answers it again)."""
    deadline = time.monotonic() + timeout
    for base_url in base_urls:
        while (await client.get(base_url + "/readyz")).status_code != 200:
            assert time.monotonic() < deadline, f"{base_url} is not ready again"
            await asyncio.sleep(0.1)


async def outage_story(
    twilio: Twilio,
    postgres: PrivatePostgres,
    *,
    first_index: int,
    restart: object = None,
    stops_to: Twilio | None = None,
) -> None:
    """The opt-out story of an outage (see the module's text), with callers throughout.
    `restart`, if given, is called while PostgreSQL is down (a redeploy). `stops_to`: where the
    STOPs of the outage go (default `twilio`, where everything else goes)."""
    ledger = twilio.ledger
    stops_to = stops_to or twilio
    sids = itertools.count(first_index * 100)
    people = [first_index + n for n in range(PEOPLE)]
    done = asyncio.Event()
    async with httpx.AsyncClient(timeout=15) as client:

        async def text(index: int, body: str) -> str | None:
            return await twilio.text(client, caller_number(index), next(sids), body)

        callers = asyncio.create_task(
            load(twilio, calls=CALLS, first_index=first_index + 1_000, until=done.is_set)
        )
        for index in people:
            assert "1 Why a second opinion" in (await text(index, "hi") or "")

        await in_thread(postgres.stop)
        down_since = time.monotonic()

        async def stop(index: int) -> None:
            reply = await stops_to.text(client, caller_number(index), next(sids), "STOP")
            assert reply is not None and "No more messages will be sent" in reply
            if index % 3 == 0:  # pressing 8 after a STOP promises nothing
                await stops_to.call(client, index, "text-me")

        await asyncio.gather(*(stop(index) for index in people))
        if restart is not None:
            await in_thread(restart)
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
        await in_thread(postgres.start)
        await ready(client, twilio.base_urls)  # each answers from the database again

        async def come_back(index: int) -> None:
            if index % 2 == 0:
                reply = await text(index, "START")
                assert reply is not None and SUBSCRIBED_AGAIN in reply, reply
                await text(index, "MENU")
                # A second call of the same number: a CallSid of its own.
                await twilio.call(client, index + 500, "text-me", caller=caller_number(index))
            else:
                assert await text(index, "hi") == "", "no answer to a number that said STOP"

        await asyncio.gather(*(come_back(index) for index in people))
        done.set()
        await callers
    assert any(c.texted_at and c.texted_at > down_since for c in ledger.calls.values()), (
        "a press 8 was answered during the outage or after"
    )


def test_the_compose_topology_obeys_every_stop_and_start_across_an_outage(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    """serve --workers 2 and a separate `phoneline worker`, each in a working directory of its
    own, sharing the spool directory the compose file gives them (its named volume)."""
    volume = tmp_path / "phoneline-var"
    line = start_line(
        lines, postgres.url, tmp_path / "app", fake, workers=2, separate_worker=True,
        var_dir=volume,
    )  # fmt: skip
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake)
    asyncio.run(outage_story(twilio, postgres, first_index=900_000))
    check(f"compose topology, PostgreSQL stopped {OUTAGE_SECONDS} s", postgres.url, ledger, fake)


def test_two_hosts_sharing_the_database_not_var_are_fenced(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    """Two hosts (a spool directory each) behind one load balancer: a STOP spooled on one host
    during the outage holds the other host's replies and texts until it is in the database."""
    hosts = [
        start_line(lines, postgres.url, tmp_path / name, fake, workers=1, FENCE_WAIT_SECONDS="3")
        for name in ("host-a", "host-b")
    ]
    ledger = Ledger()
    # The STOPs of the outage reach host A, everything else host B: A, idle once the database
    # is back, writes its STOPs only on its next retry (up to 5 s later), while B answers at
    # once the texts and calls of the numbers that said STOP on A.
    host_a = Twilio([hosts[0].base_url], ledger, fake)
    host_b = Twilio([hosts[1].base_url], ledger, fake)
    asyncio.run(outage_story(host_b, postgres, first_index=910_000, stops_to=host_a))
    check(f"two hosts, PostgreSQL stopped {OUTAGE_SECONDS} s", postgres.url, ledger, fake)
    fenced = rows(engine_for(postgres.url), "SELECT count(*) FROM spool_fences")[0][0]
    assert fenced == 2, "each host's spool directory beats its row"


def test_a_redeploy_during_an_outage_loses_nothing(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    """While PostgreSQL is down the processes are stopped (SIGTERM) and new ones start on the
    same volume (they start without the database): what the old ones acknowledged is written
    by the new ones once the database is back."""
    line = start_line(
        lines, postgres.url, tmp_path / "app", fake, workers=2, separate_worker=True,
        var_dir=tmp_path / "phoneline-var",
    )  # fmt: skip
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake)

    def redeploy() -> None:
        line.stop()
        line.start_server_again()
        line.start_worker()

    asyncio.run(outage_story(twilio, postgres, first_index=920_000, restart=redeploy))
    check(f"redeploy during a {OUTAGE_SECONDS} s outage", postgres.url, ledger, fake)


def test_postgres_down_at_start_then_back(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    """The service starts while PostgreSQL is away (its schema not even made), answers calls
    with the menu, and writes everything once the database is back and migrated."""
    postgres.stop()
    line = start_line(lines, postgres.url, tmp_path / "app", fake, workers=2)
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake)
    asyncio.run(load(twilio, calls=CALLS, first_index=930_000, stoppers=2))
    assert ledger.refused == 0
    assert all(entry.started for entry in ledger.calls.values()), "every call got the menu"
    postgres.start()
    check("PostgreSQL down at start", postgres.url, ledger, fake, refused=0)


def test_kill_9_of_a_worker_twice_keeps_every_webhook_under_3_seconds(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    line = start_line(lines, postgres.url, tmp_path / "app", fake, workers=2)
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake)
    done = False

    def kills() -> None:
        nonlocal done
        time.sleep(1.5)
        line.kill_a_serve_worker()
        time.sleep(4.0)  # the two kills within 10 s
        line.kill_a_serve_worker()
        time.sleep(3.0)
        done = True

    async def run() -> None:
        await asyncio.gather(
            load(twilio, calls=CALLS, first_index=940_000, concurrency=6, until=lambda: done),
            in_thread(kills),
        )

    asyncio.run(run())
    # A request a worker was answering when it was killed is cut (Twilio plays its fallback,
    # which reaches the coordinator); everything else is answered, none after 3 s.
    check("kill -9 of a worker twice in 10 s", postgres.url, ledger, fake)
    assert ledger.refused <= 2 * 6, ledger.errors
    assert ledger.slowest < 3.0, f"a webhook waited {ledger.slowest:.1f} s"


def test_webhooks_twilio_gave_up_on_are_not_recorded_as_heard(
    tmp_path: Path, fake: FakeTwilio, postgres: PrivatePostgres, lines: list[Line]
) -> None:
    """The only worker stops (SIGSTOP) while callers press keys: their webhooks wait in the
    listen backlog. Some callers' connections close (Twilio hung up), others wait on past
    Twilio's timeout (2 s here); either way the caller heard Twilio's fallback, so what those
    webhooks did is not in the call's record (the audit counts anything recorded beyond what
    the ledger heard as doubled)."""
    line = start_line(
        lines, postgres.url, tmp_path / "app", fake, workers=1, TWILIO_TIMEOUT_SECONDS="2"
    )
    ledger = Ledger()
    twilio = Twilio([line.base_url], ledger, fake, gives_up_after=2.0)
    [worker] = line.serve_workers()
    stopped = False

    def stall() -> None:
        nonlocal stopped
        time.sleep(1.0)
        os.kill(worker, signal.SIGSTOP)
        time.sleep(4.0)
        os.kill(worker, signal.SIGCONT)
        stopped = True

    async def callers(timeout: float, first_index: int) -> None:
        async with httpx.AsyncClient(timeout=timeout) as client:
            for n in range(6):
                await twilio.call(client, first_index + n, "busy", think=0.5)

    async def run() -> None:
        await asyncio.gather(
            callers(1.5, 950_000),  # the connection closes: Twilio hung up
            callers(10.0, 950_100),  # the connection stays, the answer comes too late
            in_thread(stall),
        )

    asyncio.run(run())
    assert stopped
    assert ledger.refused > 0, "some webhooks waited past Twilio's timeout"
    check("webhooks answered after Twilio gave up", postgres.url, ledger, fake)
    unheard = local_get(line.base_url + "/metrics", timeout=5).text
    assert "phoneline_webhooks_unheard_total" in unheard
