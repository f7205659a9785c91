"""SMS line fixtures: the app with a signed-webhook client, a texter, and a fake Twilio REST API
served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from service.config import Settings
from service.db import Database
from service.flowengine import Flow, load_flow
from service.main import create_app
from tests.support import TEST_AUTH_TOKEN, AppClient, app_client

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_FLOW = ROOT / "flows" / "second-opinion.yaml"
LINE = "+18045550199"
TEXTER = "+18045550123"
ACCOUNT_SID = "AC" + "0" * 32


@pytest.fixture(scope="session")
def flow() -> Flow:
    return load_flow(SHIPPED_FLOW)


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": ACCOUNT_SID,
        "var_dir": var_dir,
        "flows_dir": ROOT / "flows",
        "run_worker_in_server": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return make_settings(database.url.render_as_string(hide_password=False), tmp_path / "var")


@pytest.fixture
def client(settings: Settings) -> Iterator[AppClient]:
    with app_client(create_app(settings)) as client:
        yield client


def messages_of(twiml: str) -> list[str]:
    """The texts a TwiML answer sends, in order."""
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return [element.text or "" for element in root.iter("Message")]


_sids = count(1)


@dataclass
class Texter:
    """A patient texting the line: `send` returns the messages the line answers with."""

    client: AppClient
    phone: str = TEXTER
    line: str = LINE
    transcript: list[str] = field(default_factory=list)

    def send(self, body: str, *, sid: str | None = None) -> list[str]:
        sid = sid or f"SM{next(_sids):032d}"
        response = self.client.twilio(
            "/twilio/sms", {"MessageSid": sid, "From": self.phone, "To": self.line, "Body": body}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        messages = messages_of(response.text)
        self.transcript.extend(messages)
        return messages

    def reply(self, body: str) -> str:
        return "\n".join(self.send(body))

    @property
    def everything(self) -> str:
        return "\n".join(self.transcript)


@pytest.fixture
def texter(client: AppClient) -> Texter:
    return Texter(client)


# -- a fake Twilio REST API -------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    form: dict[str, str]
    authorization: str


class FakeTwilio:
    """Answers Messages.json and Calls.json creates as Twilio does, per a script of actions
    taken in order (then "ok"): "ok"; an HTTP status (500, 429, 400...) with a Twilio error
    body; or ("sleep", seconds) before answering "ok"."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Any] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The worker's look-up before a retry ("did Twilio take it already?"): no.
                self._answer(200, {"messages": [], "next_page_uri": None, "page": 0})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                form = {key: values[-1] for key, values in parse_qs(raw).items()}
                with fake.lock:
                    fake.requests.append(
                        Received("POST", self.path, form, self.headers.get("Authorization", ""))
                    )
                    action = fake.script.pop(0) if fake.script else "ok"
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                    action = "ok"
                if action == "ok":
                    kind = "CA" if self.path.endswith("/Calls.json") else "SM"
                    sid = f"{kind}{len(fake.requests):032x}"
                    self._answer(201, {"sid": sid, "status": "queued", "to": form.get("To")})
                else:
                    code = {400: 21211, 429: 20429}.get(int(action), 20500)
                    self._answer(
                        int(action),
                        {"code": code, "message": f"fake error {action}", "status": action},
                    )

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def texts(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    def calls(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/Calls.json")]

    def start(self) -> FakeTwilio:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    try:
        yield fake
    finally:
        fake.stop()


SID_PATTERN = re.compile(r"^(SM|CA)[0-9a-f]{32}$")


@pytest.fixture(autouse=True)
def close_workers() -> Iterator[None]:
    """Every worker a test made lets go of its spool when the test ends."""
    from tests.sms.test_worker import SPOOLS

    yield
    while SPOOLS:
        SPOOLS.pop().close()
