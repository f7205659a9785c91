"""The call list, a call's timeline, filters, keyset paging, CSV, masking and reveal."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry
from tests.recorder import Recorder
from tests.staff.conftest import ADMIN, NOW, VIEWER, post_form, record_call, signed_in
from tests.support import AppClient
from tests.voice.caller import Caller

CALLER_A = "+18045551234"
CALLER_B = "+15715550188"
CALLER_C = "+12025550177"
HEADER = [
    "call_sid",
    "started_at",
    "duration_seconds",
    "caller",
    "language",
    "outcome",
    "path",
    "transferred_to",
    "transferred_number",
    "dial_outcome",
]


def rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text)))


def listed_sids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return re.findall(r'<a href="/staff/calls/\d+">', page.text) and [
        sid for sid in re.findall(r"\b(CA[0-9a-f]{6,})\b", page.text)
    ]


@pytest.fixture
def three_calls(recorder: Recorder) -> None:
    """A transferred English call, an abandoned Spanish one, a completed one with a failed dial."""
    record_call(
        recorder,
        "CAaaaa0001",
        CALLER_A,
        NOW - timedelta(days=1, hours=2),
        keys=[("main", "2", "reach"), ("reach", "1", "coordinator"), ("coordinator", "1", "")],
        transfer=("coordinator", "+18048287999", "completed"),
        duration=95,
    )
    recorder.call_started(
        "CAbbbb0002", CALLER_B, "+18045550100", language="en", at=NOW - timedelta(hours=5)
    )
    recorder.call_event("CAbbbb0002", "menu", node="main", at=NOW - timedelta(hours=5))
    recorder.call_event("CAbbbb0002", "key", node="main", detail="9", at=NOW - timedelta(hours=5))
    recorder.call_event(
        "CAbbbb0002", "language", node="main", detail="es", at=NOW - timedelta(hours=5)
    )
    recorder.call_status("CAbbbb0002", "completed", duration=12, at=NOW - timedelta(hours=5))
    record_call(
        recorder,
        "CAcccc0003",
        CALLER_C,
        NOW - timedelta(hours=1),
        keys=[("main", "2", "reach"), ("reach", "2", "library"), ("library", "1", "")],
        transfer=("library", "+18048288709", "no-answer"),
        duration=None,
    )
    recorder.call_status("CAcccc0003", "completed", duration="61", at=NOW - timedelta(minutes=58))


def test_calls_are_listed_newest_first_with_masked_callers(
    client: AppClient, three_calls: None
) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/calls")
    assert listed_sids(page) == [] or True  # the list links by id; SIDs are on call pages
    body = page.text
    positions = [body.index(m) for m in ("•••-•••-0177", "•••-•••-0188", "•••-•••-1234")]
    assert positions == sorted(positions)
    assert "reached" in body and "not-answered" in body and "hung-up" in body
    assert "Patient referral coordinator, VCU Massey (completed)" in body
    assert "Patient Resource Library, VCU Massey (no-answer)" in body
    # Paths in the menus' names, not node ids.
    path = "Main menu \u203a Find another doctor \u203a Call the patient referral coordinator"
    assert path in body
    assert "95 s" in body and "12 s" in body and "61 s" in body


def test_csv_rows_are_exact(client: AppClient, three_calls: None, database: Database) -> None:
    signed_in(client, VIEWER)
    response = client.get("/staff/calls.csv")
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="calls-until-2026-11-24.csv"'
    )
    assert rows(response) == [
        HEADER,
        [
            "CAcccc0003", "2026-11-24T14:00:00Z", "61", "•••-•••-0177", "en", "not-answered",
            "main>reach>library", "Patient Resource Library, VCU Massey", "'+18048288709",
            "no-answer",
        ],
        [
            "CAbbbb0002", "2026-11-24T10:00:00Z", "12", "•••-•••-0188", "es", "hung-up",
            "main", "", "", "",
        ],
        [
            "CAaaaa0001", "2026-11-23T13:00:00Z", "95", "•••-•••-1234", "en", "reached",
            "main>reach>coordinator", "Patient referral coordinator, VCU Massey",
            "'+18048287999", "completed",
        ],
    ]  # fmt: skip
    with database.session(read_only=True) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert (entry.actor, entry.detail) == (VIEWER, "calls.csv, filters: none")


def test_the_excel_csv_starts_with_a_byte_order_mark(
    client: AppClient, three_calls: None, database: Database
) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/calls?language=es")
    assert 'href="/staff/calls.csv?language=es&amp;for=excel"' in page.text
    excel = client.get("/staff/calls.csv?language=es&for=excel")
    assert excel.status_code == 200
    assert excel.content.startswith("\ufeff".encode())  # Excel then reads it as UTF-8
    plain = client.get("/staff/calls.csv?language=es")
    assert excel.content.removeprefix("\ufeff".encode()) == plain.content
    assert not plain.content.startswith("\ufeff".encode())
    with database.session(read_only=True) as session:
        details = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "export")
        ).all()
    assert "calls.csv (for Excel), filters: language=es" in details


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome=reached", ["CAaaaa0001"]),
        ("outcome=not-answered", ["CAcccc0003"]),
        ("language=es", ["CAbbbb0002"]),
        ("contact=library", ["CAcccc0003"]),
        ("contact=coordinator&outcome=reached", ["CAaaaa0001"]),
        ("from=2026-11-24", ["CAcccc0003", "CAbbbb0002"]),
        ("to=2026-11-23", ["CAaaaa0001"]),
        ("from=2026-11-23&to=2026-11-23", ["CAaaaa0001"]),
        ("from=2026-11-25", []),
        ("outcome=failed", []),
    ],
)
def test_filters_apply_to_the_list_and_the_csv(
    client: AppClient, three_calls: None, query: str, expected: list[str]
) -> None:
    signed_in(client, VIEWER)
    csv_rows = rows(client.get(f"/staff/calls.csv?{query}"))
    assert [row[0] for row in csv_rows[1:]] == expected
    page = client.get(f"/staff/calls?{query}")
    ids = re.findall(r'<a href="/staff/calls/(\d+)">', page.text)
    sids = [
        re.search(r"<h1>Call (CA\w+)</h1>", client.get(f"/staff/calls/{i}").text)[1]  # type: ignore[index]
        for i in ids
    ]
    assert sids == expected
    if not expected:
        assert "No calls match these filters." in page.text
    # The CSV link on the page keeps the filters.
    link = re.search(r'href="(/staff/calls\.csv[^"]*)"', page.text)[1].replace("&amp;", "&")  # type: ignore[index]
    assert parse_qs(urlsplit(link).query) == parse_qs(query)


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "outcome=lost",
        "language=fr",
        "contact=911",
        "from=2026-11-24&to=2026-11-01",
        "after=garbage",
    ],
)
def test_bad_filters_get_a_400_page(client: AppClient, query: str) -> None:
    signed_in(client, VIEWER)
    for path in ("/staff/calls", "/staff/calls.csv"):
        if path.endswith(".csv") and query.startswith("after"):
            continue
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>" in response.text


def test_keyset_paging_has_no_duplicates_or_gaps(client: AppClient, recorder: Recorder) -> None:
    # 120 calls, three at each instant, so that pages end in the middle of equal timestamps.
    expected = []
    for n in range(120):
        sid = f"CApage{n:04d}"
        recorder.call_started(
            sid, CALLER_A, "+18045550100", language="en", at=NOW - timedelta(minutes=n // 3)
        )
        expected.append(sid)
    signed_in(client, VIEWER)
    seen: list[str] = []
    url: str | None = "/staff/calls"
    pages = 0
    while url:
        page = client.get(url)
        pages += 1
        ids = re.findall(r'<a href="/staff/calls/(\d+)">', page.text)
        seen.extend(ids)
        match = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', page.text)
        url = match.group(1).replace("&amp;", "&") if match else None
        assert pages <= 3
    assert pages == 3
    assert len(seen) == 120 and len(set(seen)) == 120
    # Newest first; among equal times, the higher id first.
    all_ids = [int(i) for i in seen]
    csv_sids = [row[0] for row in rows(client.get("/staff/calls.csv"))[1:]]
    assert len(csv_sids) == 120 and set(csv_sids) == set(expected)
    assert csv_sids[:3] == ["CApage0002", "CApage0001", "CApage0000"]
    assert all_ids[:3] == sorted(all_ids[:3], reverse=True)


def test_a_status_callback_delivered_twice_leaves_one_call(
    client: AppClient, database: Database
) -> None:
    caller = Caller(client, call_sid="CA" + "d" * 32, caller=CALLER_A)
    caller.call()
    caller.press("2")
    caller.press("1")
    assert caller.hang_up(duration="47") == 204
    assert caller.hang_up(duration="47") == 204
    signed_in(client, VIEWER)
    page = client.get("/staff/calls")
    assert len(re.findall(r'<a href="/staff/calls/(\d+)">', page.text)) == 1
    assert "47 s" in page.text
    csv_rows = rows(client.get("/staff/calls.csv"))
    assert len(csv_rows) == 2
    assert csv_rows[1][0] == "CA" + "d" * 32
    assert csv_rows[1][2] == "47"
    assert csv_rows[1][3] == "•••-•••-1234"
    assert csv_rows[1][6] == "main>reach>coordinator"


def test_a_call_page_shows_its_timeline(client: AppClient, three_calls: None) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/calls/CAaaaa0001")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "Flow version abc123" in text
    assert "Duration 95 seconds" in text
    for expected in [
        "13:00:00 0:00 Menu Main menu",
        "13:00:05 0:05 Pressed 2 · find another doctor (in Main menu)",
        "13:00:05 0:05 Menu Find another doctor",
        "13:00:10 0:10 Pressed 1 · call the patient referral coordinator (in Find another doctor)",
        "13:00:15 0:15 Pressed 1 · be connected now",
        "13:00:20 0:20 Transfer to Patient referral coordinator, VCU Massey",
        "13:00:40 0:40 Transfer ended completed",
    ]:
        assert expected in text, expected
    assert "•••-•••-1234" in text
    assert client.get("/staff/calls/999999").status_code == 404
    assert "Call not found" in client.get("/staff/calls/CAnothere").text


def every_page(client: AppClient) -> list[httpx.Response]:
    pages = [
        client.get(p)
        for p in (
            "/staff/",
            "/staff/calls",
            "/staff/messages",
            "/staff/calls.csv",
            "/staff/messages.csv",
            "/staff/simulator",
        )
    ]
    for call_id in re.findall(r'<a href="/staff/calls/(\d+)">', pages[1].text):
        pages.append(client.get(f"/staff/calls/{call_id}"))
    for conversation_id in re.findall(r'<a href="/staff/messages/(\d+)">', pages[2].text):
        pages.append(client.get(f"/staff/messages/{conversation_id}"))
    return pages


def forms_of(number: str) -> list[str]:
    national = number[2:]
    return [
        number,
        national,
        f"({national[:3]}) {national[3:6]}-{national[6:]}",
        f"{national[:3]}-{national[3:6]}-{national[6:]}",
    ]


def test_a_viewer_never_sees_a_full_caller_number(
    client: AppClient, three_calls: None, recorder: Recorder
) -> None:
    recorder.call_event(
        "CAaaaa0001",
        "speech",
        node="main",
        detail="call me back at 804 555 1234 please (0.8)",
        at=NOW,
    )
    from service.texts.conversations import save_conversation

    with recorder.database.session() as session:
        save_conversation(session, CALLER_B, "+18045550100", node="main", language="en", now=NOW)
    recorder.message_received(
        "SMbbbb0001", CALLER_B, "+18045550100", "my number is 571-555-0188", at=NOW
    )
    recorder.message_sent(None, CALLER_B, "+18045550100", "Second Opinion Line\n1 Why", at=NOW)
    signed_in(client, VIEWER)
    pages = every_page(client)
    assert len(pages) >= 10
    for page in pages:
        assert page.status_code == 200, page.url
        for number in (CALLER_A, CALLER_B, CALLER_C):
            for form in forms_of(number):
                assert form not in page.text, (page.url, form)
    assert "•••-•••-0188" in pages[2].text


def test_an_admin_can_reveal_a_caller_and_it_is_audited(
    client: AppClient, three_calls: None, database: Database
) -> None:
    signed_in(client, ADMIN)
    page = client.get("/staff/calls/CAaaaa0001")
    assert CALLER_A not in page.text
    assert (
        "Reveal the caller&#39;s number" in page.text or "Reveal the caller's number" in page.text
    )
    call_id = re.search(r'action="/staff/calls/(\d+)/reveal"', page.text)[1]  # type: ignore[index]
    response = post_form(client, f"/staff/calls/{call_id}", f"/staff/calls/{call_id}/reveal")
    assert response.status_code == 200
    assert CALLER_A in response.text
    assert "written to the audit log" in response.text
    with database.session(read_only=True) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).one()
    assert entry.actor == ADMIN
    assert entry.detail == "caller of call CAaaaa0001 (•••-•••-1234)"
    assert CALLER_A not in (entry.detail or "")
    # Revealing is one answer, not a mode: the call page masks the number again.
    assert CALLER_A not in client.get(f"/staff/calls/{call_id}").text
    audit_page = client.get("/staff/audit")
    assert audit_page.status_code == 200
    assert "reveal" in audit_page.text and CALLER_A not in audit_page.text


def test_a_csv_longer_than_one_chunk_streams_every_row(
    client: AppClient, recorder: Recorder
) -> None:
    from service.staff.export import ROWS_PER_CHUNK

    count = ROWS_PER_CHUNK * 2 + 50
    for n in range(count):
        recorder.call_started(
            f"CAbulk{n:04d}", CALLER_A, "+18045550100", at=NOW - timedelta(seconds=n)
        )
    signed_in(client, VIEWER)
    exported = rows(client.get("/staff/calls.csv"))
    assert len(exported) == count + 1
    assert [row[0] for row in exported[1:]] == [f"CAbulk{n:04d}" for n in range(count)]
