"""How `phoneline serve` runs its worker processes: a supervisor that sees a death at once, and a
worker that drains before it stops.

`Supervisor` is uvicorn's (it holds the listening socket; `kill -HUP` replaces the workers one
by one), with two changes:
- uvicorn checks each worker in turn by a ping that waits for the answer, up to the health-check
  timeout; a worker killed while it was being pinged stalled the supervisor for that whole
  timeout (30 s), and a second death in that window left no worker at all. Here the supervisor
  wakes the moment a worker process ends (its sentinel), and pings without ever waiting on an
  answer: a worker that has not answered a ping for `HUNG_SECONDS` is hung, killed and replaced.
- A new worker spends seconds importing the service (more on a busy machine) before it can
  accept, so a second death in that time left nothing accepting. The supervisor keeps one warm
  spare: a process that has imported the service and waits; a dead worker's place is taken by
  the spare at once (it only builds the app: a fraction of a second), and a new spare warms up
  behind it. `kill -HUP` replaces the spare too, so that it runs the new code.

uvicorn stops accepting, then closes at once every connection that has not sent a request yet.
A connection the worker accepted a moment before (Twilio's request still on its way) is then cut
and Twilio hears an "application error", which a worker-by-worker restart (`kill -HUP` of
`phoneline serve`) would do to a few callers under load. So a stopping worker first stops
accepting, gives the connections it already accepted `DRAIN_SECONDS` to deliver their requests,
and only then lets uvicorn shut down as usual (which waits for the requests in progress).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event
from socket import socket as Socket
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn._subprocess import spawn
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


class Spare(Process):
    """A worker process that imports the service and builds its app, then waits for `go`
    before it serves (the app's lifespan, its threads and connections, start only then)."""

    def __init__(self, config: Config, sockets: list[Socket]) -> None:
        self.warm: Event = spawn.Event()
        self.go: Event = spawn.Event()
        super().__init__(config, sockets)

    def target(self, sockets: list[Socket] | None = None) -> None:  # pragma: no cover (child)
        self.config.load()  # imports the service and builds the app: the slow part
        self.warm.set()
        self.go.wait()
        super().target(sockets)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, seeing a worker's death at once and keeping a warm spare (see the
    module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinged: dict[Process, float] = {}
        """Worker -> when its unanswered ping was sent."""
        self.spare: Spare | None = None

    def run(self) -> None:
        log.info("Started parent process [%d]", os.getpid())
        self.init_processes()
        self._warm_a_spare()
        while not self.should_exit.is_set():
            sentinels = [p.process.sentinel for p in self.processes if p.process.is_alive()]
            wait(sentinels, timeout=TICK_SECONDS)  # a worker ending wakes this at once
            self.handle_signals()
            self.keep_subprocess_alive()
        self._retire_the_spare()
        self.terminate_all()
        self.join_all()
        log.info("Stopping parent process [%d]", os.getpid())

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        now = time.monotonic()
        for gone in set(self._pinged) - set(self.processes):
            del self._pinged[gone]
        for index, process in enumerate(self.processes):
            if process.process.is_alive() and not self._hung(process, now):
                continue
            self._pinged.pop(process, None)
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # The app, its settings or the socket are broken: every restart would fail.
                log.error("Child process [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            self.processes[index] = self._replacement()
            log.info(
                "Child process [%s] died; process [%s] took its place",
                process.pid,
                self.processes[index].pid,
            )
        if self.spare is None or not self.spare.process.is_alive():
            self._warm_a_spare()

    def handle_hup(self) -> None:
        super().handle_hup()
        self._retire_the_spare()  # it imported the old code
        self._warm_a_spare()

    def _replacement(self) -> Process:
        """The warm spare, told to serve (and another warming behind it); a cold start when no
        spare is warm yet."""
        spare = self.spare
        if spare is not None and spare.process.is_alive() and spare.warm.is_set():
            spare.go.set()
            self.spare = None
            self._warm_a_spare()
            return spare
        process = Process(self.config, self.sockets)
        process.start()
        return process

    def _warm_a_spare(self) -> None:
        if self.spare is not None and self.spare.process.is_alive():
            self.spare.process.kill()
            self.spare.process.join()
        self.spare = Spare(self.config, self.sockets)
        self.spare.start()

    def _retire_the_spare(self) -> None:
        if self.spare is not None:
            self.spare.kill()
            self.spare.join()
            self.spare = None

    def _hung(self, process: Process, now: float) -> bool:
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
            return not process.process.is_alive()
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
