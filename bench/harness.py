"""Run `phoneline serve` (or any ASGI app under uvicorn) as real processes and drive it with
simulated Twilio callers and texters over real HTTP on 127.0.0.1.

Used by the benchmark (`make bench`) and by the multi-process tests (tests/ops/). Callers sign
every request exactly as Twilio does (the real twilio RequestValidator), follow the `<Gather>` and
`<Dial>` action URLs in the TwiML they get back, and finish with the call status callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator

REPO_ROOT = Path(__file__).resolve().parent.parent
PHONELINE = str(Path(sys.executable).parent / "phoneline")
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_BASE = "https://line.example.org"
LINE_NUMBER = "+18045550100"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# A caller who hears why, repeats it, goes back, asks for another doctor, the coordinator, is
# connected, and the transfer is answered. ("dial", status) answers a <Dial action>.
DEFAULT_CALL_SCRIPT: tuple[tuple[str, str], ...] = (
    ("digits", "1"),
    ("digits", "*"),
    ("digits", "#"),
    ("digits", "2"),
    ("digits", "1"),
    ("digits", "1"),
    ("dial", "completed"),
)
# A caller who asks for every number by text (queues one outbox text) and hangs up.
TEXT_ME_CALL_SCRIPT: tuple[tuple[str, str], ...] = (
    ("digits", "2"),
    ("digits", "1"),
    ("digits", "8"),
)
"""Press 8 at the coordinator: one number, so one text of one message (the first menu's 8, all
the numbers, goes out as two messages, so two outbox rows)."""
DEFAULT_TEXT_SCRIPT: tuple[str, ...] = ("hi", "1", "#", "2", "menu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sign(url: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, dict(params)))


def caller_number(index: int) -> str:
    """A distinct, well-formed US mobile number per simulated caller."""
    return f"+1804{5550000 + 200 + index:07d}"


# -- processes ----------------------------------------------------------------------------------


@cache
def _local_client() -> httpx.Client:
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def local_get(url: str, timeout: float = 5) -> httpx.Response:
    """A GET of a server on this machine, on a connection of its own (none kept between two,
    so that each may reach another worker). Not `httpx.get`: that builds a client for each
    request, and with it a TLS context from the CA bundle (50 ms of a processor), which made
    the readiness polls of the tests and the fault lab cost more than the servers they
    waited for."""
    return _local_client().get(url, timeout=timeout)


def process_group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after "(comm)": state, ppid, pgrp, ...; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def group_cpu_seconds(pgid: int) -> float:
    """user + system CPU of every live process in the group (children it reaped included)."""
    total = 0
    for pid in process_group_pids(pgid):
        fields = proc_stat(pid)
        if fields is not None:
            # utime, stime, cutime, cstime are fields 14-17 of stat; here 11-14 after "(comm)".
            total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def group_rss_bytes(pgid: int) -> int:
    total = 0
    for pid in process_group_pids(pgid):
        fields = proc_stat(pid)
        if fields is not None:
            total += int(fields[21]) * PAGE_SIZE  # rss (field 24) in pages
    return total


def serve_workers(pgid: int) -> dict[int, int]:
    """The worker processes of the `phoneline serve` whose group is `pgid`: pid -> parent's pid.
    Forked from serve's fork server, whose command line they share (its parent is the
    supervisor), running, and past their start (more than one thread)."""
    found = {}
    for pid in process_group_pids(pgid):
        fields = proc_stat(pid)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
        if fields is None or fields[0] == "Z" or int(fields[1]) == pgid:
            continue
        if b"multiprocessing.forkserver" in command and threads > 1:
            found[pid] = int(fields[1])
    return found


@dataclass
class ServerProcess:
    """A server started in its own process group (so its CPU and memory can be measured)."""

    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz", timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.argv)} exited with {self.process.returncode}; "
                    f"see {self.log_path}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if local_get(self.base_url + ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{' '.join(self.argv)} did not answer {ready_path} in {timeout}s")

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.pgid)

    def rss_bytes(self) -> int:
        return group_rss_bytes(self.pgid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        # Anything left in the group (a worker that outlived its parent) goes too.
        for pid in process_group_pids(self.pgid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()
        self.process = None


def phoneline_env(
    database_url: str, var_dir: Path, *, twilio_api_base: str = "", **extra: str
) -> dict[str, str]:
    """The environment for a `phoneline` process: only what these runs set, nothing inherited
    from a developer's .env or shell (PATH and the like are kept)."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        {
            "DATABASE_URL": database_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": LINE_NUMBER,
            "TWILIO_API_BASE": twilio_api_base,
            "PUBLIC_BASE_URL": PUBLIC_BASE,
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "VAR_DIR": str(var_dir),
            "FLOWS_DIR": str(REPO_ROOT / "flows"),
            "LOG_LEVEL": "warning",
        }
    )
    env.update(extra)
    return env


def phoneline_server(
    env: dict[str, str], log_path: Path, *, workers: int = 1, port: int | None = None
) -> ServerProcess:
    port = port or free_port()
    argv = [PHONELINE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return ServerProcess(argv, env, port, log_path)


# -- simulated callers and texters ----------------------------------------------------------------


@dataclass
class Timings:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def extend(self, other: Timings) -> None:
        self.latencies.extend(other.latencies)
        self.errors.extend(other.errors)


class Driver:
    """Posts signed webhooks to a server at `base_url` that believes it is at PUBLIC_BASE."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, think_seconds: float = 0.0
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.think_seconds = think_seconds
        self.timings = Timings()

    def local(self, public_url: str) -> tuple[str, str]:
        """(URL to request, URL Twilio signs) for a path or an absolute public URL."""
        if public_url.startswith("http"):
            parts = urlsplit(public_url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        else:
            path = public_url
        return self.base_url + path, PUBLIC_BASE + path

    async def post(self, url: str, params: Mapping[str, str], expect: int = 200) -> str:
        target, signed = self.local(url)
        if self.think_seconds:
            await asyncio.sleep(self.think_seconds)  # the caller listens, then presses a key
        headers = {
            "X-Twilio-Signature": sign(signed, params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.perf_counter()
        try:
            response = await self.client.post(target, content=urlencode(params), headers=headers)
        except httpx.HTTPError as error:
            self.timings.errors.append(f"{url}: {type(error).__name__}")
            return ""
        self.timings.latencies.append(time.perf_counter() - started)
        if response.status_code != expect:
            self.timings.errors.append(f"{url}: HTTP {response.status_code}")
        return response.text

    async def call(
        self,
        call_sid: str,
        caller: str,
        script: Sequence[tuple[str, str]] = DEFAULT_CALL_SCRIPT,
        *,
        repeat_status: bool = False,
        to: str = LINE_NUMBER,
    ) -> None:
        base = {
            "CallSid": call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": to,
            "Caller": caller,
            "Called": to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        twiml = await self.post("/twilio/voice", {**base, "CallStatus": "ringing"})
        for kind, value in script:
            action = next_action(twiml)
            if action is None:
                self.timings.errors.append(f"{call_sid}: no action to send {kind}={value} to")
                break
            params = {**base, "CallStatus": "in-progress"}
            if kind == "digits":
                params["Digits"] = value
            else:
                params |= {"DialCallStatus": value, "DialCallDuration": "30"}
            twiml = await self.post(action, params)
        final = {**base, "CallStatus": "completed", "CallDuration": "95"}
        for _ in range(2 if repeat_status else 1):
            await self.post("/twilio/voice/status", final, expect=204)

    async def texts(
        self, phone: str, first_sid: int, bodies: Sequence[str] = DEFAULT_TEXT_SCRIPT
    ) -> None:
        for offset, body in enumerate(bodies):
            params = {
                "MessageSid": f"SM{first_sid + offset:032x}",
                "AccountSid": ACCOUNT_SID,
                "From": phone,
                "To": LINE_NUMBER,
                "Body": body,
                "NumMedia": "0",
                "NumSegments": "1",
            }
            await self.post("/twilio/sms", params)


def next_action(twiml: str) -> str | None:
    """The URL Twilio would post to next: the <Gather>, <Dial> or <Record> action."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    for tag in ("Gather", "Dial", "Record"):
        element = root.find(tag)
        if element is not None and element.get("action"):
            return element.get("action")
    return None


async def run_callers(
    base_url: str,
    calls: int,
    concurrency: int,
    *,
    first_index: int = 0,
    script: Sequence[tuple[str, str]] = DEFAULT_CALL_SCRIPT,
    sid_prefix: str = "CA",
    repeat_status: bool = False,
    think_seconds: float = 0.0,
    numbers: Sequence[str] = (LINE_NUMBER,),
) -> Timings:
    """`calls` calls, `concurrency` at a time, each a caller walking `script`, to `numbers` in
    turn."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(first_index, first_index + calls):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timings = Timings()
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one_line() -> None:
            driver = Driver(client, base_url, think_seconds)
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                sid = f"{sid_prefix}{index:032x}"[:34]
                await driver.call(
                    sid, caller_number(index), script, repeat_status=repeat_status,
                    to=numbers[index % len(numbers)],
                )  # fmt: skip
            timings.extend(driver.timings)

        await asyncio.gather(*(one_line() for _ in range(concurrency)))
    return timings


async def run_texters(
    base_url: str,
    texters: int,
    concurrency: int,
    *,
    first_index: int = 0,
    think_seconds: float = 0.0,
) -> Timings:
    """`texters` patients, `concurrency` at a time, each sending DEFAULT_TEXT_SCRIPT."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(first_index, first_index + texters):
        queue.put_nowait(index)
    timings = Timings()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one_line() -> None:
            driver = Driver(client, base_url, think_seconds)
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                await driver.texts(caller_number(index), first_sid=index * 100)
            timings.extend(driver.timings)

        await asyncio.gather(*(one_line() for _ in range(concurrency)))
    return timings
