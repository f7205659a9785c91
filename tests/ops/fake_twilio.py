"""A fake Twilio REST API over real HTTP on 127.0.0.1 (a thread), for TWILIO_API_BASE.

It answers the few resources this service uses (IncomingPhoneNumbers list and update, Messages
create and list, Calls create and fetch, a Recording's media and its deletion) with
Twilio-shaped JSON, checks HTTP Basic auth, and records every request with its decoded form,
so tests assert the exact fields the service posted. `hold_sends()` makes message creation
wait (the request has reached "Twilio") until `release()`; `fail(status)` answers every
Messages, Calls and Recordings request with that HTTP status and `hang()` makes them wait
without an answer, until `recover()`. `calls` is what the Calls resource knows (tests register
the calls they made); `recordings` what the Recordings resource has (`add_recording`; a DELETE
takes one away).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.harness import ACCOUNT_SID, AUTH_TOKEN

__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "FakeTwilio", "running_fake_twilio"]

FINAL_CALL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str

    def field(self, name: str) -> str:
        (value,) = self.form[name]
        return value


@dataclass
class FakeTwilio:
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: threading.Event | None = None
    drop_held: bool = False
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: int | None = None
    hanging: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)
    recordings: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """RecordingSid -> {"wav": bytes, "mp3": bytes} (the formats it is served in)."""
    deleted_recordings: list[str] = field(default_factory=list)
    stalling: threading.Event | None = None
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def add_number(self, phone_number: str, **fields: Any) -> str:
        sid = f"PN{len(self.numbers) + 1:032x}"
        self.numbers[sid] = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "phone_number": phone_number,
            "friendly_name": phone_number,
            "voice_url": "https://demo.twilio.com/welcome/voice/",
            "voice_application_sid": None,
            "sms_application_sid": None,
            **fields,
        }
        return sid

    def hold_sends(self, *, drop: bool = False) -> None:
        """From now on, a message create waits until `release()`; `held` is set when one does.
        With `drop`, a held create is then lost (as if it never reached Twilio)."""
        self.hold = threading.Event()
        self.drop_held = drop
        self.held.clear()

    def release(self) -> None:
        if self.hold is not None:
            self.hold.set()

    def fail(self, status: int = 500) -> None:
        """From now on, Messages and Calls requests get `status` (until `recover()`)."""
        self.failing = status

    def hang(self) -> None:
        """From now on, Messages and Calls requests get no answer (until `recover()`)."""
        self.hanging = threading.Event()

    def stall_downloads(self) -> None:
        """From now on, a recording's download sends half its audio, then nothing, until
        `recover()` (a download cut off in the middle)."""
        self.stalling = threading.Event()

    def recover(self) -> None:
        self.failing = None
        if self.stalling is not None:
            self.stalling.set()
            self.stalling = None
        if self.hanging is not None:
            self.hanging.set()
            self.hanging = None

    def register_call(
        self, sid: str, status: str, duration: int | None, caller: str, called: str
    ) -> None:
        """What the Calls resource says of a call from now on (as Twilio knows every call)."""
        with self.lock:
            self.calls[sid] = {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "status": status,
                "duration": None if duration is None else str(duration),
                "from": caller,
                "to": called,
                "end_time": formatdate(usegmt=True) if status in FINAL_CALL else None,
            }

    def add_recording(self, sid: str, **formats: bytes) -> None:
        with self.lock:
            self.recordings[sid] = dict(formats)

    def requested(self, method: str, path_end: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(path_end)]

    def posts(self, path_end: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith(path_end)]

    def next_sid(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}{next(self._sids):032x}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> Recorded | None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        recorded = Recorded(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            parse_qs(raw, keep_blank_values=True),
            self.headers.get("Authorization", ""),
        )
        with fake.lock:
            fake.requests.append(recorded)
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if recorded.authorization != expected:
            self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return None
        return recorded

    def _faulty(self, path: str) -> bool:
        """Answer (or hang) as the fake's fault says, for Messages and Calls; True if it did."""
        fake = self.server.fake
        if "/Messages" not in path and "/Calls" not in path and "/Recordings" not in path:
            return False
        hanging = fake.hanging
        if hanging is not None:
            hanging.wait(timeout=120)
            self.close_connection = True
            return True
        if fake.failing is not None:
            status = fake.failing
            self._answer(status, {"code": 20500, "message": "Internal error", "status": status})
            return True
        return False

    def do_GET(self) -> None:
        recorded = self._record()
        if recorded is None or self._faulty(recorded.path):
            return
        fake = self.server.fake
        media = rf"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/(RE\w+)\.(wav|mp3)"
        recording = re.fullmatch(media, recorded.path)
        if recording:
            with fake.lock:
                audio = fake.recordings.get(recording.group(1), {}).get(recording.group(2))
            if audio is None:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
                return
            self.send_response(200)
            kind = "audio/mpeg" if recording.group(2) == "mp3" else "audio/x-wav"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(audio)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the fetcher may be gone (killed)
                stalling = fake.stalling
                if stalling is not None:  # half the audio, then nothing until recover()
                    self.wfile.write(audio[: len(audio) // 2])
                    self.wfile.flush()
                    stalling.wait(timeout=120)
                    self.close_connection = True
                    return
                self.wfile.write(audio)
            return
        calls = rf"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/(CA\w+)\.json"
        call = re.fullmatch(calls, recorded.path)
        if call:
            with fake.lock:
                known = fake.calls.get(call.group(1))
            if known is None:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
            else:
                self._answer(200, known)
            return
        if re.fullmatch(
            rf"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers\.json", recorded.path
        ):
            wanted = recorded.query.get("PhoneNumber", [""])[0]
            found = [n for n in fake.numbers.values() if not wanted or n["phone_number"] == wanted]
            self._answer(
                200,
                {
                    "incoming_phone_numbers": found,
                    "end": len(found) - 1,
                    "first_page_uri": recorded.path,
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                    "previous_page_uri": None,
                    "start": 0,
                    "uri": recorded.path,
                },
            )
            return
        if recorded.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            to = recorded.query.get("To", [""])[0]
            with fake.lock:
                found = [m for m in reversed(fake.messages) if not to or m["to"] == to]
            self._answer(200, {"messages": found, "next_page_uri": None, "page": 0})
            return
        self._answer(404, {"code": 20404, "message": "Not found", "status": 404})

    def do_POST(self) -> None:
        recorded = self._record()
        if recorded is None or self._faulty(recorded.path):
            return
        fake = self.server.fake
        prefix = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
        number = re.fullmatch(rf"{prefix}/IncomingPhoneNumbers/(PN\w+)\.json", recorded.path)
        if number and number.group(1) in fake.numbers:
            resource = fake.numbers[number.group(1)]
            for key, values in recorded.form.items():
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
                resource[snake] = values[0] or None
            self._answer(200, resource)
            return
        if recorded.path == f"{prefix}/Messages.json":
            if fake.hold is not None:
                fake.held.set()
                fake.hold.wait(timeout=60)
                if fake.drop_held:
                    fake.hold = None
                    self.close_connection = True
                    return
            sid = fake.next_sid("SM")
            message = {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "to": recorded.form.get("To", [""])[0],
                "from": recorded.form.get("From", [""])[0],
                "body": recorded.form.get("Body", [""])[0],
                "status": "queued",
                "date_created": formatdate(usegmt=True),
                "received_monotonic": time.monotonic(),  # for a test's ledger, not Twilio's
            }
            with fake.lock:
                fake.messages.append(message)
            # The sender may be gone (killed while we held its request): Twilio has it anyway.
            with contextlib.suppress(OSError):
                self._answer(201, message)
            return
        if recorded.path == f"{prefix}/Calls.json":
            sid = fake.next_sid("CA")
            self._answer(201, {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued"})
            return
        self._answer(404, {"code": 20404, "message": "Not found", "status": 404})


    def do_DELETE(self) -> None:
        recorded = self._record()
        if recorded is None or self._faulty(recorded.path):
            return
        fake = self.server.fake
        found = re.fullmatch(
            rf"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/(RE\w+)\.json", recorded.path
        )
        with fake.lock:
            known = found is not None and fake.recordings.pop(found.group(1), None) is not None
            if known and found is not None:
                fake.deleted_recordings.append(found.group(1))
        if not known:
            self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
            return
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeTwilio) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running_fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release()
        fake.recover()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
