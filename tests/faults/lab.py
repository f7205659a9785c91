"""The fault lab: the line as an operator runs it, driven as Twilio drives it, with a ledger.

- `Line`: `phoneline serve --workers N` (and optionally a separate `phoneline worker`) as real
  processes on a database, with a fake Twilio REST API over real HTTP (`tests/ops/fake_twilio`);
  it can kill a serve worker with SIGKILL, restart the service with SIGTERM, or replace its
  workers with SIGHUP.
- `PrivatePostgres`: a PostgreSQL cluster of the test's own (Debian's binaries, run as the
  `postgres` user on a free port) that can be stopped and started at will; never the shared one.
- `Twilio`: simulated calls and texts with signed webhooks over real HTTP. Every request the
  service acknowledged (a 200 with TwiML, a 204) goes into the `Ledger`, and the fake Twilio
  learns each call as Twilio would know it (for reconciliation).
- `audit(...)`: the ledger against the database and the fake Twilio: what was acknowledged and
  is missing (lost), what is there twice (doubled), what is there but not as it happened
  (wrong: an outcome, a dial result), calls still in progress, texts sent to numbers that had
  opted out, texts sent more or less than once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from bench.harness import (
    ACCOUNT_SID,
    LINE_NUMBER,
    PHONELINE,
    PUBLIC_BASE,
    ServerProcess,
    caller_number,
    free_port,
    local_get,
    next_action,
    phoneline_env,
    phoneline_server,
    serve_workers,
    sign,
)
from bench.lines import greeting, line_number, line_text, probe_call
from service.db import Database
from service.lines.revisions import add_line
from tests.ops.fake_twilio import FakeTwilio

PG_BIN = Path("/usr/lib/postgresql/15/bin")

# What a caller does, and how the call must end up in the record.
SCRIPTS: dict[str, tuple[tuple[tuple[str, str], ...], str, str | None]] = {
    "reached": ((("digits", "0"), ("dial", "completed")), "reached", "completed"),
    "busy": ((("digits", "0"), ("dial", "busy")), "not-answered", "busy"),
    "listened": ((("digits", "1"),), "listened", None),
    "hung-up": ((), "hung-up", None),
    "text-me": ((("digits", "2"), ("digits", "1"), ("digits", "8")), "listened", None),
}
MIX = ("reached", "busy", "listened", "hung-up", "text-me")
PROMISED_TEXT = "the numbers you asked for"
"""The first line of a press-8 text (as opposed to a reply the outbox sent)."""


# -- the ledger --------------------------------------------------------------------------------


@dataclass
class CallEntry:
    sid: str
    caller: str
    script: str
    started: bool = False
    """The first webhook was answered."""
    steps: list[tuple[str, str]] = field(default_factory=list)
    """The caller's actions the service answered (a broken answer ends the call, as the caller
    would hear Twilio's error)."""
    unanswered: tuple[str, str] | None = None
    """The action whose answer broke (the connection cut, a worker killed): the service may
    have recorded it before it could answer, or not; either is true to what happened."""
    complete: bool = False
    """Every action of the script was answered."""
    final_acked: bool = False
    texted_at: float | None = None
    """When the service answered the press 8 (a text it promised)."""


@dataclass
class TextEntry:
    sid: str
    phone: str
    body: str
    reply: str
    at: float = 0.0
    """When the answer came (monotonic)."""


@dataclass
class Ledger:
    calls: dict[str, CallEntry] = field(default_factory=dict)
    texts: list[TextEntry] = field(default_factory=list)
    opted_out: dict[str, float] = field(default_factory=dict)
    """Number -> when its (first) STOP was confirmed."""
    changes: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    """Number -> (when confirmed, opted out) of each STOP and START the line confirmed."""
    line_of: dict[str, str] = field(default_factory=dict)
    """Number -> the service's number it called and texted (each patient keeps to one line)."""

    refused: int = 0
    """Requests that found nothing listening, or no answer (Twilio's "application error")."""
    errors: list[str] = field(default_factory=list)
    slowest: float = 0.0
    """The longest any answer took (seconds)."""

    def opted_out_at(self, phone: str, at: float) -> bool:
        """Whether the number had said STOP (and not START since) by `at`."""
        state = False
        for when, opted_out in self.changes.get(phone, ()):
            if when <= at:
                state = opted_out
        return state

    def finally_opted_out(self) -> dict[str, bool]:
        return {phone: changes[-1][1] for phone, changes in self.changes.items() if changes}

    @property
    def acknowledged(self) -> int:
        calls = sum(int(c.started) + len(c.steps) + int(c.final_acked) for c in self.calls.values())
        return calls + len(self.texts)


# -- simulated Twilio ---------------------------------------------------------------------------


class Twilio:
    """Makes calls and texts to the line at `base_url`, as Twilio would, into `ledger`."""

    def __init__(
        self,
        base_urls: Sequence[str],
        ledger: Ledger,
        fake: FakeTwilio | None = None,
        *,
        gives_up_after: float | None = None,
        numbers: Sequence[str] = (LINE_NUMBER,),
    ) -> None:
        self.base_urls = list(base_urls)
        self.ledger = ledger
        self.fake = fake
        self.numbers = list(numbers)
        """The service's numbers (its lines'): each patient calls and texts one of them."""
        self.gives_up_after = gives_up_after
        """Twilio's webhook timeout: an answer slower than this is not heard (the caller hears
        Twilio's fallback instead), however it ends."""
        self._turn = 0

    def number_for(self, phone: str) -> str:
        """The service's number this patient calls and texts (always the same one)."""
        number = self.numbers[int(phone[-6:]) % len(self.numbers)]
        self.ledger.line_of.setdefault(phone, number)
        return number

    def _base(self) -> str:
        self._turn += 1
        return self.base_urls[self._turn % len(self.base_urls)]

    async def post(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str]
    ) -> httpx.Response | None:
        path = url
        if url.startswith("http"):
            parts = urlsplit(url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {
            "X-Twilio-Signature": sign(PUBLIC_BASE + path, params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.monotonic()
        try:
            target = self._base() + path
            response = await client.post(target, content=urlencode(params), headers=headers)
        except httpx.HTTPError as error:
            self.ledger.refused += 1
            self.ledger.errors.append(f"{path.split('?')[0]}: {type(error).__name__}")
            return None
        took = time.monotonic() - started
        self.ledger.slowest = max(self.ledger.slowest, took)
        if self.gives_up_after is not None and took >= self.gives_up_after:
            self.ledger.refused += 1
            self.ledger.errors.append(f"{path.split('?')[0]}: answered after {took:.1f} s")
            return None
        return response

    async def call(
        self,
        client: httpx.AsyncClient,
        index: int,
        script: str,
        *,
        think: float = 0.0,
        duplicate_status: bool = False,
        early_status: bool = False,
        caller: str | None = None,
    ) -> CallEntry:
        """Call number `index` (its CallSid), from `caller` (default: the index's number)."""
        sid = f"CA{index:032x}"
        caller = caller or caller_number(index)
        entry = CallEntry(sid, caller, script)
        self.ledger.calls[sid] = entry
        steps, _, _ = SCRIPTS[script]
        called = self.number_for(caller)
        base = {
            "CallSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": called,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        response = await self.post(client, "/twilio/voice", {**base, "CallStatus": "ringing"})
        entry.started = _answered(response)
        twiml = response.text if entry.started and response is not None else ""
        for kind, value in steps if entry.started else ():
            action = next_action(twiml)
            if action is None:
                break
            if think:
                await asyncio.sleep(think)
            params = {**base, "CallStatus": "in-progress"}
            if kind == "digits":
                params["Digits"] = value
            else:
                params |= {"DialCallStatus": value, "DialCallDuration": "30"}
            response = await self.post(client, action, params)
            if not _answered(response):
                entry.unanswered = (kind, value)
                break  # the caller hears Twilio's application error: the call is over
            assert response is not None
            twiml = response.text
            entry.steps.append((kind, value))
            if value == "8" and "will send you a text" in twiml:
                entry.texted_at = time.monotonic()
        entry.complete = entry.started and len(entry.steps) == len(steps)
        if self.fake is not None:  # Twilio knows how every call ended, whatever we heard
            self.fake.register_call(sid, "completed", 60, caller, called)
        final = {**base, "CallStatus": "completed", "CallDuration": "60"}
        sends = 2 if duplicate_status else 1
        if early_status:
            await self.post(client, "/twilio/voice/status", {**base, "CallStatus": "in-progress"})
        results = await asyncio.gather(
            *(self.post(client, "/twilio/voice/status", final) for _ in range(sends))
        )
        entry.final_acked = any(r is not None and r.status_code == 204 for r in results)
        return entry

    async def text(self, client: httpx.AsyncClient, phone: str, sid: int, body: str) -> str | None:
        params = {
            "MessageSid": f"SM{sid:032x}",
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "To": self.number_for(phone),
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        response = await self.post(client, "/twilio/sms", params)
        if not _answered(response):
            return None
        assert response is not None
        replies = "".join(ET.fromstring(response.text).itertext())
        now = time.monotonic()
        self.ledger.texts.append(TextEntry(params["MessageSid"], phone, body, replies, now))
        if body.upper() == "STOP" and "unsubscribed" in replies.lower():
            self.ledger.opted_out.setdefault(phone, now)
            self.ledger.changes.setdefault(phone, []).append((now, True))
        if body.upper() == "START" and "subscribed to" in replies and "again" in replies:
            self.ledger.changes.setdefault(phone, []).append((now, False))
        return replies


def _answered(response: httpx.Response | None) -> bool:
    return response is not None and response.status_code in (200, 204)


async def load(
    twilio: Twilio,
    *,
    calls: int,
    first_index: int,
    concurrency: int = 8,
    texters: int = 0,
    stoppers: int = 0,
    think: float = 0.05,
    duplicate_status: bool = False,
    early_status: bool = False,
    until: Callable[[], bool] | None = None,
) -> None:
    """`calls` calls (the script mix in turn), `concurrency` at a time; `texters` who walk the
    text menu and `stoppers` who text STOP and then, later, press 8 on a call (which must then
    not text them). With `until`, callers keep coming until it says stop (at least `calls`)."""
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(calls):
            queue.put_nowait(n)
        made = calls

        async def caller() -> None:
            nonlocal made
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    if until is None or until():
                        return
                    n, made = made, made + 1
                script = MIX[n % len(MIX)]
                await twilio.call(
                    client,
                    first_index + n,
                    script,
                    think=think,
                    duplicate_status=duplicate_status,
                    early_status=early_status,
                )

        async def texter(n: int) -> None:
            phone = caller_number(first_index + 50_000 + n)
            for offset, body in enumerate(("hi", "1", "#", "2", "menu")):
                await twilio.text(client, phone, (first_index + 50_000 + n) * 100 + offset, body)
                await asyncio.sleep(think)

        async def stopper(n: int) -> None:
            index = first_index + 60_000 + n
            phone = caller_number(index)
            await twilio.text(client, phone, index * 100, "hi")
            await twilio.text(client, phone, index * 100 + 1, "STOP")
            await asyncio.sleep(think)
            await twilio.text(client, phone, index * 100 + 2, "hi")  # must get no answer
            await twilio.call(client, index, "text-me", think=think)  # and no text

        await asyncio.gather(
            *(caller() for _ in range(concurrency)),
            *(texter(n) for n in range(texters)),
            *(stopper(n) for n in range(stoppers)),
        )


# -- processes ------------------------------------------------------------------------------------


class Line:
    """The service as an operator runs it."""

    def __init__(
        self,
        database_url: str,
        root: Path,
        fake: FakeTwilio,
        *,
        workers: int = 2,
        separate_worker: bool = False,
        var_dir: Path | None = None,
        **env: str,
    ) -> None:
        self.root = root
        self.var_dir = var_dir or root / "var"
        settings = {
            "CALL_SETTLE_SECONDS": "1",
            "SPOOL_PERIODIC_SECONDS": "1",
            "CALL_RECONCILE_SECONDS": "5",
            "WORKER_DEAD_SECONDS": "6",
            "LOG_LEVEL": "warning",
            # The load is many callers in minutes: the hourly totals of the outbound policy
            # are not what these scenarios test (tests/sms/test_outbound_policy.py does).
            "OUTBOUND_TEXTS_PER_HOUR": "1000000",
            "OUTBOUND_CALLS_PER_HOUR": "1000000",
        }
        if separate_worker:
            settings["RUN_WORKER_IN_SERVER"] = "false"
        self.env = phoneline_env(
            database_url, self.var_dir, twilio_api_base=fake.base_url, **(settings | env)
        )
        self.port = free_port()
        self.server = phoneline_server(
            self.env, root / f"serve-{self.port}.log", workers=workers, port=self.port
        )
        self.workers = workers
        self.separate_worker = separate_worker
        self.worker: subprocess.Popen[bytes] | None = None
        self.fake = fake
        self.numbers = [LINE_NUMBER]
        """The service's numbers: the shipped line's, and a second line's once added."""
        self.probes = 0
        """Calls made to see the second line answer (not in any ledger)."""

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self) -> None:
        self.server.start()
        self.wait_for_workers()
        if self.separate_worker:
            self.start_worker()

    def add_a_second_line(self, timeout: float = 60) -> None:
        """A second line beside the shipped one (its own number and flow), added beside the
        running service by what `phoneline lines add` runs (`add_line`), here in the test's
        process (a CLI process costs a second of a processor; tests/lines/test_serve.py runs
        the command itself beside serve); live when this returns."""
        database = Database(self.env["DATABASE_URL"])
        try:
            with database.session() as session:
                add_line(session, "program-01", line_text(1), author="fault lab",
                         numbers=[line_number(1)], source="program-01.yaml")  # fmt: skip
        finally:
            database.dispose()
        deadline = time.monotonic() + timeout
        probe = 0
        while not self._heard(line_number(1), greeting(1, 1), 990_000_000 + probe):
            assert time.monotonic() < deadline, "the second line did not answer"
            probe += 1
            time.sleep(0.2)
        self.numbers.append(line_number(1))

    def _heard(self, number: str, words: str, index: int) -> bool:
        """A probe call to `number`: whether it hears `words` (it ends at once, completed)."""
        self.probes += 1
        heard = probe_call(self.base_url, number, words, index)
        self.fake.register_call(f"CA{index:032x}", "completed", 1, caller_number(index), number)
        return heard

    def start_worker(self) -> None:
        with open(self.root / f"worker-{self.port}.log", "ab") as log:
            self.worker = subprocess.Popen(
                [PHONELINE, "worker", "--poll", "0.2"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_worker(self, signum: int = signal.SIGKILL) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signum)
            self.worker.wait(timeout=30)
        self.worker = None

    def serve_workers(self) -> list[int]:
        """The pids of serve's worker processes, oldest first."""
        return sorted(serve_workers(self.server.pgid))

    def wait_for_workers(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.serve_workers()) < self.workers:
            assert time.monotonic() < deadline, "the serve workers did not start"
            time.sleep(0.2)

    def kill_a_serve_worker(self) -> int:
        victim = self.serve_workers()[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    def replace_workers(self) -> None:
        """`kill -HUP` of serve: the workers are replaced one by one."""
        before = set(self.serve_workers())
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while before & set(self.serve_workers()) or len(self.serve_workers()) < self.workers:
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.2)

    def restart(self) -> None:
        """SIGTERM, then start again on the same port (there is a moment nothing listens)."""
        self.server.stop()
        self.server = phoneline_server(
            self.env, self.root / f"serve-{self.port}.log", workers=self.workers, port=self.port
        )
        self.start_server_again()

    def start_server_again(self) -> None:
        self.server.start()
        self.wait_for_workers()

    def ready(self) -> tuple[int, str]:
        try:
            response = local_get(self.base_url + "/readyz", timeout=5)
        except httpx.HTTPError as error:
            return 0, type(error).__name__
        return response.status_code, response.text

    def stop(self) -> None:
        self.kill_worker(signal.SIGTERM)
        self.server.stop()


class PrivatePostgres:
    """A PostgreSQL of the test's own, that it may stop and start (never the shared one)."""

    _cluster: Path | None = None
    """A cluster `initdb` made once per test process; each server starts from a copy of it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="phoneline-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        subprocess.run(["cp", "-a", str(self.fresh_cluster()), str(self.data)], check=True)

    @classmethod
    def fresh_cluster(cls) -> Path:
        if cls._cluster is None or not cls._cluster.is_dir():
            root = Path(tempfile.mkdtemp(prefix="phoneline-pg-initdb-"))
            atexit.register(shutil.rmtree, root, True)
            shutil.chown(root, "postgres", "postgres")
            cluster = root / "data"
            cls._as_postgres(PG_BIN / "initdb", "-D", str(cluster), "-A", "trust", "-U", "postgres")
            cls._cluster = cluster
        return cls._cluster

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", str(self.data), "-o", options,
            "-l", str(self.root / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _as_postgres(*command: str | Path) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, command)],
            check=True,
            capture_output=True,
            timeout=120,
        )


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int = 32) -> Iterator[Path]:
    """`path` on an ext4 file system of its own (an image on a loop device, mounted with
    errors=remount-ro as most distributions do), which a test can fill up or break."""
    path.mkdir(parents=True, exist_ok=True)
    image = path.with_name(path.name + ".img")
    with open(image, "wb") as file:
        file.truncate(size_mb * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        image.unlink(missing_ok=True)


def can_mount() -> bool:
    return (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and shutil.which("mkfs.ext4") is not None
        and Path("/dev/loop-control").exists()
    )


def fill(path: Path) -> Path:
    """Fill the file system under `path` (writes of anything else then fail with ENOSPC): in
    ever smaller pieces, so that the little the file system keeps back is taken too (only the
    unused tail of the last block of each open file is left)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 64, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def break_disk(path: Path) -> None:
    """Make the file system under `path` fail as a disk does: the kernel records an error and
    (errors=remount-ro) turns it read-only, so that every write, through descriptors already
    open too, fails with EROFS until an operator remounts it."""
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(source).name}/trigger_fs_error").write_text("1")


# -- the audit ------------------------------------------------------------------------------------


@dataclass
class Audit:
    """The ledger held against what the database and Twilio ended with."""

    scenario: str
    acknowledged: int = 0
    lost: int = 0
    doubled: int = 0
    wrong: int = 0
    in_progress: int = 0
    refused: int = 0
    texts_expected: int = 0
    texts_sent: int = 0
    texts_to_opted_out: int = 0
    details: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return (
            self.lost == self.doubled == self.wrong == self.in_progress == 0
            and self.texts_to_opted_out == 0
            and self.texts_sent == self.texts_expected
        )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.acknowledged} | {self.lost} | {self.doubled} | "
            f"{self.wrong} | {self.in_progress} | {self.texts_sent}/{self.texts_expected} | "
            f"{self.texts_to_opted_out} | {self.refused} |"
        )


TABLE_HEADER = (
    "| scenario | acknowledged | lost | doubled | wrong | left in progress | "
    "texts sent/promised | texts to opted-out | refused |\n|---|---|---|---|---|---|---|---|---|"
)


def engine_for(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def settle(engine: Engine, ledger: Ledger, fake: FakeTwilio, timeout: float = 120) -> None:
    """Wait until the line has written and sent everything it will: every call in the ledger
    has a row that is settled, every text a caller was promised has its outbox row (a process's
    spool may write it after the calls of other processes have settled), and the outbox has
    nothing pending."""
    deadline = time.monotonic() + timeout
    sids = list(ledger.calls)
    promised = sum(1 for entry in ledger.calls.values() if entry.texted_at is not None)
    while time.monotonic() < deadline:
        try:
            unsettled = rows(
                engine,
                "SELECT count(*) FROM calls WHERE settled_at IS NULL",
            )[0][0]
            waiting = rows(
                engine, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
            )[0][0]
            known = rows(engine, "SELECT count(*) FROM calls")[0][0]
            queued = rows(
                engine, "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'voice-text:%'"
            )[0][0]
        except Exception:  # the database may still be coming back
            time.sleep(0.2)
            continue
        if (
            unsettled == 0
            and waiting == 0
            and queued >= promised
            and known >= sum(1 for sid in sids if ledger.calls[sid].started)
        ):
            time.sleep(1.0)  # a doubled record would land now
            return
        time.sleep(0.2)
    # What was left, for the failure the audit will report.
    with contextlib.suppress(Exception):
        print("settle timed out; unsettled calls and waiting outbox rows:")
        for row in rows(
            engine,
            "SELECT id, status, attempts, next_attempt_at, claimed_at, claimed_by, last_error, "
            "created_at FROM outbox WHERE status IN ('pending', 'sending')",
        ):
            print("  outbox", tuple(row))
        for row in rows(
            engine, "SELECT call_sid, status, updated_at FROM calls WHERE settled_at IS NULL"
        ):
            print("  call", tuple(row))
        print("  database now:", rows(engine, "SELECT CURRENT_TIMESTAMP")[0][0])


def audit(scenario: str, engine: Engine, ledger: Ledger, fake: FakeTwilio) -> Audit:
    result = Audit(scenario, acknowledged=ledger.acknowledged, refused=ledger.refused)
    calls = {
        row.call_sid: row
        for row in rows(
            engine,
            "SELECT id, call_sid, caller, outcome, dial_outcome, settled_at FROM calls",
        )
    }
    counted = Counter(
        (row.call_id, row.kind) for row in rows(engine, "SELECT call_id, kind FROM call_events")
    )
    for entry in ledger.calls.values():
        row = calls.get(entry.sid)
        if row is None:
            if entry.started or entry.steps or entry.final_acked:
                result.lost += 1
                result.details.append(f"lost call {entry.sid}")
            continue
        if row.outcome == "in-progress":
            result.in_progress += 1
            result.details.append(f"in progress {entry.sid}")
        keys = sum(1 for kind, _ in entry.steps if kind == "digits")
        dials = sum(1 for kind, _ in entry.steps if kind == "dial")
        unanswered = entry.unanswered[0] if entry.unanswered else None
        for kind, expected, step in (("key", keys, "digits"), ("dial_result", dials, "dial")):
            found = counted[(row.id, kind)]
            may_be_there = expected + (unanswered == step)  # recorded, then its answer cut
            if found < expected:
                result.lost += expected - found
                result.details.append(f"{entry.sid}: {expected - found} {kind} lost")
            elif found > may_be_there:
                result.doubled += found - may_be_there
                result.details.append(f"{entry.sid}: {found - may_be_there} {kind} doubled")
        if entry.started and row.caller != entry.caller:
            result.wrong += 1
            result.details.append(f"{entry.sid}: caller {row.caller}")
        if entry.complete:
            _, outcome, dial = SCRIPTS[entry.script]
            if (row.outcome, row.dial_outcome) != (outcome, dial):
                result.wrong += 1
                result.details.append(
                    f"{entry.sid} ({entry.script}): {row.outcome}/{row.dial_outcome}"
                )
    received = Counter(
        sid for (sid,) in rows(engine, "SELECT message_sid FROM messages WHERE direction = 'in'")
    )
    for entry in ledger.texts:
        found = received[entry.sid]
        if found == 0:
            result.lost += 1
            result.details.append(f"lost text {entry.sid}")
        elif found > 1:
            result.doubled += found - 1
    stored: dict[str, bool] = {}  # each number's state for the line it texted: the newest row
    for phone, number, opted_out in rows(
        engine, "SELECT phone, number, opted_out FROM opt_outs ORDER BY changed_at"
    ):
        if number in ("*", ledger.line_of.get(phone, LINE_NUMBER)):
            stored[phone] = bool(opted_out)
    for phone, opted_out in ledger.finally_opted_out().items():
        if bool(stored.get(phone)) != opted_out:
            result.lost += 1
            what = "opt-out" if opted_out else "START after the opt-out"
            result.details.append(f"{what} of {phone} forgotten")
    for entry in ledger.texts:  # a reply (other than the confirmation) while opted out
        confirmation = entry.body.upper() in ("STOP", "START")
        if entry.reply.strip() and not confirmation and ledger.opted_out_at(entry.phone, entry.at):
            result.texts_to_opted_out += 1
            result.details.append(f"{entry.phone} was answered while opted out")
    for message in fake.messages:
        line = ledger.line_of.get(message["to"])
        if line is not None and message["from"] != line:
            result.wrong += 1
            result.details.append(f"{message['to']} was texted from {message['from']}, not {line}")
        if ledger.opted_out_at(message["to"], message["received_monotonic"]):
            result.texts_to_opted_out += 1
            result.details.append(f"{message['to']} was texted while opted out")
    promised = Counter(
        entry.caller for entry in ledger.calls.values() if entry.texted_at is not None
    )
    for entry in ledger.calls.values():
        if entry.texted_at is not None and ledger.opted_out_at(entry.caller, entry.texted_at):
            result.wrong += 1
            result.details.append(f"{entry.caller} opted out and was promised a text")
    # The press-8 texts (replies the fence held back go out through the outbox too).
    sent = Counter(message["to"] for message in fake.messages if PROMISED_TEXT in message["body"])
    result.texts_expected = sum(promised.values())
    result.texts_sent = sum(min(sent[number], promised[number]) for number in promised)
    for number, count in promised.items():
        if sent[number] > count:
            result.doubled += sent[number] - count
            result.details.append(f"{number} got {sent[number]} texts for {count}")
        elif sent[number] < count:  # what became of it
            outbox = rows(
                engine,
                "SELECT id, status, attempts, last_error, created_at, sent_at, claimed_by "
                "FROM outbox WHERE to_number = :number AND dedupe_key LIKE 'voice-text:%'",
                number=number,
            )
            changes = rows(
                engine,
                "SELECT number, opted_out, changed_at FROM opt_outs WHERE phone = :number",
                number=number,
            )
            result.details.append(
                f"{number} got {sent[number]} texts for {count}: outbox {outbox}, "
                f"opt-outs {changes}, the ledger's {ledger.changes.get(number)}"
            )
    return result


def record(audit_result: Audit, artifacts: Path) -> None:
    """Append the scenario's row to test-artifacts/faults.md (the table the note quotes)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    table = artifacts / "faults.md"
    if not table.exists():
        table.write_text(TABLE_HEADER + "\n")
    with table.open("a") as file:
        file.write(audit_result.row() + "\n")


__all__ = [
    "MIX",
    "SCRIPTS",
    "Audit",
    "Ledger",
    "Line",
    "PrivatePostgres",
    "ServerProcess",
    "Twilio",
    "audit",
    "break_disk",
    "can_mount",
    "engine_for",
    "fill",
    "load",
    "record",
    "rows",
    "settle",
    "small_disk",
]
