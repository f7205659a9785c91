"""How `phoneline serve` runs its worker processes: a supervisor that sees a death at once, and a
worker that drains before it stops.

`Supervisor` is uvicorn's (it holds the listening socket; `kill -HUP` replaces the workers one
by one), with one change: uvicorn checks each worker in turn by a ping that waits for the
answer, up to the health-check timeout; a worker killed while it was being pinged stalled the
supervisor for that whole timeout (30 s), and a second death in that window left no worker at
all. Here the supervisor wakes the moment a worker process ends (its sentinel), starts its
replacement at once, and pings without ever waiting on an answer: a worker that has not
answered a ping for `HUNG_SECONDS` is hung, killed and replaced.

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
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
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


class Supervisor(Multiprocess):
    """uvicorn's supervisor, seeing a worker's death at once (see the module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinged: dict[Process, float] = {}
        """Worker -> when its unanswered ping was sent."""

    def run(self) -> None:
        log.info("Started parent process [%d]", os.getpid())
        self.init_processes()
        while not self.should_exit.is_set():
            sentinels = [p.process.sentinel for p in self.processes if p.process.is_alive()]
            wait(sentinels, timeout=TICK_SECONDS)  # a worker ending wakes this at once
            self.handle_signals()
            self.keep_subprocess_alive()
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
            log.info("Child process [%s] died; starting another", process.pid)
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement

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
