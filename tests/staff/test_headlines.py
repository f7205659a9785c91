"""The overview's headline numbers for a chosen range, split by language, on SQLite and
PostgreSQL: what a clinic manager reads at the top of /staff/."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx

from service.db import Database
from service.followups import worklist
from service.followups.sweep import sweep_follow_ups
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import LINE, NOW, VIEWER, record_call, signed_in
from tests.support import AppClient

A, B, C = "+18045551001", "+18045552002", "+18045553003"
TEXTER_EN, TEXTER_ES = "+18045557001", "+18045557002"
COORDINATOR = ("coordinator", "+18048287999")


def headline(page: httpx.Response, key: str) -> list[str]:
    """The cells of a headline row: the label (and what it means, after " / "), All, then
    each language's count."""
    row = re.search(rf'<tr id="headline-{key}">(.*?)</tr>', page.text, re.S)
    assert row, f"no headline row {key}"
    return [
        html.unescape(re.sub(r"<[^>]+>", "", cell.replace('<span class="note">', " / "))).strip()
        for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row.group(1), re.S)
    ]


def test_headline_numbers_by_language_for_a_chosen_range(
    client: AppClient, recorder: Recorder, database: Database
) -> None:
    day = NOW - timedelta(hours=5)
    record_call(recorder, "CA" + "1" * 32, A, day, transfer=(*COORDINATOR, "completed"))
    record_call(recorder, "CA" + "2" * 32, B, day, transfer=(*COORDINATOR, "busy"))
    record_call(recorder, "CA" + "3" * 32, B, day + timedelta(hours=1), language="es")
    record_call(recorder, "CA" + "4" * 32, C, day, language="es", keys=[("main", "1", "why")])
    # Out of the range chosen below: ten days earlier.
    record_call(recorder, "CA" + "5" * 32, C, day - timedelta(days=10), language="es")
    with database.session() as session:
        sweep_follow_ups(session, NOW - timedelta(hours=3))
    with database.session() as session:
        [row] = worklist.list_items(session)
        worklist.close(session, row.item.id, "nina", "reached", NOW - timedelta(hours=1))
    record_call(recorder, "CA" + "6" * 32, C, day + timedelta(hours=2), language="es",
                transfer=(*COORDINATOR, "no-answer"))  # fmt: skip
    with database.session() as session:
        sweep_follow_ups(session, NOW)
        save_conversation(session, TEXTER_EN, LINE, node="main", language="en", now=day)
        save_conversation(session, TEXTER_ES, LINE, node="main", language="es", now=day)
    recorder.message_received("SM" + "1" * 32, TEXTER_EN, LINE, "Hi", at=day)
    recorder.message_received("SM" + "2" * 32, TEXTER_EN, LINE, "1", at=day)
    # The same texter a day and a half later: a second conversation.
    recorder.message_received("SM" + "4" * 32, TEXTER_EN, LINE, "2", at=day + timedelta(hours=30))
    recorder.message_received("SM" + "3" * 32, TEXTER_ES, LINE, "PARAR", intent="opt_out", at=day)
    recorder.opt_out(TEXTER_ES, True, "PARAR", at=day)
    signed_in(client, VIEWER)

    today = NOW.date().isoformat()
    page = client.get(f"/staff/?from={today}&to={today}")
    assert page.status_code == 200
    zone = "by day in the clinic's time zone (UTC)"
    assert f"for {today} to {today}, both included, {zone}" in page.text
    assert headline(page, "calls")[:1] == ["Calls"]
    assert re.search(
        r'<th scope="col" class="num">English</th><th scope="col" class="num">Spanish</th>',
        page.text,
    )
    assert headline(page, "calls") == ["Calls", "5", "2", "3"]
    # B called in both languages: one caller in all, one in each language.
    assert headline(page, "callers") == ["Distinct callers / each number once", "3", "2", "2"]
    assert headline(page, "reached") == [
        "Calls that reached a person / a transfer answered", "1", "1", "0"
    ]
    assert headline(page, "not_answered") == [
        "Transfers not answered / busy, no answer or failed", "2", "1", "1"
    ]
    assert headline(page, "follow_ups_opened") == ["Follow-ups opened", "2", "1", "1"]
    assert headline(page, "follow_ups_closed") == ["Follow-ups closed", "1", "1", "0"]
    assert headline(page, "follow_ups_open") == [
        "Follow-ups opened in these days and still open / now", "1", "0", "1"
    ]
    started = "Text conversations started / a number's texts to the line, until 24 hours "
    assert headline(page, "conversations") == [started + "without one", "2", "1", "1"]
    assert headline(page, "texters")[1:] == ["2", "1", "1"]
    assert headline(page, "stops")[1:] == ["1", "0", "1"]
    assert headline(page, "opted_out")[:1] == [
        "Numbers opted out at the end of these days / however they opted in or out since"
    ]
    assert headline(page, "opted_out")[1:] == ["1", "0", "1"]
    # B's item: first attempt 10:00, closed 14:00.
    assert "waited 4 h 0 min (median), at most 4 h 0 min" in page.text

    # Today and tomorrow: the English texter's second conversation too.
    tomorrow = (NOW + timedelta(days=1)).date().isoformat()
    page = client.get(f"/staff/?from={today}&to={tomorrow}")
    assert headline(page, "conversations")[1:] == ["3", "2", "1"]
    assert headline(page, "texters")[1:] == ["2", "1", "1"]

    # The default range (30 days) takes the older call in too.
    page = client.get("/staff/")
    assert headline(page, "calls") == ["Calls", "6", "2", "4"]


def test_a_range_the_overview_cannot_read_is_a_400_page(client: AppClient) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/?from=2026-11-24&to=2026-11-01")
    assert page.status_code == 400
    assert "From must not be after To" in page.text
    assert client.get("/staff/?from=yesterday").status_code == 400


def test_no_follow_up_closed_says_so(client: AppClient) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/")
    assert "No follow-up was closed in these days." in page.text
    assert headline(page, "calls") == ["Calls", "0"]
