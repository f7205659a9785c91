"""How `phoneline serve` runs its worker processes: a supervisor that sees a death at once, and a
worker that drains before it stops.

`Supervisor` is uvicorn's (it holds the listening socket; `kill -HUP` replaces the workers one
by one), with two changes:
- uvicorn checks each worker in turn by a ping that waits for the answer, up to the health-check
  timeout; a worker killed while it was being pinged stalled the supervisor for that whole
  timeout (30 s), and a second death in that window left no worker at all. Here the supervisor
  wakes the moment a worker process ends (its sentinel), and pings without ever waiting on an
  answer: a worker that has not answered a ping for `HUNG_SECONDS` is hung, killed and replaced.
- uvicorn spawns each worker: a new interpreter that imports the service and its libraries
  (about 2 s of a processor, more on a busy machine) before it can accept, and a second death in
  that time left nothing accepting. Here the workers are forked from a fork server that has
  imported the service once (`preload`: the modules, the language model, the sign-in hash): a
  worker, a replacement for a dead one included, only builds its app (a quarter of a second).
  `kill -HUP` starts a new fork server, which imports the code afresh, before it replaces the
  workers one by one; the old one ends by itself with the last worker forked from it.

uvicorn stops accepting, then closes at once every connection that has not sent a request yet.
A connection the worker accepted a moment before (Twilio's request still on its way) is then cut
and Twilio hears an "application error", which a worker-by-worker restart (`kill -HUP` of
`phoneline serve`) would do to a few callers under load. So a stopping worker first stops
accepting, gives the connections it already accepted `DRAIN_SECONDS` to deliver their requests,
and only then lets uvicorn shut down as usual (which waits for the requests in progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import wait
from socket import socket as Socket
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn._subprocess import subprocess_started
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.server import Server
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")

DRAIN_SECONDS = 1.0
TICK_SECONDS = 0.5
HUNG_SECONDS = 10.0
"""A worker whose last ping has not been answered for this long is hung (a process that answers
nothing: a deadlock, a tight loop holding the interpreter)."""

Shutdown = Callable[[Server, list[socket.socket] | None], Coroutine[Any, Any, None]]


def drain_before_shutdown() -> None:
    """Install the drain in uvicorn's Server (once; imported by the app in each worker)."""
    original: Shutdown = Server.shutdown
    if getattr(original, "drains", False):
        return

    @functools.wraps(original)
    async def shutdown(self: Server, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(DRAIN_SECONDS)
        await original(self, sockets)

    shutdown.drains = True  # type: ignore[attr-defined]
    Server.shutdown = shutdown  # type: ignore[method-assign]


class ForkServer:
    """The process workers are forked from: it has imported the `preload` modules once, and a
    worker forked from it starts with all of that in place (shared with the others until one
    writes to it). One at a time; `renew` makes the next worker come from a new one."""

    def __init__(self, preload: list[str]) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(preload)
        self._retired: list[int] = []

    def renew(self) -> None:
        """The next worker is forked from a new fork server, which imports the code as it now
        is. The current one is let go: it ends once the last worker forked from it has ended
        (each holds its `alive` pipe open) and is then reaped by `reap`."""
        server: Any = multiprocessing.forkserver._forkserver  # the one the context uses
        with server._lock:
            if server._forkserver_pid is None:
                return
            os.close(server._forkserver_alive_fd)
            self._retired.append(server._forkserver_pid)
            server._forkserver_pid = None
            server._forkserver_alive_fd = None
            server._forkserver_address = None

    def reap(self, block: bool = False) -> None:
        """Collect the fork servers let go that have ended (all of them, waiting, if `block`)."""
        for pid in list(self._retired):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, 0 if block else os.WNOHANG)[0] == 0:
                    continue
            self._retired.remove(pid)


class Worker(Process):
    """uvicorn's worker process, forked from the fork server instead of spawned. It is the fork
    server's child, not the supervisor's: whether it still runs is asked of the kernel (a pidfd),
    so that a fork server that died (and with it the word on its workers' exits) does not make
    the supervisor take live workers for dead ones."""

    def __init__(
        self,
        config: Config,
        sockets: list[Socket],
        fork_server: ForkServer,
        forget: Callable[[int], None],
    ) -> None:
        super().__init__(config, sockets)
        self._forget = forget
        # stdin: a fork server's is closed, and a worker reads none.
        arguments = {"config": config, "target": self.target, "sockets": sockets}
        self.process = fork_server.context.Process(  # type: ignore[assignment]
            target=subprocess_started, kwargs={**arguments, "stdin_fileno": None}
        )
        self.sentinel = -1
        """A pidfd of the process, readable once it has ended; -1 when it has been joined, or
        had ended (and been reaped) before it could be opened."""

    def start(self) -> None:
        super().start()
        assert self.pid is not None
        with contextlib.suppress(ProcessLookupError):
            self.sentinel = os.pidfd_open(self.pid)

    def alive(self) -> bool:
        return self.sentinel >= 0 and not wait([self.sentinel], timeout=0)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.sentinel, signum)
        self.parent_conn.close()
        self.child_conn.close()

    def join(self) -> None:
        """Until it has ended; then its exit code, as its fork server reports it, and what it
        left is forgotten."""
        if self.sentinel >= 0:
            wait([self.sentinel])
            os.close(self.sentinel)
            self.sentinel = -1
        self.process.join(timeout=TICK_SECONDS)
        if self.pid is not None:
            self._forget(self.pid)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, seeing a worker's death at once and forking its workers from a
    fork server that has imported `preload` (see the module's text). `forget(pid)` is called
    for each process that serves no more, or never did (the supervisor itself): what it left
    for the others to read (its metrics) is dropped."""

    def __init__(
        self,
        config: Config,
        sockets: list[Socket],
        preload: list[str],
        forget: Callable[[int], None],
    ) -> None:
        super().__init__(config, sockets)
        self.processes: list[Worker] = []  # type: ignore[assignment]
        self.fork_server = ForkServer(preload)
        self.forget = forget
        self._pinged: dict[Worker, float] = {}
        """Worker -> when its unanswered ping was sent."""

    def run(self) -> None:
        log.info("Started parent process [%d]", os.getpid())
        self.forget(os.getpid())
        self.init_processes()
        while not self.should_exit.is_set():
            sentinels = [worker.sentinel for worker in self.processes if worker.alive()]
            wait(sentinels, timeout=TICK_SECONDS)  # a worker ending wakes this at once
            self.handle_signals()
            self.keep_subprocess_alive()
            self.fork_server.reap()
        self.terminate_all()
        self.join_all()
        self.fork_server.renew()
        self.fork_server.reap(block=True)
        log.info("Stopping parent process [%d]", os.getpid())

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._start_worker())

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        now = time.monotonic()
        for gone in set(self._pinged) - set(self.processes):
            del self._pinged[gone]
        for index, process in enumerate(self.processes):
            if process.alive() and not self._hung(process, now):
                continue
            self._pinged.pop(process, None)
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # The app, its settings or the socket are broken: every restart would fail.
                log.error("Child process [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            self.processes[index] = self._start_worker()
            log.info(
                "Child process [%s] died; process [%s] took its place",
                process.pid,
                self.processes[index].pid,
            )

    def restart_all(self) -> None:
        """`kill -HUP`: a new fork server (the code as it now is), then each worker replaced by
        one forked from it, the replacement serving before the worker it replaces stops."""
        self.fork_server.renew()
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start_worker()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] "
                        "and stopping the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._start_worker())

    def _start_worker(self) -> Worker:
        worker = Worker(self.config, self.sockets, self.fork_server, self.forget)
        worker.start()
        return worker

    def _hung(self, process: Worker, now: float) -> bool:
        """Ping without waiting: an answer is read on a later tick."""
        sent = self._pinged.get(process)
        try:
            while process.parent_conn.poll():
                process.parent_conn.recv()
                sent = None
            if sent is None:
                process.parent_conn.send(b"ping")
                self._pinged[process] = now
                return False
        except (OSError, EOFError, ValueError):
            return not process.alive()
        return now - sent > HUNG_SECONDS


# -- a webhook Twilio gave up on --------------------------------------------------------------

SOCKET = "phoneline.socket"
"""Scope key: the request's connection (uvicorn's), when it can be found."""
_TCP_INFO_LAST_DATA_RECV = struct.Struct("=I")
_TCP_INFO_LAST_DATA_RECV_OFFSET = 52
"""`tcpi_last_data_recv` in Linux's `struct tcp_info`: milliseconds since data last arrived."""


class KeepsConnection:
    """ASGI middleware (outermost): keeps the request's socket in the scope, so that a webhook
    can tell whether Twilio is still waiting for its answer (`gave_up`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(receive, "__self__", None), "transport", None)
            if transport is not None:
                scope[SOCKET] = transport.get_extra_info("socket")
        await self.app(scope, receive, send)


def gave_up(scope: Scope, timeout: float) -> bool:
    """Whether the client will never hear this request's answer: it has closed the connection
    (Twilio hung up on a webhook that waited too long), or the request waited `timeout` seconds
    since its last bytes arrived (Twilio gives up on a webhook after 15 s and plays the
    fallback). False when it cannot be told (not Linux, no socket: a test's ASGI client)."""
    sock = scope.get(SOCKET)
    if sock is None:
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        (waited_ms,) = _TCP_INFO_LAST_DATA_RECV.unpack_from(info, _TCP_INFO_LAST_DATA_RECV_OFFSET)
        if waited_ms / 1000 >= timeout:
            return True
        # A copy of the descriptor (closing it leaves uvicorn's alone): b"" is the peer's close.
        with socket.socket(fileno=os.dup(sock.fileno())) as copy:
            return copy.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # the peer is still there, and has sent nothing more
    except ConnectionResetError:
        return True
    except (OSError, AttributeError, struct.error, ValueError):
        return False
