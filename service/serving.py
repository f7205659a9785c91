"""What a worker process does when it is asked to stop, beyond what uvicorn does.

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
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from uvicorn.server import Server

DRAIN_SECONDS = 1.0

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
