"""Honest outcomes on the staff pages: words for each outcome (colour only repeats them),
answered green and not answered amber to red in the transfers chart, and "where callers hang
up" counting only calls that ended in a menu without a transfer."""

from __future__ import annotations

import re
from datetime import timedelta

from service.models import CallEventKind
from tests.recorder import Recorder
from tests.staff.conftest import NOW, VIEWER, record_call, signed_in
from tests.support import AppClient

GREEN, AMBER, ORANGE = "#047857", "#b45309", "#c2410c"


def seed(recorder: Recorder) -> None:
    at = NOW - timedelta(hours=2)
    record_call(recorder, "CA" + "1" * 32, "+18045550001", at,
                transfer=("coordinator", "+18048287999", "completed"))  # fmt: skip
    # Transfers straight from the main menu (0) that nobody answered: not hang-ups in a menu.
    for n, status in enumerate(("busy", "no-answer", "no-answer")):
        record_call(
            recorder,
            f"CA{n:032d}",
            "+18045550002",
            at + timedelta(minutes=n),
            keys=[("main", "0", "")],
            transfer=("coordinator", "+18048287999", status),
        )
    record_call(recorder, "CA" + "3" * 32, "+18045550003", at, keys=[("main", "2", "reach")])
    record_call(recorder, "CA" + "4" * 32, "+18045550004", at)


def test_the_call_list_names_each_outcome(client: AppClient, recorder: Recorder) -> None:
    seed(recorder)
    signed_in(client, VIEWER)
    page = client.get("/staff/calls").text
    tags = re.findall(r'<span class="tag ([a-z-]+)">([^<]+)</span>', page)
    assert ("reached", "Reached a person") in tags
    assert ("not-answered", "Transfer not answered (busy)") in tags
    assert tags.count(("not-answered", "Transfer not answered (no answer)")) == 2
    assert ("listened", "Listened and left (Find another doctor)") in tags
    assert ("hung-up", "Hung up in a menu (Main menu)") in tags
    assert re.search(r'<option value="not-answered"\s*>Transfer not answered</option>', page)


def test_transfer_colours_and_drop_off(client: AppClient, recorder: Recorder) -> None:
    seed(recorder)
    signed_in(client, VIEWER)
    page = client.get("/staff/").text
    contact = "Patient referral coordinator, VCU Massey"
    assert f'fill="{GREEN}"><title>{contact}, answered: 1</title>' in page
    assert f'fill="{AMBER}"><title>{contact}, busy: 1</title>' in page
    assert f'fill="{ORANGE}"><title>{contact}, no answer: 2</title>' in page
    assert '<th scope="col" class="num">no answer</th>' in page
    drop = page[page.index('id="h-drop"') : page.index('id="h-transfers"')]
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td class="num">(\d+)</td></tr>', drop)
    # One call ended in each menu; the three transfers from the main menu are not hang-ups.
    assert sorted(rows) == [("Find another doctor", "1"), ("Main menu", "1")]


def test_a_call_page_names_menus_and_the_call_back_request(
    client: AppClient, recorder: Recorder
) -> None:
    sid = "CA" + "9" * 32
    record_call(
        recorder,
        sid,
        "+18045550009",
        NOW - timedelta(hours=1),
        keys=[("main", "2", "reach"), ("reach", "1", "")],
        transfer=("coordinator", "+18048287999", "no-answer"),
    )
    recorder.call_event(
        sid, CallEventKind.CALLBACK_REQUEST, node="reach", detail="coordinator",
        at=NOW - timedelta(minutes=59),
    )  # fmt: skip
    signed_in(client, VIEWER)
    page = client.get(f"/staff/calls/{sid}").text
    assert "<dd>Main menu \u203a Find another doctor</dd>" in page
    assert '<th scope="row">Asked for a call back</th>' in page
    assert "after Patient referral coordinator, VCU Massey did not answer" in page
    listing = client.get("/staff/calls").text
    assert '<td data-label="Path">Main menu \u203a Find another doctor</td>' in listing
