"""Issue 27 in a real browser (Debian's Chromium) against a real `phoneline serve` process: an
editor changes the line's words without YAML, sees a problem at the field it is about, hears the
draft from a test number while everyone else hears the live line, previews it, publishes it with
a message, records the main menu, rolls back, and moves an option on the menus page.

Calls are signed webhooks, as Twilio makes them. On every page and state: axe-core finds no
WCAG 2.1 A/AA violation at 1366 and 390 px, nothing scrolls sideways at 390 px, and Chromium
refuses nothing under the Content-Security-Policy. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import httpx
import pytest

from bench.harness import PHONELINE, ServerProcess, phoneline_env, phoneline_server
from service.flowengine.segments import segment
from tests.audio import mp3_of
from tests.staff.conftest import PASSWORD
from tests.staff.test_browser import (  # noqa: F401
    ARTIFACTS,
    LiveTwilio,
    chromium,
    csp_violations,
)
from tests.staff.test_browser_follow_ups import WIDTHS, screenshots, wait_for
from tests.support import TEST_AUTH_TOKEN
from tests.voice.caller import Caller, Heard

pytestmark = pytest.mark.browser

EDITOR = "edna"
LINE = "second-opinion"
OLD_GREETING = "Esta es la Línea de Segunda Opinión de VCU Massey."
NEW_GREETING = "Bienvenidos a la Línea de Segunda Opinión de VCU Massey."
"""The Spanish main menu's first sentence, before and after: as many words (the first menu may
say at most 25 before "press 1", and the shipped one says 25)."""
TOO_LONG_SMS = "Línea de Segunda Opinión de VCU Massey: le ayudamos a pedir otra opinión. " * 8
SHORT_SMS = "Línea de Segunda Opinión de VCU Massey. Emergencias: llame al 911."
MY_PHONE, MY_PHONE_E164 = "(804) 555-0123", "+18045550123"
STRANGER = "+15715550188"
LIVE_WITHIN = 5.0
"""Seconds within which a new call hears what was just published (or a test number its draft)."""
PROMPT_CACHE = "public, max-age=31536000, immutable"

_sids = count(1)


@pytest.fixture
def served(sqlite_template: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """`phoneline serve` on a database of its own, with an editor added by `phoneline staff add`.
    No PUBLIC_BASE_URL: webhooks are signed for the address they are posted to."""
    database = tmp_path / "line.db"
    shutil.copyfile(sqlite_template, database)
    env = phoneline_env(
        f"sqlite:///{database}",
        tmp_path / "var",
        PUBLIC_BASE_URL="",
        TWILIO_AUTH_TOKEN=TEST_AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,  # the account `Caller` calls from
        RUN_WORKER_IN_SERVER="false",  # nothing is sent to Twilio
    )
    added = subprocess.run(
        [PHONELINE, "staff", "add", EDITOR, "--role", "editor", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    server = phoneline_server(env, tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def call(twilio: LiveTwilio, caller: str, *keys: str) -> Heard:
    """A signed call from `caller` that presses `keys` and hangs up: what it heard last."""
    phone = Caller(twilio, call_sid=f"CA{next(_sids):032x}", caller=caller)  # type: ignore[arg-type]
    heard = phone.call()
    for key in keys:
        heard = phone.press(key)
    assert phone.hang_up("20") == 204
    return heard


def spanish_greeting(twilio: LiveTwilio, caller: str) -> str:
    """What `caller` hears after pressing 9 (Spanish) on the first menu."""
    return call(twilio, caller, "9").text


def heard_within(twilio: LiveTwilio, caller: str, words: str) -> None:
    """A new call from `caller`, placed at most LIVE_WITHIN seconds from now, hears `words` in
    Spanish (a call every 0.25 s until one does: at most 20, so the call log's first page still
    shows the calls before them)."""
    started = time.monotonic()
    while True:
        placed = time.monotonic() - started
        assert placed <= LIVE_WITHIN, f"{caller} did not hear {words!r} within {LIVE_WITHIN} s"
        if words in spanish_greeting(twilio, caller):
            return
        time.sleep(0.25)


def check(page: object, name: str, violations: list[str]) -> None:
    """The page as it is: axe-core and a screenshot at 1366 and 390 px, no sideways scroll at
    390 px, nothing refused by the Content-Security-Policy so far."""
    screenshots(page, name)
    assert violations == [], f"{name}: {violations}"


def test_an_editor_changes_hears_publishes_records_and_rolls_back_in_a_browser(
    chromium: object,  # noqa: F811
    served: ServerProcess,
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    base = served.base_url
    twilio = LiveTwilio(base)
    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page: Page = context.new_page()
    violations = csp_violations(page)
    try:
        # -- 1. The words page: the Spanish greeting changed, a Spanish text far too long. -------
        page.goto(base + "/staff/login")
        page.get_by_label("Username").fill(EDITOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(base + "/staff/")
        page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Lines").click()
        page.locator("tbody tr").first.get_by_role("link").first.click()
        expect(page).to_have_url(f"{base}/staff/lines/{LINE}")
        page.get_by_role("link", name="Edit the words").click()
        expect(page).to_have_url(f"{base}/staff/lines/{LINE}/words")
        main_menu = page.get_by_role("group", name="Main menu", exact=True)
        greeting = main_menu.get_by_label("What a caller hears (Spanish)")
        expect(greeting).to_have_value(re.compile("^" + re.escape(OLD_GREETING)))
        check(page, "editor-words", violations)
        greeting.fill(greeting.input_value().replace(OLD_GREETING, NEW_GREETING))
        sms = main_menu.get_by_label("What a texter reads (Spanish)")
        sms.fill(TOO_LONG_SMS)
        page.get_by_role("button", name="Save the draft and check it").click()
        expect(page).to_have_url(f"{base}/staff/lines/{LINE}/edit?done=saved")
        expect(page.get_by_role("alert")).to_contain_text("cannot be published until")

        # The problem at its field: under the Spanish text, in the main menu's fieldset, with
        # the text's segment count; not in the list at the top.
        page.get_by_role("link", name="Edit the words without YAML").click()
        main_menu = page.get_by_role("group", name="Main menu", exact=True)
        sms = main_menu.get_by_label("What a texter reads (Spanish)")
        expect(sms).to_have_value(TOO_LONG_SMS.strip())
        expect(sms).to_have_attribute("aria-invalid", "true")
        problems = page.locator('[id="w:nodes.main.sms.es-problems"]')
        expect(problems).to_contain_text(re.compile(r"SMS reply in 'es' takes \d messages"))
        expect(sms).to_have_accessible_description(re.compile(r"takes \d messages.*segment\(s\)"))
        measure = page.locator('[id="w:nodes.main.sms.es-measure"]')
        cut = segment(TOO_LONG_SMS.strip())
        expect(measure).to_contain_text(
            f"{cut.units} characters: {cut.segments} segment(s) of UCS-2"
        )
        expect(measure).to_contain_text("a text message may take 3 in Spanish")
        for shown in (problems, measure):
            expect(main_menu.locator(f'[id="{shown.get_attribute("id")}"]')).to_have_count(1)
        placed = sms.evaluate(
            """field => {
              const problems = document.getElementById(field.id + '-problems');
              const below = problems.getBoundingClientRect(), box = field.getBoundingClientRect();
              return {
                next: field.closest('p').nextElementSibling === problems,
                sameLanguage: field.closest('.language') === problems.closest('.language'),
                gap: below.top - box.bottom,
                overlapsSideways: below.left < box.right && box.left < below.right,
              };
            }"""
        )
        assert placed["next"] and placed["sameLanguage"] and placed["overlapsSideways"], placed
        assert 0 <= placed["gap"] < 40, placed
        expect(page.get_by_role("list", name="Problems of the draft")).to_have_count(0)
        check(page, "editor-words-problem", violations)

        # Fixed, saved again: the draft passes its check.
        sms.fill(SHORT_SMS)
        page.get_by_role("button", name="Save the draft and check it").click()
        expect(page.get_by_role("status")).to_have_text("The draft is saved and checked.")
        expect(page.get_by_text("The check passed.")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_count(0)

        # -- 2. A test number hears the draft; a stranger still hears the live line. -------------
        page.get_by_label("A staff phone").fill(MY_PHONE)
        page.get_by_role("button", name="Add the test number").click()
        expect(page.get_by_role("status")).to_contain_text("The test number is added")
        expect(page.get_by_role("button", name=f"Remove {MY_PHONE_E164}")).to_be_visible()
        heard_within(twilio, MY_PHONE_E164, NEW_GREETING)
        stranger_hears = spanish_greeting(twilio, STRANGER)
        assert OLD_GREETING in stranger_hears and NEW_GREETING not in stranger_hears

        # -- 3. The change view, and the draft in the simulator. ----------------------------------
        page.reload()
        change = page.locator("tbody tr").filter(
            has=page.get_by_role("rowheader", name="Main menu: what a caller hears", exact=True)
        )
        expect(change).to_have_count(1)
        expect(change.locator('[data-label="Language"]')).to_have_text("Spanish")
        expect(change.locator('[data-label="Before"]')).to_contain_text(OLD_GREETING)
        expect(change.locator('[data-label="After"]')).to_contain_text(NEW_GREETING)
        sideways = change.evaluate(
            "row => { const [b, a] = [...row.querySelectorAll('td')].slice(-2)"
            ".map(c => c.getBoundingClientRect()); return a.left >= b.right - 1"
            " && a.top < b.bottom && b.top < a.bottom; }"
        )
        assert sideways, "before and after are not side by side at 1366 px"
        check(page, "editor-draft", violations)
        page.get_by_role("link", name="Try the draft in the simulator").click()
        page.get_by_label("caller").check()
        page.get_by_label("Language").select_option("es")
        page.get_by_role("button", name="Start").click()
        expect(page.locator("ol.transcript")).to_contain_text(NEW_GREETING)
        expect(page.locator("ol.transcript")).not_to_contain_text(OLD_GREETING)
        check(page, "editor-simulator", violations)

        # -- 4. Published with a message (an empty one is refused); a new call hears it. ---------
        page.goto(f"{base}/staff/lines/{LINE}/edit")
        publish = page.get_by_role("button", name=re.compile(r"^Publish revision \d+$"))
        why = page.get_by_label("Why this change (goes with the revision)")
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        publish.click()  # empty: the browser asks for it, nothing is sent
        assert why.evaluate("input => input.validity.valueMissing")
        expect(page).to_have_url(f"{base}/staff/lines/{LINE}/edit")
        assert [url for url in requested if url.endswith("/publish")] == []
        why.fill("   ")  # blanks: the server refuses
        publish.click()
        expect(page.get_by_role("alert")).to_have_text(
            "Say why, in a few words: the message goes with the revision."
        )
        check(page, "editor-publish-refused", violations)
        assert OLD_GREETING in spanish_greeting(twilio, STRANGER)
        page.get_by_label("Why this change (goes with the revision)").fill(
            "A warmer Spanish greeting"
        )
        page.get_by_role("button", name=re.compile(r"^Publish revision \d+$")).click()
        expect(page.get_by_role("status")).to_contain_text("Published")
        heard_within(twilio, STRANGER, NEW_GREETING)

        # The call log: the test number's calls are marked as tests of a draft.
        # (The server records each call after answering it: reload until the first is there.)
        page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Calls").click()
        wait_for(page, page.url, "a test of a draft")
        mine = page.locator("tbody tr").filter(has_text="•••-•••-0123")
        theirs = page.locator("tbody tr").filter(has_text="•••-•••-0188")
        expect(mine.first).to_contain_text("a test of a draft")
        expect(theirs.first).to_be_visible()
        expect(theirs.filter(has_text="a test of a draft")).to_have_count(0)

        # -- 5. A recording of the English main menu, published, played from /prompts/. ---------
        page.goto(f"{base}/staff/lines/{LINE}/words")
        page.get_by_role("link", name="the recordings").click()
        main_region = page.get_by_role("region", name="Main menu")
        main_region.get_by_label("Upload the English recording").set_input_files(
            files=[{"name": "welcome.mp3", "mimeType": "audio/mpeg", "buffer": mp3_of(4)}]
        )
        main_region.get_by_role("button", name="Save the English recording").click()
        expect(page.get_by_role("status")).to_contain_text("Saved in draft revision")
        expect(main_region.locator("audio")).to_have_count(1)
        check(page, "editor-recordings", violations)
        page.get_by_role("status").get_by_role("link", name="published").click()
        page.get_by_label("Why this change (goes with the revision)").fill("The main menu recorded")
        page.get_by_role("button", name=re.compile(r"^Publish revision \d+$")).click()
        expect(page.get_by_role("status")).to_contain_text("Published")
        started = time.monotonic()
        while True:
            assert time.monotonic() - started <= LIVE_WITHIN, "the recording is not played"
            if plays := call(twilio, STRANGER).plays:
                break
        [url] = plays
        assert "/prompts/" in url and url.endswith(".mp3"), url
        prompt = httpx.get(base + url[url.index("/prompts/") :], timeout=10)  # no cookies
        assert prompt.status_code == 200
        assert prompt.headers["content-type"] == "audio/mpeg"
        assert prompt.headers["cache-control"] == PROMPT_CACHE
        assert prompt.content == mp3_of(4)

        # -- 6. Rolled back to the first revision from the line's page. --------------------------
        page.goto(f"{base}/staff/lines/{LINE}")
        history = page.locator("tbody tr")
        expect(history.first).to_contain_text("The main menu recorded")
        expect(history.first).to_contain_text("live")
        expect(page.locator("tbody")).to_contain_text("A warmer Spanish greeting")
        check(page, "editor-line-history", violations)
        first = history.filter(has=page.get_by_role("link", name="revision 1", exact=True))
        first.get_by_role("link", name="Roll back to this").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("to revision 1?")
        undone = page.locator("tbody tr").filter(
            has=page.get_by_role("rowheader", name="Main menu: what a caller hears", exact=True)
        )
        expect(undone.filter(has_text="Spanish").locator('[data-label="After"]')).to_contain_text(
            OLD_GREETING
        )
        check(page, "editor-rollback-confirm", violations)
        page.get_by_role("button", name="Roll back to revision 1").click()
        expect(page.get_by_role("status")).to_have_text("Rolled back: the copy is live.")
        expect(history.first).to_contain_text("a copy of revision 1")
        heard_within(twilio, STRANGER, OLD_GREETING)
        assert call(twilio, STRANGER).plays == []

        # -- 7. The menus page: an option moved down makes a draft in the new order. -------------
        page.goto(f"{base}/staff/lines/{LINE}/edit")
        page.get_by_role("link", name="Edit the menus and contacts without YAML").click()
        options = page.get_by_role("table", name="Options of Main menu, in the order said")
        labels = options.locator('tbody td[data-label="What it says"]')
        expect(labels.first).to_have_text("hear why it matters")  # the page is there (it waits)
        before = labels.all_inner_texts()
        assert len(before) > 2, before
        page.get_by_role("button", name="Move “hear why it matters” down").click()
        expect(page.get_by_role("status")).to_contain_text("The option is moved.")
        expect(labels).to_have_text([before[1], before[0], *before[2:]])
        expect(page.locator("main")).to_contain_text(f"(a draft by {EDITOR})")
        check(page, "editor-menus", violations)
    finally:
        context.close()
        twilio.http.close()
