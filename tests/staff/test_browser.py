"""The dashboard in a real browser (Debian's Chromium through Playwright) against a real server.

Calls are made the way Twilio makes them: signed webhooks to the running server. Screenshots of
the overview, a call page and the simulator are saved under test-artifacts/ (gitignored).
Without Chromium these tests skip, unless REQUIRE_BROWSER=1, when they fail.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from service.db import Database, set_database
from service.main import create_app
from tests.staff.conftest import PASSWORD, VIEWER, password_hash, staff_settings
from tests.support import TEST_AUTH_TOKEN, twilio_signature
from tests.voice.caller import Caller

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUMS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
"""Debian's builds of Chromium, in order of preference: its old headless shell (package
chromium-headless-shell, what Playwright itself runs headless tests in; the five browser
modules took 131 processor seconds in it and 177 in the whole browser), then Chromium."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CALLER_A = "+18045551234"
CALLER_B = "+15715550188"
CALLER_C = "+12025550177"
TEXTER = "+18045557001"
LINE = "+18045550100"


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    executable = next((path for path in CHROMIUMS if Path(path).exists()), None)
    executable = executable or shutil.which("chromium")
    if executable is None:
        _unavailable(
            f"Chromium is not installed at {' or '.join(CHROMIUMS)}"
            " (apt-get install chromium-headless-shell)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    import uvicorn

    path = tmp_path / "browser.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    previous = set_database(database)
    app = create_app(staff_settings(tmp_path, f"sqlite:///{path}"))
    app.state.staff_clock = None
    del app.state.staff_clock  # the real clock: calls are recorded at the real time
    from service.models import StaffUser

    with database.session() as session:
        session.add(StaffUser(username=VIEWER, password_hash=password_hash(), role="viewer"))
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.spool.close()  # lifespan is off: the spool the webhooks started is closed here
        set_database(previous)
        database.dispose()


def csp_violations(page: object) -> list[str]:
    """What Chromium reports to the console as refused by the Content-Security-Policy."""
    from playwright.sync_api import ConsoleMessage, Page

    assert isinstance(page, Page)
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("console", keep)
    return errors


class LiveTwilio:
    """What `Caller` needs from a client, against the live server: signed webhook posts."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def twilio(self, path: str, params: Mapping[str, str], **_: object) -> httpx.Response:
        url = path if path.startswith("http") else self.base_url + path
        # Back to back, as fast as the server answers: each turn is timed when it is answered
        # and a call's story is retold from its events sorted by time, so the order in which
        # the spool writes them does not matter (service/calls/facts.py).
        return self.http.post(
            url,
            content=urlencode(dict(params)),
            headers={
                "X-Twilio-Signature": twilio_signature(url, params, TEST_AUTH_TOKEN),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )


def make_calls(base_url: str) -> None:
    twilio = LiveTwilio(base_url)
    try:
        # Through to the coordinator, who answers.
        a = Caller(twilio, call_sid="CA" + "a" * 32, caller=CALLER_A)  # type: ignore[arg-type]
        a.call()
        a.press("2")
        a.press("1")
        heard = a.press("1")
        assert heard.numbers == ["+18048287999"]
        a.dial_ends("completed", "80")
        assert a.hang_up("95") == 204
        assert a.hang_up("95") == 204  # Twilio repeats a status callback
        # Spanish, hangs up in the main menu.
        b = Caller(twilio, call_sid="CA" + "b" * 32, caller=CALLER_B)  # type: ignore[arg-type]
        b.call()
        b.press("9")
        assert b.hang_up("14") == 204
        # The library's line does not answer; the caller hangs up.
        c = Caller(twilio, call_sid="CA" + "c" * 32, caller=CALLER_C)  # type: ignore[arg-type]
        c.call()
        c.press("2")
        c.press("2")
        c.press("1")
        heard = c.dial_ends("no-answer")
        assert heard.numbers == ["+18048280450"]  # the library's second line
        heard = c.dial_ends("no-answer")
        assert "No one answered." in heard.text
        assert c.hang_up("61") == 204
        # A texter asks for the menu, then texts STOP.
        for sid, body in (("SM" + "1" * 32, "Hi"), ("SM" + "2" * 32, "STOP")):
            response = twilio.twilio(
                "/twilio/sms",
                {"MessageSid": sid, "From": TEXTER, "To": LINE, "Body": body,
                 "AccountSid": "AC" + "0" * 32},
            )  # fmt: skip
            assert response.status_code == 200, response.text
    finally:
        twilio.http.close()


def test_staff_review_calls_in_a_browser(chromium: object, server: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    make_calls(server)
    ARTIFACTS.mkdir(exist_ok=True)
    context = chromium.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    violations = csp_violations(page)
    try:
        # Signed out: the list sends us to the sign-in form, which brings us back.
        page.goto(server + "/staff/calls")
        expect(page).to_have_url(server + "/staff/login?next=%2Fstaff%2Fcalls")
        page.get_by_label("Username").fill(VIEWER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(server + "/staff/calls")
        expect(page.get_by_role("heading", name="Calls", exact=True)).to_be_visible()

        # Recording runs after each answer is sent: wait for the last call's final status.
        rows = page.locator("tbody tr")
        for _ in range(50):
            if rows.count() == 3 and "61 s" in page.content():
                break
            time.sleep(0.1)
            page.reload()
        expect(rows).to_have_count(3)
        content = page.content()
        for number in (CALLER_A, CALLER_B, CALLER_C):
            assert number not in content and number[2:] not in content
        expect(rows.nth(0)).to_contain_text("•••-•••-0177")
        expect(rows.nth(0)).to_contain_text("Transfer not answered (no answer)")
        expect(rows.nth(0)).to_contain_text("Patient Resource Library, VCU Massey (no-answer)")
        expect(rows.nth(1)).to_contain_text("•••-•••-0188")
        expect(rows.nth(1)).to_contain_text("es")
        expect(rows.nth(2)).to_contain_text("•••-•••-1234")
        expect(rows.nth(2)).to_contain_text("95 s")
        expect(rows.nth(2)).to_contain_text("Reached a person")

        # Filter: calls that reached a person.
        page.get_by_label("Outcome").select_option("reached")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"/staff/calls\?(.*&)?outcome=reached(&|$)"))
        expect(rows).to_have_count(1)
        expect(rows.nth(0)).to_contain_text("•••-•••-1234")

        # The CSV of what is shown.
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Download these calls as CSV").click()
        download = download_info.value
        assert download.suggested_filename.startswith("calls-")
        csv_path = ARTIFACTS / "calls-reached.csv"
        download.save_as(csv_path)
        with csv_path.open(newline="", encoding="utf-8") as file:
            exported = list(csv.reader(file))
        assert len(exported) == 2
        assert exported[1][:7] == [
            "CA" + "a" * 32, exported[1][1], "95", "•••-•••-1234", "en", "reached",
            "main>reach>coordinator",
        ]  # fmt: skip
        assert exported[1][7:] == [
            "Patient referral coordinator, VCU Massey", "'+18048287999", "completed"
        ]  # fmt: skip

        # The call's timeline.
        rows.nth(0).get_by_role("link").click()
        expect(page.get_by_role("heading", name="Call CA" + "a" * 32)).to_be_visible()
        timeline = page.locator("table tbody")
        expect(timeline).to_contain_text("Pressed")
        expect(timeline).to_contain_text("2 · find another doctor (in Main menu)")
        expect(timeline).to_contain_text("Transfer to")
        expect(timeline).to_contain_text("Transfer ended")
        expect(page.locator("dl.facts")).to_contain_text("Flow version")
        assert CALLER_A not in page.content()
        page.screenshot(path=str(ARTIFACTS / "staff-call.png"), full_page=True)

        # Texts: the conversation, masked, with its opt-out.
        page.get_by_role("link", name="Texts").click()
        conversation = page.locator("tbody tr")
        expect(conversation).to_have_count(1)
        expect(conversation.nth(0)).to_contain_text("•••-•••-7001")
        expect(conversation.nth(0)).to_contain_text("opted out (STOP)")
        conversation.nth(0).get_by_role("link").click()
        expect(page.get_by_role("heading", name="Conversation with •••-•••-7001")).to_be_visible()
        expect(page.locator("table tbody")).to_contain_text("STOP")
        assert TEXTER not in page.content() and TEXTER[2:] not in page.content()

        # The overview's charts.
        page.goto(server + "/staff/")
        expect(page.locator(".chart")).to_have_count(5)
        page.screenshot(path=str(ARTIFACTS / "staff-overview.png"), full_page=True)

        # Keyboard: the first Tab lands on the skip link.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()

        # The stylesheet applied under the Content-Security-Policy, and nothing was refused.
        header = page.locator("header.site")
        assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(15, 23, 42)"
        page.goto(server + "/staff/no-such-page")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        assert violations == [], violations
    finally:
        context.close()


def test_simulator_reaches_the_coordinator_in_a_browser(chromium: object, server: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    violations = csp_violations(page)
    try:
        page.goto(server + "/staff/simulator")
        page.get_by_label("Username").fill(VIEWER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(server + "/staff/simulator")
        page.get_by_label("caller").check()
        page.get_by_label("Language").select_option("en")
        page.get_by_role("button", name="Start").click()
        transcript = page.locator("ol.transcript")
        expect(transcript).to_contain_text("For emergencies, hang up and dial 9 1 1.")
        for key in ("2", "1", "1"):
            page.get_by_role("button", name=f"Press {key}", exact=True).click()
        expect(transcript).to_contain_text("[connects to +18048287999]")
        expect(page.get_by_role("button", name="no-answer")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "staff-simulator.png"), full_page=True)
        assert violations == [], violations
    finally:
        context.close()
