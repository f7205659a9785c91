"""Logging: JSON lines on stdout, and one line (plus a latency observation) per HTTP request.

`configure_logging()` is called by `phoneline serve` (and handed to uvicorn, so every worker
process logs the same way) and by `phoneline worker`. `RequestLog` is the ASGI middleware that
writes the request line; the Twilio webhooks add their CallSid/MessageSid and masked numbers
with `note_twilio_request()`, which it reads from the request's state after the response.

Never logged: message bodies, query strings, unmasked phone numbers.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import logging.config
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import REQUEST_LATENCY
from service.phone import mask

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
STATE_KEY = "log_fields"
# A client's request id is kept when it is short and plain; anything else is replaced.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The fields of the LogRecord itself; everything else passed in `extra=` is logged as a field.
_PLAIN_RECORD = logging.LogRecord("", 0, "", 0, "", None, None).__dict__
_RECORD_ATTRIBUTES = frozenset(_PLAIN_RECORD.keys() | {"message", "asctime"})
_RECORD_SIZE = len(_PLAIN_RECORD)
"""A record's own attributes come first in its __dict__ (`extra=` is added after them)."""

request_log = logging.getLogger("phoneline.request")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra=` fields."""

    _encoder = json.JSONEncoder(default=str, ensure_ascii=False)
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        attributes = record.__dict__
        if len(attributes) > _RECORD_SIZE:  # only then has it fields of its own
            for key, value in itertools.islice(attributes.items(), _RECORD_SIZE, None):
                if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)

    def _time(self, created: float) -> str:
        """ "2026-11-25T06:12:39.123+00:00" (UTC, milliseconds); the part up to the second is
        worked out once a second."""
        second = int(created)
        micros = round((created - second) * 1e6)  # as datetime.fromtimestamp rounds
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if self._second[0] != second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, stamp)
        return f"{self._second[1]}.{micros // 1000:03d}+00:00"


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that flushes a warning or an error at once and anything else within
    `FLUSH_SECONDS`, instead of a write to the file per line (a system call per webhook)."""

    FLUSH_SECONDS = 0.5

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._timer: threading.Timer | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING:
            self.flush()
        elif self._timer is None:
            self._timer = threading.Timer(self.FLUSH_SECONDS, self._flush_later)
            self._timer.daemon = True
            self._timer.start()

    def _flush_later(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer = None
        self.flush()

    def close(self) -> None:
        self.flush()
        super().close()


def logging_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict (also uvicorn's `log_config`): JSON lines to stdout.

    uvicorn's access log is left off: `RequestLog` writes a richer line per request.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "service.logs.LineHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Configure this process's logging as JSON lines; returns the config (for uvicorn)."""
    config = logging_config(level)
    logging.config.dictConfig(config)
    # The JSON lines hold no source line, thread or process: do not work them out for every
    # record (the logging documentation's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return config


_masked = functools.lru_cache(maxsize=4096)(mask)
"""A caller's number comes with each of a call's webhooks: masked once."""


def note_twilio_request(request: Request, form: Mapping[str, Any]) -> None:
    """Put a webhook's CallSid/MessageSid and masked From/To into the request's log line."""
    fields: dict[str, str] = {}
    for param, field in (("CallSid", "call_sid"), ("MessageSid", "message_sid")):
        value = form.get(param)
        if isinstance(value, str) and value:
            fields[field] = value[:64]
    for param, field in (("From", "from"), ("To", "to")):
        value = form.get(param)
        if isinstance(value, str) and value:
            fields[field] = _masked(value)
    request.state.log_fields = fields


@functools.lru_cache(maxsize=1024)
def _latency(route: str, method: str, status: int) -> Any:
    """The latency histogram's child for these labels (looked up once per labels)."""
    return REQUEST_LATENCY.labels(route, method, str(status))


def _route_template(scope: Scope) -> str:
    """The matched route's full path template ("/staff/follow-ups/{raw_id}"), so label values
    stay few."""
    template = _full_template(scope.get("route"), str(scope.get("path", "")))
    if template:
        return template
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        # A plain Starlette route without parameters (the Twilio webhooks): its path is its
        # template.
        return str(scope.get("path", "unmatched"))
    return "unmatched"


def _full_template(route: Any, path: str) -> str | None:
    """The full path template of `route`, matched to `path`. A route keeps its path as its
    router declared it: one included under a prefix (`include_router(..., prefix=...)`) has
    only its own part ("/follow-ups/{raw_id}"). The prefixes are literal, so the full
    template is the request's path up to where the route's own pattern matches the rest (the
    longest rest: a route's pattern begins with its router's literal words).

    Not FastAPI's list of every route in its context (`iter_route_contexts`): that analyses
    every route's parameters again (about 50 ms an app), and its contexts held each app alive
    for good."""
    pattern = getattr(route, "path_regex", None)
    template = getattr(route, "path", None)
    if pattern is None or not isinstance(template, str) or not template:
        return None
    start = 0
    while start != -1:
        if pattern.match(path[start:]):
            return path[:start] + template
        start = path.find("/", start + 1)
    return template


_ID_PREFIX = os.urandom(8).hex()
_ids = itertools.count(1)


def _new_request_id() -> str:
    """Unique, not secret: this process's random prefix and a count (no system call)."""
    return f"{_ID_PREFIX}{next(_ids):016x}"


class RequestLog:
    """ASGI middleware: X-Request-ID in and out, a JSON log line and a latency observation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v for k, v in scope.get("headers", ()) if k == _REQUEST_ID_KEY), b"")
        request_id = incoming.decode("latin-1")
        if not _SAFE_REQUEST_ID.match(request_id):
            request_id = _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            _latency(route, method, status).observe(elapsed)
            level = logging.ERROR if status >= 500 else logging.INFO
            if request_log.isEnabledFor(level):
                fields: dict[str, Any] = {
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "path": scope.get("path", "")[:200],
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 2),
                }
                noted = scope.get("state", {}).get(STATE_KEY)
                if isinstance(noted, dict):
                    fields.update(noted)
                request_log.log(level, "%s %s %s", method, fields["path"], status, extra=fields)
