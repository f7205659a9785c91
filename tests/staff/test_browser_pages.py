"""Every staff page in a real browser (Debian's Chromium), as an administrator and as a
navigator, on a database filled the way the line fills it: signed webhooks for calls in both
languages with every outcome, text conversations, a queued and a refused outbound text, and the
follow-up the spool's sweep files for a transfer nobody answered.

On each page, at 1366 and 390 px wide: axe-core finds no WCAG 2.1 A/AA violation, a screenshot
goes to test-artifacts/, and at 390 px nothing scrolls sideways and every chart's text is at
least 12 CSS px, inside its chart, with no chart wider than its container. The test fails when
a GET route of the dashboard is visited by none of the checks.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import struct
import time
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.openapi.utils import get_openapi
from sqlalchemy import select

from service.models import FollowUp, StaffUser, Voicemail, VoicemailAudio
from service.staff.outcomes import OUTCOME_LABELS
from service.staff.routes import router
from tests.audio import mp3_of
from tests.recorder import Recorder
from tests.staff.conftest import ADMIN, LINE, PASSWORD, password_hash
from tests.staff.test_browser import ARTIFACTS, LiveTwilio, chromium  # noqa: F401
from tests.staff.test_browser_follow_ups import (  # noqa: F401
    NAVIGATOR,
    WIDTHS,
    Live,
    live,
    screenshots,
    transfer,
    wait_for,
)
from tests.voice.caller import Caller

pytestmark = pytest.mark.browser

SPANISH = "9"  # the main menu's key for Spanish
NOT_FOUND = "any other address (the 404 page)"
NOT_PAGES = {
    "/staff/staff.css": "the stylesheet",
    "/staff/favicon.svg": "the tab's icon",
    "/staff/calls.csv": "a download",
    "/staff/messages.csv": "a download",
    "/staff/voicemails/{raw_id}/audio": "a message's audio, played on its follow-up's page",
}
MESSAGE_CALLER = "+18045551002"
"""The English caller whose transfer nobody answered: they leave a message."""
SMALLEST_CHART_TEXT_PX = 12


LANGUAGES = {"en": ("0a", "+1804555"), "es": ("0b", "+1571555")}
"""Each language's calls: how their CallSids start (hex) and their callers' numbers."""


def call_sid(language: str, n: int) -> str:
    return f"CA{LANGUAGES[language][0]}{n:030d}"


def caller_number(language: str, n: int) -> str:
    return f"{LANGUAGES[language][1]}{n:04d}"


def call_and_press(twilio: LiveTwilio, language: str, n: int, *keys: str) -> Caller:
    """Caller n calls in `language` (9 first for Spanish) and presses `keys`."""
    call = Caller(twilio, call_sid=call_sid(language, n), caller=caller_number(language, n))  # type: ignore[arg-type]
    call.call()
    for key in (SPANISH,) * (language == "es") + keys:
        call.press(key)
    return call


CHART_CHECK = """least => {
  const problems = [];
  let smallest = Infinity;
  const charts = [...document.querySelectorAll('.chart')];
  charts.forEach((chart, index) => {
    const box = chart.getBoundingClientRect();
    const room = chart.parentElement.getBoundingClientRect();
    if (box.left < room.left - 0.5 || box.right > room.right + 0.5) {
      problems.push(`chart ${index + 1} is ${box.width} px wide in ${room.width} px`);
    }
    const labels = [];
    const walker = document.createTreeWalker(chart, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const element = node.parentElement;
      if (!node.textContent.trim() || element.closest('title, desc')) continue;
      const svg = element instanceof SVGElement;
      const size = parseFloat(getComputedStyle(element).fontSize)
        * (svg ? element.getScreenCTM().a : 1);
      const range = document.createRange();
      range.selectNodeContents(node);
      const rect = svg ? element.getBoundingClientRect() : range.getBoundingClientRect();
      const text = node.textContent.trim();
      smallest = Math.min(smallest, size);
      if (size < least) problems.push(`chart ${index + 1}: "${text}" is ${size} px`);
      if (rect.left < box.left - 0.5 || rect.right > box.right + 0.5) {
        problems.push(`chart ${index + 1}: "${text}" runs outside the chart`);
      }
      if (svg) {
        for (const [other, seen] of labels) {
          if (rect.left < seen.right - 1 && seen.left < rect.right - 1
              && rect.top < seen.bottom - 1 && seen.top < rect.bottom - 1) {
            problems.push(`chart ${index + 1}: "${text}" overlaps "${other}"`);
          }
        }
        labels.push([text, rect]);
      }
    }
  });
  return {charts: charts.length, smallest, problems};
}"""


@functools.cache
def staff_pages() -> frozenset[str]:
    """The dashboard's GET routes that answer with a page (not a file), as its OpenAPI schema
    lists them, and the page for any other address. (Once: the schema of every route takes
    a processor a third of a second to make, and every page visited asks.)"""
    schema = get_openapi(title="staff", version="1", routes=router.routes)
    gets = {path for path, methods in schema["paths"].items() if "get" in methods}
    return frozenset(gets - set(NOT_PAGES) | {NOT_FOUND})


def route_of(url: str) -> str:
    """The route that answers `url`: the GET route whose path matches, else NOT_FOUND."""
    path = urlsplit(url).path
    for route in staff_pages() - {NOT_FOUND}:
        parts = re.split(r"(\{[^}]+\})", route)  # "/staff/calls/", "{ident}", ""
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, path):
            return route
    return NOT_FOUND


@dataclass
class Visits:
    """What was checked, and how small the charts' text got at phone width."""

    routes: set[str] = field(default_factory=set)
    smallest_chart_text: float = float("inf")

    def check(self, page: object, name: str) -> None:
        """The page as it is now: axe-core and the screenshots at both widths, the charts at
        phone width."""
        self.routes.add(route_of(page.url))  # type: ignore[attr-defined]
        screenshots(page, name)
        page.set_viewport_size({"width": WIDTHS[-1], "height": 900})  # type: ignore[attr-defined]
        charts = page.evaluate(CHART_CHECK, SMALLEST_CHART_TEXT_PX)  # type: ignore[attr-defined]
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})  # type: ignore[attr-defined]
        assert charts["problems"] == [], f"{name} at {WIDTHS[-1]} px: {charts['problems']}"
        if charts["charts"]:
            self.smallest_chart_text = min(self.smallest_chart_text, charts["smallest"])


def fill_the_line(server: Live) -> None:
    """Calls with every outcome in English and Spanish, texts in both, a queued and a refused
    press-8 text, and a transfer nobody answered (the sweep files its follow-up)."""
    twilio = LiveTwilio(server.url)
    recorder = Recorder(server.database)
    try:
        for language in LANGUAGES:
            caller = functools.partial(call_and_press, twilio, language)
            reached = caller(1001, "2", "1", "1")
            reached.dial_ends("completed", "80")
            assert reached.hang_up("95") == 204
            not_answered = caller(1002, "2", "1", "1")
            not_answered.dial_ends("busy")
            if language == "en":  # a message after the beep (its audio: keep_the_message)
                not_answered.press("3")
                left = not_answered.post(
                    not_answered.url, RecordingSid="RE" + "3" * 32, RecordingDuration="2"
                )
                assert "We got your message" in left.text
            assert not_answered.hang_up("40") == 204
            assert caller(1003).hang_up("12") == 204  # hung up in the main menu
            assert caller(1004, "2").hang_up("33") == 204  # listened and left
            failed = caller(1005).params(CallStatus="failed", CallDuration="0")
            assert twilio.twilio("/twilio/voice/status", failed).status_code == 204
            caller(1006, "2")  # still in progress
            # Nothing more was heard of it: the spool marks such a call unknown after hours.
            unknown = call_sid(language, 1007)
            recorder.call_started(unknown, caller_number(language, 1007), LINE, language=language)
            recorder.call_status(unknown, "unknown")
        for n, (phone, body) in enumerate(
            (
                ("+18045557001", "Hi"),
                ("+18045557001", "1"),
                ("+15715557002", "Hola, necesito ayuda"),
                ("+18045557003", "STOP"),
            )
        ):
            response = twilio.twilio(
                "/twilio/sms",
                {"MessageSid": f"SM{n:032d}", "From": phone, "To": LINE, "Body": body,
                 "AccountSid": "AC" + "0" * 32},
            )  # fmt: skip
            assert response.status_code == 200, response.text
        # Press 8: the numbers by text to a mobile (queued), and to a spoofed foreign mobile
        # (refused by the outbound policy).
        for sid, phone in (("CA" + "8" * 32, "+18045551234"), ("CA" + "9" * 32, "+2348031234567")):
            call = Caller(twilio, call_sid=sid, caller=phone)  # type: ignore[arg-type]
            call.call()
            call.press("8")
            assert call.hang_up("30") == 204
        transfer(twilio, "CA" + "f" * 32, "+18045551234", "no-answer")
    finally:
        twilio.http.close()


def tone(seconds: float = 2, rate: int = 8000) -> bytes:
    """A WAV of a 440 Hz tone."""
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return buffer.getvalue()


def keep_the_message(server: Live) -> int:
    """The message's audio, as the worker keeps it once it is copied from Twilio (this server
    has no Twilio to copy from): two seconds of a tone. Its follow-up item's id."""
    deadline = time.monotonic() + 30
    mine = select(FollowUp.id).where(FollowUp.phone == MESSAGE_CALLER)
    while True:
        with server.database.session() as session:
            voicemail = session.scalars(select(Voicemail)).first()
            item = session.scalars(mine).first()
            if voicemail is not None and item is not None:
                content = tone()
                digest = hashlib.sha256(content).hexdigest()
                audio = VoicemailAudio(
                    sha256=digest, content_type="audio/wav", content=content, size=len(content)
                )
                session.add(audio)
                session.flush()
                voicemail.audio_sha256, voicemail.state = digest, "done"
                return item
        assert time.monotonic() < deadline, "the message did not reach the worklist"
        time.sleep(0.2)


PLAYS = """audio => new Promise(done => {
  audio.addEventListener('loadedmetadata', () => done(audio.duration), {once: true});
  audio.addEventListener('error', () => done(-1), {once: true});
  audio.load();
})"""
"""How long the page's `<audio>` says its message lasts, once the browser loaded it (-1: it
could not: the route refused it, or the Content-Security-Policy blocked it)."""


def sign_in_as(page: object, username: str) -> None:
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]


def test_every_staff_page_is_accessible_at_desktop_and_phone_width(
    chromium: object,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    with live.database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
    fill_the_line(live)
    visits = Visits()
    base = live.url + "/staff"

    def visit(page: Page, name: str, path: str, text: str | None = None) -> None:
        if text is None:
            page.goto(base + path)
        else:
            wait_for(page, base + path, text)
        visits.check(page, name)

    def every_page(page: Page, role: str) -> None:
        """The pages both roles see, each in the states that matter."""
        visit(page, f"{role}-overview", "/")
        expect(page.locator(".chart")).to_have_count(5)
        visit(page, f"{role}-overview-empty-range", "/?from=2020-01-01&to=2020-01-31")
        today = datetime.now(UTC).date()  # the server's TIMEZONE is UTC
        visit(page, f"{role}-overview-year", f"/?from={today - timedelta(days=365)}&to={today}")
        expect(page.get_by_role("heading", name="Calls per month")).to_be_visible()
        expect(page.locator("svg.chart rect[x]")).to_have_count(2 * 13)
        visit(page, f"{role}-calls", "/calls")
        expect(page.locator("tbody tr")).to_have_count(17)
        for outcome in OUTCOME_LABELS.values():
            expect(page.locator("tbody")).to_contain_text(outcome)
        visit(page, f"{role}-calls-filtered", "/calls?outcome=reached&language=es")
        expect(page.locator("tbody tr")).to_have_count(1)
        visit(page, f"{role}-calls-empty", "/calls?from=2020-01-01&to=2020-01-02")
        expect(page.locator("tbody")).to_contain_text("No calls match these filters.")
        visit(page, f"{role}-call", f"/calls/{call_sid('es', 1001)}")
        expect(page.locator("dl.facts")).to_contain_text("Reached a person")
        page.get_by_role("link", name=re.compile(r"revision 1$")).click()  # the menu heard
        expect(page.get_by_role("heading", name="What a caller hears, in Spanish")).to_be_visible()
        visits.check(page, f"{role}-revision")
        visit(page, f"{role}-lines", "/lines")
        page.locator("tbody tr").first.get_by_role("link").first.click()
        expect(page.locator("tbody")).to_contain_text("live")
        visits.check(page, f"{role}-line")
        visit(page, f"{role}-hours", "/hours")
        if role != "viewer":
            page.get_by_label("Day").fill("12-25")
            page.get_by_label("Message (English, optional)").fill("Closed for Christmas.")
            page.get_by_role("button", name="Add the closure").click()
            expect(page.get_by_role("status")).to_contain_text("The closure is added")
            visits.check(page, f"{role}-hours-with-a-closure")
            page.get_by_role("button", name=re.compile("^Remove the closure")).click()
            expect(page.get_by_role("status")).to_contain_text("The closure is removed")
        visit(page, f"{role}-messages", "/messages")
        page.locator("tbody tr").first.get_by_role("link").click()
        visits.check(page, f"{role}-conversation")
        visit(page, f"{role}-follow-ups", "/follow-ups")
        page.locator("tbody tr").first.get_by_role("link").click()
        visits.check(page, f"{role}-follow-up")
        visit(page, f"{role}-follow-up-with-a-message", f"/follow-ups/{message_item}")
        expect(page.get_by_role("heading", name="Messages left")).to_be_visible()
        expect(page.locator("dl.facts")).to_contain_text("Left a voicemail")
        seconds = page.locator("audio").evaluate(PLAYS)
        assert 1.9 < seconds < 2.1, seconds
        visit(page, f"{role}-follow-ups-closed", "/follow-ups?show=closed")
        visit(page, f"{role}-outbound", "/outbound", "country not allowed")
        visit(page, f"{role}-search", "/search")
        visit(page, f"{role}-search-found", "/search?q=1234")
        page.get_by_role("link", name="•••-•••-1234").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Everything from •••-•••-1234")
        visits.check(page, f"{role}-number")
        visit(page, f"{role}-search-not-found", "/search?q=0000")
        expect(page.locator("tbody")).to_contain_text("No number ending in 0000")
        visit(page, f"{role}-simulator", "/simulator")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("button", name="Press 2", exact=True).click()
        visits.check(page, f"{role}-simulator-call")
        visit(page, f"{role}-password", "/password")
        visit(page, f"{role}-not-found", "/no-such-page")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        visit(page, f"{role}-error", "/calls?from=not-a-day")
        expect(page.get_by_role("heading", name="Check the filters")).to_be_visible()

    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    try:
        visit(page, "signed-out-login", "/login")
        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        visits.check(page, "signed-out-login-failed")
        sign_in_as(page, ADMIN)
        expect(page).to_have_url(base + "/")
        # The spool records each webhook after answering it: wait for the last one, the final
        # status of the last transfer (60 s), and for the follow-up the sweep files for it.
        wait_for(page, base + "/calls", "60 s")
        wait_for(page, base + "/follow-ups", "•••-•••-1234")
        message_item = keep_the_message(live)
        every_page(page, "admin")
        visit(page, "admin-audit", "/audit")
        visit(page, "admin-admin", "/admin")
        page.get_by_role("link", name=f"Choose lines for {NAVIGATOR}").click()
        expect(page.get_by_role("heading", name=f"Lines {NAVIGATOR} sees")).to_be_visible()
        visits.check(page, "admin-account-lines")
        page.get_by_role("link", name="Back to administration").click()
        page.get_by_label("Token name").fill("crm-export")
        page.get_by_role("button", name="Make the token").click()
        expect(page.get_by_role("heading", name="API token crm-export")).to_be_visible()
        visits.check(page, "admin-api-token")
        page.get_by_role("link", name="Back to administration").click()
        expect(page.get_by_role("row", name=re.compile("crm-export"))).to_contain_text("active")
        visits.check(page, "admin-admin-with-a-token")
        visit(page, "admin-line-words", "/lines/second-opinion/words")
        expect(page.get_by_label("What a caller hears (Spanish)").first).to_be_visible()
        visit(page, "admin-line-recordings", "/lines/second-opinion/recordings")
        chosen = page.locator("#audio-main-en")
        chosen.set_input_files(
            files=[{"name": "welcome.mp3", "mimeType": "audio/mpeg", "buffer": mp3_of(3)}]
        )
        main_menu = page.get_by_role("region", name="Main menu")
        main_menu.get_by_role("button", name="Save the English recording").click()
        expect(page.get_by_role("status")).to_contain_text("Saved in draft revision")
        expect(page.locator("audio")).to_have_count(1)
        visits.check(page, "admin-line-recordings-with-one")
        visit(page, "admin-line-editor", "/lines/second-opinion/edit")
        box = page.get_by_label(re.compile("^The flow"))
        box.fill(box.input_value().replace("Esta es la Línea", "Bienvenido a la Línea"))
        page.get_by_role("button", name="Save the draft and check it").click()
        expect(page.get_by_role("status")).to_contain_text("The draft is saved and checked.")
        expect(page.locator("table.stack")).to_contain_text("Bienvenido a la Línea")
        visits.check(page, "admin-line-editor-draft")
        page.get_by_role("link", name="Try the draft in the simulator").click()
        page.locator("#lang").select_option("es")
        page.get_by_role("button", name="Start").click()
        expect(page.locator("main")).to_contain_text("Bienvenido a la Línea")
        visits.check(page, "admin-draft-simulator")
        visit(page, "admin-rollback", "/lines/second-opinion/revisions/1/rollback")
        expect(page.get_by_role("button", name="Roll back to revision 1")).to_be_visible()
        visit(page, "admin-line-menus", "/lines/second-opinion/menus")
        page.get_by_label("Key of “hear why it matters”").fill("0")
        page.get_by_role("button", name="Change the key").first.click()
        expect(page.locator("#option-main-0-key-refused")).to_contain_text("0 is reserved")
        visits.check(page, "admin-line-menus-refused")
        page.goto(base + "/lines/second-opinion/menus")
        page.get_by_label("Its name").fill("Insurance questions")
        page.get_by_label("What a caller hears (English)").fill("Ask your insurer.")
        page.get_by_label("What a caller hears (Spanish)").fill("Pregunte a su seguro.")
        page.get_by_role("button", name="Add the menu").click()
        expect(page.get_by_role("status")).to_contain_text("The menu is added")
        expect(page.locator("#problems-insurance_questions")).to_contain_text("unreachable")
        visits.check(page, "admin-line-menus-draft-with-a-problem")
        visit(page, "admin-line-words-with-a-problem", "/lines/second-opinion/words")
        expect(page.locator("fieldset.words .error").first).to_contain_text("unreachable")
        page.goto(base + "/admin")
        page.get_by_role("button", name="Purge").click()
        expect(page.get_by_role("heading", name="Purge old records?")).to_be_visible()
        visits.check(page, "admin-confirm-purge")
    finally:
        context.close()

    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    try:
        page.goto(base + "/login")
        sign_in_as(page, NAVIGATOR)
        expect(page).to_have_url(base + "/")
        every_page(page, "navigator")
        visit(page, "navigator-not-allowed", "/audit")
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        context.close()

    assert SMALLEST_CHART_TEXT_PX <= visits.smallest_chart_text < float("inf"), "no chart measured"
    assert staff_pages() - visits.routes == set(), "staff pages no check visits"
