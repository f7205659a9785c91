"""The overview: inline SVG charts and the tables beside them, purged days included."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI

from service.purge import purge
from tests.recorder import Recorder
from tests.staff.conftest import ADMIN, NOW, VIEWER, post_form, record_call, signed_in
from tests.support import AppClient


def plain(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def seed(recorder: Recorder) -> None:
    # Ten days ago: two calls, later purged into daily counts.
    for n in range(2):
        record_call(
            recorder,
            f"CAold{n}",
            "+18045550001",
            NOW - timedelta(days=10),
            keys=[("main", "1", "why")],
        )
    # Today: a transfer answered, one not answered, one hang-up in the "reach" menu.
    record_call(
        recorder,
        "CAnew1",
        "+18045550002",
        NOW - timedelta(hours=3),
        keys=[("main", "2", "reach"), ("reach", "1", "coordinator"), ("coordinator", "1", "")],
        transfer=("coordinator", "+18048287999", "completed"),
    )
    record_call(
        recorder,
        "CAnew2",
        "+18045550003",
        NOW - timedelta(hours=2),
        keys=[("main", "2", "reach"), ("reach", "2", "library"), ("library", "1", "")],
        transfer=("library", "+18048288709", "busy"),
    )
    record_call(
        recorder, "CAnew3", "+18045550004", NOW - timedelta(hours=1), keys=[("main", "2", "reach")]
    )
    recorder.message_received(
        "SM1", "+18045550005", "+18045550100", "Hi", at=NOW - timedelta(days=10)
    )
    recorder.message_received("SM2", "+18045550005", "+18045550100", "1", at=NOW)


def test_overview_charts_and_tables(
    client: AppClient, recorder: Recorder, staff_app: FastAPI
) -> None:
    seed(recorder)
    report = purge(recorder.database, timedelta(days=5), now=NOW)
    assert report.calls == 2 and report.messages == 1
    signed_in(client, VIEWER)
    page = client.get("/staff/")
    assert page.status_code == 200
    html = page.text
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 2
    assert html.count('<figure class="chart bars">') == 3
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    text = plain(html)
    # Calls and texts per day: the purged day still counts.
    assert "2026-11-14 2 1" in text
    assert "2026-11-24 3 1" in text
    assert "2026-10-26 0 0" in text  # the first of the 30 days
    assert "Main menu: 2 · find another doctor 3" in text
    assert "Find another doctor: 1 · call the patient referral coordinator 1" in text
    assert "Find another doctor 1" in text  # drop-off: CAnew3 hung up in "reach"
    assert "Patient referral coordinator, VCU Massey 1 0 0 0 0 0" in text
    assert "Patient Resource Library, VCU Massey 0 1 0 0 0 0" in text
    # The charts say the same in their accessible descriptions.
    assert "8 in the 30 days" not in text
    assert "<desc" in html
    assert "5 in the 30 days from October 26, 2026 to November 24, 2026" in html


def test_overview_without_data_says_so(client: AppClient) -> None:
    signed_in(client, VIEWER)
    text = plain(client.get("/staff/").text)
    assert "No keys pressed in these days." in text
    assert "No transfers in these days." in text


def test_every_chart_follows_the_range_chosen(client: AppClient, recorder: Recorder) -> None:
    """A range chosen shows its days in every chart and table (a bar a day up to two months,
    a bar a month beyond), not the last 30 days."""
    seed(recorder)  # ten days ago (November 14) and today (November 24)
    record_call(
        recorder,
        "CAsept",
        "+18045550006",
        NOW - timedelta(days=70),  # September 15
        keys=[("main", "4", "disagree")],
        transfer=("cancer_information_service", "+18004226237", "no-answer"),
    )
    signed_in(client, VIEWER)

    # The first half of November: the calls of the 14th, none of today's.
    text = plain(client.get("/staff/?from=2026-11-01&to=2026-11-15").text)
    assert "for 2026-11-01 to 2026-11-15, both included" in text
    assert "Calls per day" in text and "2026-11-14 2 1" in text and "2026-11-15 0 0" in text
    assert "2026-11-24" not in text and "2026-10-26" not in text
    assert "Main menu: 1 · hear why it matters 2" in text
    assert "find another doctor" not in text.lower().split("options chosen", 1)[1]
    assert "No transfers in these days." in text
    assert "Cancer Information Service" not in text

    # September alone: its one call, its key, its transfer not answered.
    text = plain(client.get("/staff/?from=2026-09-01&to=2026-09-30").text)
    assert "2026-09-15 1 0" in text and "2026-11-14" not in text
    assert "Main menu: 4 · hear what to do if the doctors disagree 1" in text
    assert "Cancer Information Service 0 0 1 0 0 0" in text
    assert "No call ended in a menu in these days." in text

    # A year: a bar a month, the first and last months cut to the range.
    page = client.get("/staff/?from=2025-11-24&to=2026-11-24")
    text = plain(page.text)
    assert "Calls per month" in text and "Texts per month" in text
    assert "November 2025 (24 to 30) 0 0" in text
    assert "September 2026 1 0" in text
    assert "November 2026 (1 to 24) 5 2" in text
    assert "2026-11-14" not in text
    assert page.text.count('<rect x="') >= 2 * 13
    assert "6 in the 366 days from November 24, 2025 to November 24, 2026" in page.text


def test_an_admin_purges_from_the_dashboard_and_it_is_audited(
    client: AppClient, recorder: Recorder
) -> None:
    seed(recorder)
    signed_in(client, ADMIN)
    response = post_form(
        client, "/staff/admin", "/staff/admin/purge", older_than="5d", confirm="yes"
    )
    assert response.status_code == 200
    assert "2 calls" in response.text
    audit = plain(client.get("/staff/audit").text)
    assert re.search(r"ada purge purged records before 2026-11-19 15:00 UTC: 2 calls", audit)
    assert "ada sign-in" in audit
    # The purged calls are gone from the list, the overview still counts them.
    assert "CAold0" not in client.get("/staff/calls.csv").text
    assert "2026-11-14 2 1" in plain(client.get("/staff/").text)
    bad = post_form(
        client, "/staff/admin", "/staff/admin/purge", older_than="forever", confirm="yes"
    )
    assert bad.status_code == 400
