"""The follow-up worklist's life in a real browser (Debian's Chromium) against a real server:
signed Twilio webhooks make the calls, the spool's periodic sweep files and closes items, and
a navigator works them. Screenshots at 1366 and 390 px wide go to test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db import Database, set_database
from service.main import create_app
from service.models import AuditEntry, StaffUser
from tests.staff.conftest import PASSWORD, password_hash, staff_settings
from tests.staff.test_browser import (  # noqa: F401
    ARTIFACTS,
    LiveTwilio,
    _free_port,
    _unavailable,
    chromium,
)
from tests.voice.caller import Caller

pytestmark = pytest.mark.browser

NAVIGATOR = "nina"
CALLER_A = "+18045551234"
CALLER_B = "+15715550188"
WAIT_SECONDS = 30.0
WIDTHS = (1366, 390)
# axe-core (package.json, `npm ci`): AXE_CORE_JS, or node_modules/ in the repository.
AXE_CORE = Path(
    os.environ.get("AXE_CORE_JS", "")
    or Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Live:
    url: str
    database: Database


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path) -> Iterator[Live]:
    """The app served by uvicorn in a thread, its spool (and so the sweep) running."""
    import uvicorn

    path = tmp_path / "browser.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    previous = set_database(database)
    # The sweep every second (not every 5 s): the tests wait for the follow-ups it files.
    app = create_app(staff_settings(tmp_path, f"sqlite:///{path}", spool_periodic_seconds=1))
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
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
    app.state.spool.start()  # what the lifespan does; the sweep runs in its thread
    try:
        yield Live(f"http://127.0.0.1:{port}", database)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.spool.close()
        set_database(previous)
        database.dispose()


def transfer(twilio: LiveTwilio, sid: str, caller: str, status: str) -> None:
    """A call to the coordinator (2, 1, 1) that ends `status`, then hangs up."""
    call = Caller(twilio, call_sid=sid, caller=caller)  # type: ignore[arg-type]
    call.call()
    call.press("2")
    call.press("1")
    heard = call.press("1")
    assert heard.numbers == ["+18048287999"]
    call.dial_ends(status, "40" if status == "completed" else "0")
    assert call.hang_up("60") == 204


def wait_for(page: object, url: str, text: str) -> None:
    """Reload `url` until `text` shows (the sweep runs every few seconds)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page.goto(url)  # type: ignore[attr-defined]
        if text in page.content():  # type: ignore[attr-defined]
            return
        assert time.monotonic() < deadline, f"{text!r} did not appear on {url}"
        time.sleep(0.5)


def accessible(page: object, name: str) -> None:
    """No WCAG 2.1 A/AA violations axe-core can find. Without axe-core (`npm ci`, or
    AXE_CORE_JS) the test skips saying so, or fails under REQUIRE_BROWSER=1."""
    if not AXE_CORE.is_file():
        _unavailable(f"axe-core is not installed at {AXE_CORE} (run `npm ci`, or set AXE_CORE_JS)")
    if page.evaluate("typeof axe") == "undefined":  # type: ignore[attr-defined]
        # Evaluated, not added as a <script>: the Content-Security-Policy refuses inline scripts.
        page.evaluate(AXE_CORE.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    assert page.evaluate("typeof axe.run") == "function"  # type: ignore[attr-defined]
    violations = page.evaluate(  # type: ignore[attr-defined]
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target).join(' ')))",
        AXE_TAGS,
    )
    assert violations == [], f"{name}: {violations}"


SHOT_HEIGHT = 3600
"""A screenshot shows the page down to here (four screens): a long page (every menu's words)
took a second a width to draw and encode whole, and nobody reads its end in a screenshot."""


def screenshots(page: object, name: str) -> None:
    """At each width: axe-core finds nothing, a screenshot of the page (its first
    `SHOT_HEIGHT` px), and (phone width) no sideways scroll."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        accessible(page, f"{name} at {width} px")
        height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)  # type: ignore[attr-defined]
        page.screenshot(  # type: ignore[attr-defined]
            path=str(ARTIFACTS / f"{name}-{width}.jpeg"),
            quality=80,
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": height},
        )
        if width < 500:
            scroll = page.evaluate(  # type: ignore[attr-defined]
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert scroll <= 0, f"{name} scrolls {scroll} px sideways at {width} px"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})  # type: ignore[attr-defined]


def audit_reveals(database: Database) -> list[AuditEntry]:
    with database.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")))


def test_a_follow_up_from_missed_call_to_closed_in_a_browser(chromium: object, live: Live) -> None:  # noqa: F811
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    twilio = LiveTwilio(live.url)
    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    worklist = live.url + "/staff/follow-ups"
    try:
        page.goto(worklist)
        page.get_by_label("Username").fill(NAVIGATOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(worklist)
        expect(page.get_by_role("heading", name="Follow-ups", exact=True)).to_be_visible()
        expect(page.get_by_role("navigation", name="Dashboard")).to_contain_text(
            "Follow-ups (0 open)"
        )

        # A transfer nobody answers: the number appears on the worklist, masked.
        transfer(twilio, "CA" + "a" * 32, CALLER_A, "busy")
        wait_for(page, worklist, "•••-•••-1234")
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.nth(0)).to_contain_text("Transfer not answered")
        expect(rows.nth(0)).to_contain_text("Patient referral coordinator, VCU Massey")
        expect(rows.nth(0)).to_contain_text("nobody yet")
        expect(page.get_by_role("navigation", name="Dashboard")).to_contain_text(
            "Follow-ups (1 open)"
        )
        assert CALLER_A not in page.content() and CALLER_A[2:] not in page.content()
        screenshots(page, "follow-ups")

        # Claimed, a note, the number revealed (audited), closed.
        rows.nth(0).get_by_role("link").click()
        expect(page.get_by_role("heading", name="Follow-up: •••-•••-1234")).to_be_visible()
        page.get_by_role("button", name="Claim").click()
        expect(page.get_by_role("status")).to_have_text("You have claimed this follow-up.")
        expect(page.locator("dl.facts")).to_contain_text(f"claimed by {NAVIGATOR}")
        page.get_by_label("Note").fill("Called at 9:10, line busy; will try after lunch.")
        page.get_by_role("button", name="Add the note").click()
        expect(page.locator("ol.notes")).to_contain_text("Called at 9:10, line busy")
        assert audit_reveals(live.database) == []
        page.get_by_role("button", name="Reveal the number to call back").click()
        expect(page.locator("strong.revealed")).to_have_text(CALLER_A)
        [entry] = audit_reveals(live.database)
        assert entry.actor == NAVIGATOR
        assert entry.detail is not None and "•••-•••-1234" in entry.detail
        assert CALLER_A not in entry.detail
        screenshots(page, "follow-up-item")
        page.get_by_label("How did it end?").select_option("reached")
        page.get_by_role("button", name="Close the follow-up").click()
        expect(page.get_by_role("status")).to_contain_text("The follow-up is closed.")
        expect(page.locator("dl.facts")).to_contain_text(f"Reached, by {NAVIGATOR}")
        page.goto(worklist)
        expect(page.locator("tbody")).to_contain_text("Nobody is waiting for a call back.")

        # Another number: two missed calls are one item with two attempts...
        transfer(twilio, "CA" + "b" * 32, CALLER_B, "no-answer")
        wait_for(page, worklist, "•••-•••-0188")
        transfer(twilio, "CA" + "c" * 32, CALLER_B, "failed")
        wait_for(page, worklist, '<td data-label="Attempts" class="num">2</td>')
        expect(page.locator("tbody tr")).to_have_count(1)
        page.locator("tbody tr").nth(0).get_by_role("link").click()
        expect(page.locator("table").first.locator("tbody tr")).to_have_count(2)

        # ...and a later transfer that is answered closes it by itself.
        transfer(twilio, "CA" + "d" * 32, CALLER_B, "completed")
        wait_for(page, worklist, "Nobody is waiting for a call back.")
        page.get_by_role("link", name="Recently closed").click()
        closed = page.locator("tbody tr")
        expect(closed).to_have_count(2)
        expect(closed.nth(0)).to_contain_text("•••-•••-0188")
        expect(closed.nth(0)).to_contain_text("Reached a person on a later call")
        expect(closed.nth(1)).to_contain_text("•••-•••-1234")
        expect(closed.nth(1)).to_contain_text(re.compile(f"Reached · {NAVIGATOR}"))
        screenshots(page, "follow-ups-closed")
    finally:
        context.close()
        twilio.http.close()


def test_outbound_and_one_numbers_page_in_a_browser(chromium: object, live: Live) -> None:  # noqa: F811
    """Press 8 from a mobile (queued) and from a spoofed Nigerian mobile (refused by the
    outbound policy); staff find both on /staff/outbound and find the first by its last four
    digits; every page legible at 390 px."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    twilio = LiveTwilio(live.url)
    for sid, caller in (("CA" + "e" * 32, CALLER_A), ("CA" + "f" * 32, "+2348031234567")):
        call = Caller(twilio, call_sid=sid, caller=caller)  # type: ignore[arg-type]
        call.call()
        call.press("8")
        assert call.hang_up("30") == 204
    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    try:
        page.goto(live.url + "/staff/outbound")
        page.get_by_label("Username").fill(NAVIGATOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_for(page, live.url + "/staff/outbound", "country not allowed")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Texts and call-backs the line sent"
        )
        expect(page.locator("tbody").last).to_contain_text(
            "Not sent: refused by the outbound policy"
        )
        expect(page.locator("tbody").last).to_contain_text("Queued")
        screenshots(page, "outbound")

        page.get_by_role("link", name="Find a number").click()
        page.get_by_label("Last four digits, CallSid or MessageSid").fill("1234")
        page.get_by_role("button", name="Find").click()
        page.get_by_role("link", name="•••-•••-1234").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Everything from •••-•••-1234")
        assert CALLER_A not in page.content()
        screenshots(page, "number")
    finally:
        context.close()
        twilio.http.close()


def test_an_urgent_follow_up_comes_first_in_a_browser(chromium: object, live: Live) -> None:  # noqa: F811
    """A crisis texted (signed SMS webhook) after a missed transfer: the sweep files it as
    urgent, and the worklist shows it first, marked in words; both pages pass axe-core."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    twilio = LiveTwilio(live.url)
    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    worklist = live.url + "/staff/follow-ups"
    try:
        transfer(twilio, "CA" + "e" * 32, CALLER_A, "no-answer")
        params = {
            "MessageSid": "SM" + "e" * 32, "From": CALLER_B, "To": "+18045550100",
            "Body": "no quiero seguir viviendo",
        }  # fmt: skip
        answer = twilio.twilio("/twilio/sms", params)
        assert answer.status_code == 200 and "988" in answer.text
        page.goto(worklist)
        page.get_by_label("Username").fill(NAVIGATOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_for(page, worklist, "•••-•••-0188")
        wait_for(page, worklist, "•••-•••-1234")
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("•••-•••-0188")
        expect(rows.nth(0)).to_contain_text("Urgent")
        expect(rows.nth(0)).to_contain_text("Wrote or said words about suicide or self-harm")
        expect(rows.nth(1)).to_contain_text("•••-•••-1234")
        expect(rows.nth(1)).not_to_contain_text("Urgent")
        screenshots(page, "follow-ups-urgent")
        rows.nth(0).get_by_role("link").click()
        expect(page.get_by_role("alert")).to_contain_text("Urgent: this number wrote or said")
        screenshots(page, "follow-up-urgent-item")
    finally:
        context.close()
        twilio.http.close()


def test_the_worklist_at_phone_width_urgent_first_filters_attempts_and_a_number_given(
    chromium: object,  # noqa: F811
    live: Live,
) -> None:
    """A navigator's morning at 390 px: the first screen holds the urgent item and the newest
    misses; a filter and "next item" work (the pages have no scripts); an attempt keeps the item
    open with its next try; a number written in a text is revealed and audited."""
    from playwright.sync_api import Browser, expect

    from tests.recorder import Recorder

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    twilio = LiveTwilio(live.url)
    recorder = Recorder(live.database)
    try:
        for n in range(12):
            transfer(twilio, f"CA{n + 40:032d}", f"+1804555{n + 40:04d}", "no-answer")
        texts = [
            ("+18045557100", "I don't want to live anymore"),
            ("+18045557101", "Hi"),
            ("+18045557101", "I need to talk to someone, please call me at 804-555-0199"),
        ]
        for n, (phone, body) in enumerate(texts):
            response = twilio.twilio(
                "/twilio/sms",
                {"MessageSid": f"SM{n + 70:032d}", "From": phone, "To": "+18045550100",
                 "Body": body, "AccountSid": "AC" + "0" * 32},
            )  # fmt: skip
            assert response.status_code == 200
    finally:
        twilio.http.close()
    assert recorder  # (the webhooks recorded everything)
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    base = live.url + "/staff"
    try:
        page.goto(base + "/login")
        page.get_by_label("Username").fill(NAVIGATOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_for(page, base + "/follow-ups", "14 open")
        expect(page.locator("tbody tr").nth(1)).to_contain_text("•••-•••-7101")  # the newest
        screenshots(page, "worklist-morning")
        # The first screen of a phone: the urgent item and the newest misses.
        page.set_viewport_size({"width": 390, "height": 844})
        rows = page.locator("tbody tr")
        expect(rows.first).to_contain_text("Urgent")
        for n in range(2):
            expect(rows.nth(n)).to_be_in_viewport()
        expect(rows).to_have_count(10)
        page.get_by_text("Filter and order").click()
        page.get_by_label("Why").select_option(label="Asked for a person by text")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        screenshots(page, "worklist-filtered")
        page.locator("tbody tr").first.get_by_role("link").click()
        expect(page.get_by_text("Number they asked to be called on", exact=True)).to_be_visible()
        page.get_by_role("button", name=re.compile("Reveal the number they asked")).click()
        expect(page.locator("strong.revealed")).to_have_text("+18045550199")
        screenshots(page, "worklist-number-given")
        page.get_by_label("How did the call go?").select_option(label="No answer")
        page.get_by_label("Try again").select_option(label="Tomorrow morning (9 a.m.)")
        page.get_by_role("button", name="Log the attempt").click()
        expect(page.get_by_role("status")).to_contain_text("The call attempt is logged.")
        expect(page.locator("strong.revealed")).to_have_text("+18045550199")  # still revealed
        expect(page.locator("dl.facts")).to_contain_text("1 of 3 calls by staff; try again")
        screenshots(page, "worklist-attempt")
        page.get_by_role("link", name="Next item").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Urgent")
        page.get_by_label("How did it end?").select_option(label="Reached")
        page.get_by_role("button", name="Close the follow-up").click()
        expect(page.get_by_role("status")).to_contain_text("The follow-up is closed.")
        screenshots(page, "worklist-closed-next")
        page.get_by_role("link", name="Next item").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Follow-up")
    finally:
        context.close()
    with live.database.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).one()
    assert audit.actor == NAVIGATOR and "written in a text" in (audit.detail or "")
