"""Beside a running `phoneline serve --workers 2` (real processes, SQLite and PostgreSQL): a
line added with `phoneline lines add` answers within 5 s, every `flows publish` (and a
`flows rollback`) is heard by new calls within 5 s, and a call in progress finishes on the
revision it began with. Requests are signed as Twilio signs them."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from bench.harness import (
    ACCOUNT_SID,
    PHONELINE,
    PUBLIC_BASE,
    ServerProcess,
    phoneline_env,
    phoneline_server,
    sign,
)
from service.db import Database
from tests.lines.conftest import SHIPPED_GREETING, TRIALS_GREETING, trials_text
from tests.voice.caller import Heard, parse

SHIPPED_NUMBER = "+18045550100"
TRIALS_NUMBER = "+18045550177"
FIRST_LABEL = "To hear why it matters, press 1."
LIVE_WITHIN = 5.0
IN_A_ROW = 6
"""New calls in a row that must hear a change (two workers: the kernel spreads them)."""

_sids = count(1)


class Call:
    """One signed call to the running service."""

    def __init__(self, client: httpx.Client, base_url: str, called: str) -> None:
        self.client, self.base_url = client, base_url
        self.params = {
            "CallSid": f"CA{next(_sids):032d}",
            "AccountSid": ACCOUNT_SID,
            "From": "+18045559876",
            "To": called,
            "Called": called,
            "CallStatus": "in-progress",
        }
        self.next_url = ""

    def post(self, public_url: str, **extra: str) -> Heard:
        parts = urlsplit(public_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        params = {**self.params, **extra}
        response = self.client.post(
            self.base_url + path,
            content=urlencode(params),
            headers={
                "X-Twilio-Signature": sign(PUBLIC_BASE + path, params),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert response.status_code == 200, response.text
        heard = parse(response.text)
        assert heard.next_url, response.text
        self.next_url = heard.next_url
        return heard

    def start(self) -> Heard:
        return self.post("/twilio/voice")

    def press(self, key: str) -> Heard:
        return self.post(self.next_url, Digits=key)


@pytest.fixture
def serve(database: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    url = database.url.render_as_string(hide_password=False)
    env = phoneline_env(url, tmp_path / "var", RUN_WORKER_IN_SERVER="false")
    server = phoneline_server(env, tmp_path / "serve.log", workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def phoneline(serve: ServerProcess, *args: str) -> None:
    result = subprocess.run(
        [PHONELINE, *args], env=serve.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


LONG = os.environ.get("FAULT_LOAD") == "long"
WALKERS = 20 if LONG else 4
"""Callers walking the menus while revisions are published (`make faults`: 20)."""
EDITIONS = ("two", "three", "four", "five", "six") if LONG else ("two", "three", "four")
"""Revisions published before the rollback (`make faults`: 5)."""
NEW_LABEL = "To hear why trials matter, press 1."


class Walkers:
    """WALKERS callers walking the trials menu over and over while revisions are published:
    each call must keep the revision it began on (its `r=` never changes, and its main menu's
    first choice is that revision's), and every answer must be a 200 with somewhere to go."""

    def __init__(self, serve: ServerProcess) -> None:
        self.serve = serve
        self.stop = threading.Event()
        self.calls = 0
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.walk) for _ in range(WALKERS)]

    def __enter__(self) -> Walkers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def walk(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    self.one_call(client)
                except (AssertionError, httpx.HTTPError) as error:
                    self.errors.append(f"{type(error).__name__}: {error}"[:300])

    def one_call(self, client: httpx.Client) -> None:
        call = Call(client, self.serve.base_url, TRIALS_NUMBER)
        first = call.start().text
        label = FIRST_LABEL if FIRST_LABEL in first else NEW_LABEL
        assert label in first, first
        revision = re.search(r"[?&]r=(\d+)", call.next_url)
        assert revision is not None, call.next_url
        for key in ("1", "#", "*"):
            heard = call.press(key)
            assert f"r={revision.group(1)}" in call.next_url, (key, call.next_url)
            if key != "1":
                assert label in heard.text, (key, label, heard.text)
            time.sleep(0.25)  # a quick caller's pace
        self.calls += 1


def heard_within(
    client: httpx.Client, serve: ServerProcess, number: str, words: str, since: float
) -> tuple[float, float]:
    """(first, every): seconds from `since` until a new call to `number` hears `words`, and
    until IN_A_ROW new calls in a row do."""
    first, in_a_row = None, 0
    while in_a_row < IN_A_ROW:
        elapsed = time.monotonic() - since
        assert elapsed < LIVE_WITHIN, f"{words!r} not heard by every new call within 5 s"
        if words in Call(client, serve.base_url, number).start().text:
            first = elapsed if first is None else first
            in_a_row += 1
        else:
            in_a_row = 0
            time.sleep(0.05)
    assert first is not None
    return first, time.monotonic() - since


def test_lines_added_and_revisions_published_beside_serve_are_live_within_5_seconds(
    serve: ServerProcess, tmp_path: Path
) -> None:
    flow = tmp_path / "trials.yaml"
    with httpx.Client(timeout=10) as client:
        assert SHIPPED_GREETING in Call(client, serve.base_url, SHIPPED_NUMBER).start().text

        flow.write_text(trials_text(), encoding="utf-8")
        phoneline(serve, "lines", "add", "clinical-trials", "--flow", str(flow),
                  "--number", TRIALS_NUMBER, "--keyword", "TRIALS")  # fmt: skip
        added = heard_within(client, serve, TRIALS_NUMBER, TRIALS_GREETING, time.monotonic())

        began = Call(client, serve.base_url, TRIALS_NUMBER)
        assert FIRST_LABEL in began.start().text
        firsts, everys, commands = [], [], []
        walkers = Walkers(serve).__enter__()
        for edition in (*EDITIONS, "rollback"):
            typed = time.monotonic()
            if edition == "rollback":
                phoneline(serve, "flows", "rollback", "clinical-trials", "1", "-m", "back")
                words = TRIALS_GREETING
            else:
                words = f"Clinical Trials Line, edition {edition}."
                text = trials_text(words).replace(
                    "label: {en: hear why it matters,", "label: {en: hear why trials matter,", 1
                )
                flow.write_text(text, encoding="utf-8")
                phoneline(serve, "flows", "publish", "clinical-trials", str(flow), "-m", edition)
            first, every = heard_within(client, serve, TRIALS_NUMBER, words, time.monotonic())
            firsts.append(first)
            everys.append(every)
            commands.append(time.monotonic() - typed - every + first)
            # the call that began on revision 1 goes on in it, whatever is published
            assert FIRST_LABEL in began.press("*").text
        walkers.__exit__()
        assert walkers.errors == [], walkers.errors[:5]
        assert walkers.calls >= WALKERS
        # the shipped line did not change
        assert SHIPPED_GREETING in Call(client, serve.base_url, SHIPPED_NUMBER).start().text
    print(
        f"\nline added -> answered: {added[0]:.2f} s (every worker {added[1]:.2f} s); "
        f"publish -> heard by a new call: p50 {statistics.median(firsts):.2f} s, "
        f"max {max(firsts):.2f} s; by {IN_A_ROW} in a row: p50 "
        f"{statistics.median(everys):.2f} s, max {max(everys):.2f} s "
        f"(from typing the command: p50 {statistics.median(commands):.2f} s, "
        f"max {max(commands):.2f} s); "
        f"{walkers.calls} calls walked the menus meanwhile, 0 errors"
    )
