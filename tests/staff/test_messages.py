"""Text conversations: the list with opt-out state, a conversation's messages, the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import LINE, NOW, VIEWER, signed_in
from tests.support import AppClient

TEXTER_A = "+18045557001"
TEXTER_B = "+18045557002"


@pytest.fixture
def conversations(recorder: Recorder) -> None:
    """Two texters, as the SMS webhook records them: A reads the menu; B texts STOP."""
    with recorder.database.session() as session:
        save_conversation(
            session, TEXTER_A, LINE, node="why", language="en", flow_hash="f1", now=NOW
        )
    recorder.message_received("SMa1", TEXTER_A, LINE, "Hi", at=NOW - timedelta(minutes=2))
    recorder.message_sent(
        None,
        TEXTER_A,
        LINE,
        "Second Opinion Line\n1 Why",
        status="sent",
        at=NOW - timedelta(minutes=2),
    )
    recorder.message_received("SMa2", TEXTER_A, LINE, "1 (my cell 804-555-7001)", at=NOW)
    recorder.message_sent(None, TEXTER_A, LINE, "=cmd|' /C calc'!A0", status="sent", at=NOW)
    with recorder.database.session() as session:
        save_conversation(
            session,
            TEXTER_B,
            LINE,
            node="main",
            language="es",
            flow_hash="f1",
            now=NOW - timedelta(days=2),
        )
    recorder.message_received("SMb1", TEXTER_B, LINE, "PARAR", at=NOW - timedelta(days=2))
    recorder.opt_out(TEXTER_B, True, "PARAR", at=NOW - timedelta(days=2))


def test_conversations_are_listed_masked_with_opt_out_state(
    client: AppClient, conversations: None
) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/messages")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "2026-11-24 15:00:00 •••-•••-7001 +18045550100 en 4 yes" in text
    assert "2026-11-22 15:00:00 •••-•••-7002 +18045550100 es 1 opted out (STOP)" in text
    assert TEXTER_A not in page.text and TEXTER_B not in page.text


def test_a_conversation_page_shows_its_messages(client: AppClient, conversations: None) -> None:
    signed_in(client, VIEWER)
    listing = client.get("/staff/messages").text
    first = re.search(r'<a href="/staff/messages/(\d+)">', listing)[1]  # type: ignore[index]
    page = client.get(f"/staff/messages/{first}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "Conversation with •••-•••-7001" in text
    assert "14:58:00 received Hi received" in text
    assert "14:58:00 sent Second Opinion Line 1 Why sent" in text
    assert "1 (my cell •••-•••-7001)" in text  # a number a texter wrote is masked too
    assert "804-555-7001" not in page.text
    assert "Where they are Hear why it matters" in text
    assert client.get("/staff/messages/999999").status_code == 404


def test_messages_csv_rows_are_exact(
    client: AppClient, conversations: None, database: Database
) -> None:
    signed_in(client, VIEWER)
    response = client.get("/staff/messages.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["message_sid", "created_at", "direction", "phone", "line", "language", "status",
         "segments", "body"],
        ["", "2026-11-24T15:00:00Z", "out", "•••-•••-7001", f"'{LINE}", "en", "sent", "1",
         "'=cmd|' /C calc'!A0"],
        ["SMa2", "2026-11-24T15:00:00Z", "in", "•••-•••-7001", f"'{LINE}", "en", "received", "1",
         "1 (my cell •••-•••-7001)"],
        ["", "2026-11-24T14:58:00Z", "out", "•••-•••-7001", f"'{LINE}", "en", "sent", "1",
         "Second Opinion Line\n1 Why"],
        ["SMa1", "2026-11-24T14:58:00Z", "in", "•••-•••-7001", f"'{LINE}", "en", "received", "1",
         "Hi"],
        ["SMb1", "2026-11-22T15:00:00Z", "in", "•••-•••-7002", f"'{LINE}", "es", "received", "1",
         "PARAR"],
    ]  # fmt: skip
    received = client.get("/staff/messages.csv?direction=in&from=2026-11-23")
    assert [row[0] for row in csv.reader(io.StringIO(received.text))] == [
        "message_sid",
        "SMa2",
        "SMa1",
    ]
    with database.session(read_only=True) as session:
        details = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "export").order_by(AuditEntry.id)
        ).all()
    assert details == [
        "messages.csv, filters: none",
        "messages.csv, filters: from=2026-11-23, direction=in",
    ]


def test_conversation_list_filters_by_last_activity(client: AppClient, conversations: None) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/messages?from=2026-11-23")
    assert "•••-•••-7001" in page.text and "•••-•••-7002" not in page.text
    page = client.get("/staff/messages?to=2026-11-22")
    assert "•••-•••-7001" not in page.text and "•••-•••-7002" in page.text
    assert client.get("/staff/messages?to=someday").status_code == 400


def test_a_messages_csv_longer_than_one_chunk_streams_every_row(
    client: AppClient, recorder: Recorder
) -> None:
    from service.staff.export import ROWS_PER_CHUNK

    count = ROWS_PER_CHUNK + 20
    for n in range(count):
        recorder.message_received(
            f"SMbulk{n:04d}", TEXTER_A, LINE, "1", at=NOW - timedelta(seconds=n)
        )
    signed_in(client, VIEWER)
    response = client.get("/staff/messages.csv")
    exported = list(csv.reader(io.StringIO(response.text)))
    assert [row[0] for row in exported[1:]] == [f"SMbulk{n:04d}" for n in range(count)]


FORMULAS = [
    " =1+1",
    "\n=1+1",
    "\r\n@SUM(A1)",
    '\t =HYPERLINK("http://x")',
    "\uff1d1+1",  # FULLWIDTH EQUALS SIGN
    "\uff0b1",
    "\uff0d1",
    "\uff201",
    "\u3000=1",  # an ideographic space first
    "\tplain",
    "\rplain",
    "+1+1",
    "-2",
]
PLAIN = ["1+1=2", "Hi =)", "a@b.example", "menu", "\nmenu"]


@pytest.mark.parametrize("body", FORMULAS + PLAIN)
def test_a_body_a_spreadsheet_could_take_for_a_formula_is_escaped(
    client: AppClient, recorder: Recorder, body: str
) -> None:
    recorder.message_received("SMf1", TEXTER_A, LINE, body, at=NOW)
    signed_in(client, VIEWER)
    rows = list(csv.reader(io.StringIO(client.get("/staff/messages.csv").text)))
    assert rows[1][-1] == ("'" + body if body in FORMULAS else body)
