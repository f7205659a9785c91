"""Several processes on one PostgreSQL behave as one service (real processes, real HTTP).

`phoneline serve --workers 4` (each process also sending from the outbox) plus a separate
`phoneline worker`, driven by simulated callers and texters with signed webhooks: no call,
message or outbox row is lost or doubled. And a worker SIGKILLed while Twilio holds its send
request, then restarted: the text is neither lost nor sent twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from bench.harness import (
    DEFAULT_CALL_SCRIPT,
    PHONELINE,
    TEXT_ME_CALL_SCRIPT,
    Driver,
    ServerProcess,
    caller_number,
    local_get,
    phoneline_env,
    phoneline_server,
    run_callers,
    run_texters,
)
from tests.ops.fake_twilio import FakeTwilio, running_fake_twilio

pytestmark = pytest.mark.postgres

TRANSFER_CALLS = 24
TEXT_ME_CALLS = 12
TEXTERS = 10
TEXTS_EACH = 5


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


@pytest.fixture
def engine(postgres_schema_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_schema_url, poolclass=NullPool)
    yield engine
    engine.dispose()


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PHONELINE, "worker", "--poll", "0.2"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture
def processes() -> Iterator[list[ServerProcess | WorkerProcess]]:
    started: list[ServerProcess | WorkerProcess] = []
    yield started
    for process in started:
        if isinstance(process, WorkerProcess):
            process.kill(signal.SIGTERM)
        else:
            process.stop()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def metric_total(metrics_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_four_servers_and_a_worker_lose_and_double_nothing(
    postgres_schema_url: str,
    engine: Engine,
    fake: FakeTwilio,
    tmp_path: Path,
    processes: list[ServerProcess | WorkerProcess],
) -> None:
    env = phoneline_env(
        postgres_schema_url,
        tmp_path / "var",
        twilio_api_base=fake.base_url,
        CALL_SETTLE_SECONDS="1",
    )
    server = phoneline_server(env, tmp_path / "serve.log", workers=4)
    processes.append(server)
    server.start()
    worker = WorkerProcess(env, tmp_path / "worker.log")
    processes.append(worker)
    worker.start()

    async def drive() -> list[str]:
        transfer, text_me, texting = await asyncio.gather(
            run_callers(server.base_url, TRANSFER_CALLS, 8, repeat_status=True),
            run_callers(
                server.base_url,
                TEXT_ME_CALLS,
                4,
                first_index=1000,
                script=TEXT_ME_CALL_SCRIPT,
                repeat_status=True,
            ),
            run_texters(server.base_url, TEXTERS, 6, first_index=2000),
        )
        # Twilio retries a webhook it got no answer to: the same MessageSid again.
        async with httpx.AsyncClient() as client:
            retry = Driver(client, server.base_url)
            await retry.texts(caller_number(2000), first_sid=2000 * 100, bodies=["hi"])
        return transfer.errors + text_me.errors + texting.errors + retry.timings.errors

    assert asyncio.run(drive()) == []

    expected_calls = TRANSFER_CALLS + TEXT_ME_CALLS
    wait_for(
        lambda: (
            rows(engine, "SELECT count(*) FROM calls WHERE status = 'completed'")[0][0]
            == expected_calls
        ),
        30,
        "every call to be recorded as completed",
    )
    wait_for(
        lambda: (
            rows(engine, "SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == TEXT_ME_CALLS
        ),
        60,
        "every queued text to be sent",
    )
    time.sleep(1)  # a doubled send or record would land now

    calls = rows(engine, "SELECT call_sid, outcome, transferred_contact, id FROM calls")
    sids = [call.call_sid for call in calls]
    assert len(sids) == len(set(sids)) == expected_calls
    assert set(sids) == {f"CA{i:032x}" for i in range(TRANSFER_CALLS)} | {
        f"CA{i:032x}" for i in range(1000, 1000 + TEXT_ME_CALLS)
    }
    transfers = [call for call in calls if int(call.call_sid[2:], 16) < TRANSFER_CALLS]
    assert {(call.outcome, call.transferred_contact) for call in transfers} == {
        ("reached", "coordinator")
    }
    events = Counter(call_id for (call_id,) in rows(engine, "SELECT call_id FROM call_events"))
    per_transfer = {events[call.id] for call in transfers}
    per_text_me = {events[call.id] for call in calls if call not in transfers}
    assert len(per_transfer) == 1 and len(per_text_me) == 1, (per_transfer, per_text_me)

    inbound = rows(engine, "SELECT message_sid FROM messages WHERE direction = 'in'")
    assert len(inbound) == len({sid for (sid,) in inbound}) == TEXTERS * TEXTS_EACH

    outbox = rows(engine, "SELECT to_number, status, twilio_sid, kind FROM outbox")
    text_me_numbers = {caller_number(i) for i in range(1000, 1000 + TEXT_ME_CALLS)}
    assert sorted(row.to_number for row in outbox) == sorted(text_me_numbers)
    assert {row.status for row in outbox} == {"sent"}
    sent_to = Counter(message["to"] for message in fake.messages)
    assert sent_to == Counter(text_me_numbers), "each queued text reached Twilio exactly once"
    assert {row.twilio_sid for row in outbox} == {m["sid"] for m in fake.messages}

    # /metrics sums the four server processes (multiprocess mode set up by serve --workers).
    wait_for(
        lambda: (
            metric_total(local_get(server.base_url + "/metrics").text, "phoneline_calls_total")
            == expected_calls
        ),
        30,
        "every call to be counted once it settled",
    )
    metrics = local_get(server.base_url + "/metrics").text
    status_posts = metric_total(
        metrics,
        "phoneline_http_request_duration_seconds_count",
        route="/twilio/voice/status",
    )
    assert status_posts == 2 * expected_calls
    voice_posts = metric_total(
        metrics, "phoneline_http_request_duration_seconds_count", route="/twilio/voice"
    )
    assert voice_posts == TRANSFER_CALLS * (1 + len(DEFAULT_CALL_SCRIPT)) + TEXT_ME_CALLS * (
        1 + len(TEXT_ME_CALL_SCRIPT)
    )


@pytest.mark.parametrize("twilio_took_it", [True, False], ids=["twilio-took-it", "lost-in-flight"])
def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    postgres_schema_url: str,
    engine: Engine,
    fake: FakeTwilio,
    tmp_path: Path,
    processes: list[ServerProcess | WorkerProcess],
    twilio_took_it: bool,
) -> None:
    env = phoneline_env(
        postgres_schema_url,
        tmp_path / "var",
        twilio_api_base=fake.base_url,
        RUN_WORKER_IN_SERVER="false",
        OUTBOX_STALE_SECONDS="2",
    )
    server = phoneline_server(env, tmp_path / "serve.log", workers=2)
    processes.append(server)
    server.start()
    worker = WorkerProcess(env, tmp_path / "worker.log")
    processes.append(worker)
    fake.hold_sends(drop=not twilio_took_it)
    worker.start()

    timings = asyncio.run(
        run_callers(server.base_url, 1, 1, first_index=500, script=TEXT_ME_CALL_SCRIPT)
    )
    assert timings.errors == []
    assert fake.held.wait(timeout=30), "the worker never sent"
    worker.kill(signal.SIGKILL)
    fake.release()
    if twilio_took_it:
        wait_for(lambda: len(fake.messages) == 1, 10, "Twilio to take the held text")
    (row,) = rows(engine, "SELECT id, status, attempts FROM outbox")
    assert (row.status, row.attempts) == ("sending", 1), "the worker died before recording"

    worker.start()  # the claim goes stale after 2 s and the new worker takes it over
    wait_for(
        lambda: rows(engine, "SELECT status FROM outbox WHERE id = :id", id=row.id)[0][0] == "sent",
        30,
        "the restarted worker to finish the text",
    )
    (done,) = rows(engine, "SELECT status, attempts, twilio_sid FROM outbox")
    assert len(fake.messages) == 1, "sent exactly once"
    assert fake.messages[0]["to"] == caller_number(500)
    assert done.twilio_sid == fake.messages[0]["sid"]
    assert done.attempts == 2
    posts = fake.posts("/Messages.json")
    assert len(posts) == (1 if twilio_took_it else 2)

    # The restarted worker goes on sending new texts as usual.
    timings = asyncio.run(
        run_callers(server.base_url, 1, 1, first_index=501, script=TEXT_ME_CALL_SCRIPT)
    )
    assert timings.errors == []
    wait_for(lambda: len(fake.messages) == 2, 30, "the next text")
    assert fake.messages[1]["to"] == caller_number(501)
