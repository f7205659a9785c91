"""Odd ids, dates and page links get an HTML 400 or 404 page, never a 500 or a cut stream
(SPEC section 8): ids are ASCII digits that fit the id columns (32 bits on PostgreSQL), dates
lie in 2000-2099."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry, Call
from service.purge import parse_age
from tests.recorder import Recorder
from tests.staff.conftest import ADMIN, NOW, csrf_of, post_form, record_call, signed_in
from tests.support import AppClient


@pytest.fixture
def admin(client: AppClient, recorder: Recorder) -> AppClient:
    for n in range(1, 4):
        record_call(recorder, f"CAodd000{n}", f"+1804555100{n}", NOW - timedelta(hours=n))
    return signed_in(client, ADMIN)


def call_ids(database: Database) -> dict[str, int]:
    with database.session(read_only=True) as session:
        return {call.call_sid: call.id for call in session.scalars(select(Call))}


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/staff/calls/%C2%B9", 404, "Call not found"),  # ¹, a digit to str.isdigit
        ("/staff/messages/%C2%B2", 404, "Conversation not found"),  # ²
        ("/staff/calls/99999999999999999999999", 404, "Call not found"),  # over 2**63-1
        (f"/staff/calls/{2**63}", 404, "Call not found"),
        (f"/staff/calls/{2**63 - 1}", 404, "Call not found"),  # PostgreSQL: over its INTEGER
        (f"/staff/calls/{2**31}", 404, "Call not found"),
        (f"/staff/messages/{2**31}", 404, "Conversation not found"),
        (f"/staff/audit?before={2**31}", 400, "Page link not valid"),
        (f"/staff/calls?after=2026-11-24T15:00:00%2B00:00~{2**31}", 400, "Page link not valid"),
        ("/staff/messages/99999999999999999999999", 404, "Conversation not found"),
        ("/staff/calls/0", 404, "Call not found"),
        ("/staff/audit?before=%C2%B9", 400, "Page link not valid"),
        ("/staff/audit?before=99999999999999999999999", 400, "Page link not valid"),
        ("/staff/calls?to=9999-12-31", 400, "Check the filters"),
        ("/staff/calls?from=0001-01-01", 400, "Check the filters"),
        ("/staff/calls?from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01", 400, "Check the filters"),
        ("/staff/calls?to=20261124", 400, "Check the filters"),  # ISO, but not how pages write it
        ("/staff/messages?to=9999-12-31", 400, "Check the filters"),
        ("/staff/calls?after=9999-12-31T23:59:59-23:59~1", 400, "Page link not valid"),
        ("/staff/calls?after=2026-11-24T15:00:00%2B00:00~%C2%B9", 400, "Page link not valid"),
        ("/staff/calls?after=2026-11-24T15:00:00%2B00:00~99999999999999999999", 400, "not valid"),
        ("/staff/calls?after=2026-13-24T15:00:00%2B00:00~1", 400, "Page link not valid"),
        ("/staff/messages?after=9999-12-31T23:59:59-23:59~1", 400, "Page link not valid"),
        ("/staff/calls.csv?to=9999-12-31", 400, "Check the filters"),
        ("/staff/messages.csv?from=9999-12-31", 400, "Check the filters"),
    ],
)
def test_odd_input_gets_an_html_error_page(
    admin: AppClient, path: str, status: int, says: str
) -> None:
    response = admin.get(path)
    assert response.status_code == status, (path, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert says in response.text


def test_a_digit_of_another_script_is_not_an_id(admin: AppClient, database: Database) -> None:
    ids = call_ids(database)
    assert ids["CAodd0003"] == 3
    assert "CAodd0003" in admin.get("/staff/calls/3").text
    response = admin.get("/staff/calls/%D9%A3")  # ٣, ARABIC-INDIC DIGIT THREE
    assert response.status_code == 404
    assert "CAodd0003" not in response.text
    assert admin.get("/staff/calls/%EF%BC%93").status_code == 404  # FULLWIDTH DIGIT THREE


def test_a_refused_csv_is_not_audited_and_a_good_one_is_whole(
    admin: AppClient, database: Database
) -> None:
    assert admin.get("/staff/calls.csv?to=9999-12-31").status_code == 400
    with database.session(read_only=True) as session:
        assert not session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
    response = admin.get("/staff/calls.csv?from=2000-01-01&to=2099-12-31")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [row[0] for row in rows] == ["call_sid", "CAodd0001", "CAodd0002", "CAodd0003"]


def test_page_links_the_pages_write_are_read_back(admin: AppClient, recorder: Recorder) -> None:
    for n in range(60):  # more than a page
        record_call(recorder, f"CApage{n:04}", "+18045550199", NOW - timedelta(days=1, minutes=n))
    first = admin.get("/staff/calls")
    assert first.status_code == 200
    next_link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = admin.get(next_link.replace("&amp;", "&"))
    assert second.status_code == 200, second.text[:300]
    listed = re.findall(r'<a href="/staff/calls/[0-9]+">', first.text + second.text)
    assert len(set(listed)) == 63  # 3 + 60 calls over the two pages, none twice


@pytest.mark.parametrize("age", ["99999999d", "9" * 30 + "d", "876001h", "\u0669\u0660d", "-1d"])
def test_purge_refuses_an_age_it_cannot_use(admin: AppClient, database: Database, age: str) -> None:
    response = post_form(admin, "/staff/admin", "/staff/admin/purge", older_than=age, confirm="yes")
    assert response.status_code == 400
    assert "Check the age" in response.text
    assert ("at most 36500d" in response.text) == (age in ("99999999d", "876001h"))
    assert len(call_ids(database)) == 3


def test_the_longest_age_is_a_century() -> None:
    assert parse_age("36500d") == timedelta(days=36500)
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_age("36501d")


def test_nul_and_control_characters_never_reach_the_database(
    admin: AppClient, database: Database
) -> None:
    """PostgreSQL refuses text with NUL in it: such a CallSid or username is simply not found."""
    for path in ("/staff/calls/CAodd0001%00", "/staff/calls/CA%0Aodd"):
        assert admin.get(path).status_code == 404, path
    response = post_form(admin, "/staff/admin", "/staff/admin/staff/v%00ic/disable", confirm="yes")
    assert response.status_code == 404
    assert "No such account" in response.text
    token = csrf_of(admin.get("/staff/login"))
    response = admin.post(
        "/staff/login",
        data={"username": "ad\x00a", "password": "not it at all", "csrf_token": token},
    )
    assert response.status_code == 401
    with database.session(read_only=True) as session:
        failed = session.scalars(select(AuditEntry).where(AuditEntry.action == "sign-in-failed"))
        assert [(entry.actor, entry.detail) for entry in failed] == [("?", "unknown account")]
