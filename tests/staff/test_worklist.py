"""The worklist a team can run, on SQLite and PostgreSQL: urgent first whatever its age, then
filters (reason, language, whose, new since my last visit), ten a page, each item's wait in
words against the clinic's target; a call that reached nobody is an attempt that keeps the item
open until its next try, and the clinic's last attempt closes it as "could not reach"; "next
item" after a close; what the patient already got; a number written in a text, masked,
revealed (audited) and kept revealed through a note."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.models import AuditEntry, FollowUp, StaffUser
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import (
    LINE,
    NOW,
    VIEWER,
    Clock,
    csrf_of,
    password_hash,
    post_form,
    record_call,
    signed_in,
)
from tests.support import AppClient

NAVIGATOR = "nina"
OTHER = "otto"
COORDINATOR = ("coordinator", "+18048287999")


@pytest.fixture
def navigators(staff_app: FastAPI, database: Database) -> None:
    with database.session() as session:
        for name in (NAVIGATOR, OTHER):
            session.add(StaffUser(username=name, password_hash=password_hash(), role="navigator"))


def missed(recorder: Recorder, n: int, hours_ago: float, language: str = "en") -> str:
    caller = f"+1804555{n:04d}"
    record_call(
        recorder, f"CA{n:032d}", caller, NOW - timedelta(hours=hours_ago), language=language,
        keys=[("main", "2", "reach"), ("reach", "1", "")], transfer=(*COORDINATOR, "no-answer"),
    )  # fmt: skip
    return caller


def sweep(database: Database, clock: Clock) -> None:
    with database.session() as session:
        sweep_follow_ups(session, clock())


def rows_of(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page, re.S)


def item_of(database: Database, phone: str) -> int:
    with database.session() as session:
        return session.scalars(select(FollowUp.id).where(FollowUp.phone == phone)).one()


def test_urgent_first_then_filters_ten_a_page_and_each_wait_in_words(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    for n in range(12):  # a day and a half ago to an hour ago
        missed(recorder, n, 36 - 3 * n, "es" if n % 3 == 0 else "en")
    recorder.message_received("SM" + "9" * 32, "+18045559999", LINE, "I want to die",
                              intent="crisis", at=NOW - timedelta(minutes=2))  # fmt: skip
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    page = client.get("/staff/follow-ups").text
    rows = rows_of(page)
    assert len(rows) == 10 and "13 open, page 1 of 2" in page
    assert "•••-•••-9999" in rows[0] and "Urgent" in rows[0]  # urgent, first
    assert "•••-•••-0011" in rows[1] and "3 hours</span>" in rows[1]  # then the newest misses
    second = client.get("/staff/follow-ups?page=2").text
    assert len(rows_of(second)) == 3 and "Previous 10" in second
    assert "•••-•••-0000" in rows_of(second)[-1]
    waiting = client.get("/staff/follow-ups?sort=waiting").text
    rows = rows_of(waiting)
    assert "•••-•••-9999" in rows[0] and "•••-•••-0000" in rows[1]  # urgent still first
    assert "36 hours, over target" in rows[1] and "wait-over" in rows[1]
    assert "21 hours, near target" in waiting  # 3/4 of the 24 h target gone
    assert "12 hours</span>" in waiting and "wait-ok" in waiting
    spanish = client.get("/staff/follow-ups?language=es").text
    assert len(rows_of(spanish)) == 4
    assert all("Spanish" in row for row in rows_of(spanish))
    texts = client.get("/staff/follow-ups?reason=crisis").text
    assert len(rows_of(texts)) == 1
    assert client.get("/staff/follow-ups?language=xx").status_code == 400
    assert client.get("/staff/follow-ups?page=abc").status_code == 400


def test_new_since_my_last_visit_and_mine(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    missed(recorder, 1, 5)
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    client.get("/staff/follow-ups")  # a first visit
    clock.advance(hours=2)  # a new sitting (signed in again: a session ends when idle)
    missed(recorder, 2, -1)  # a call an hour after the first visit
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    page = client.get("/staff/follow-ups").text
    assert 'id="new" name="new" value="1"' in page and "Only new since my last visit" in page
    new = rows_of(client.get("/staff/follow-ups?new=1").text)
    assert len(new) == 1 and "•••-•••-0002" in new[0]
    item = f"/staff/follow-ups/{item_of(database, '+18045550001')}"
    assert post_form(client, item, f"{item}/claim").status_code == 303
    mine = rows_of(client.get("/staff/follow-ups?who=mine").text)
    unclaimed = rows_of(client.get("/staff/follow-ups?who=unclaimed").text)
    assert len(mine) == 1 and "•••-•••-0001" in mine[0]
    assert len(unclaimed) == 1 and "•••-•••-0002" in unclaimed[0]


def test_an_attempt_keeps_the_item_open_until_its_next_try_and_the_last_closes_it(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    first = missed(recorder, 1, 10)
    missed(recorder, 2, 5)
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    item = f"/staff/follow-ups/{item_of(database, first)}"
    refused = post_form(client, item, f"{item}/attempt", result="", next_try="2h")
    assert refused.status_code == 400 and "Choose how the call went" in refused.text
    answer = post_form(client, item, f"{item}/attempt", result="voicemail", next_try="tomorrow")
    assert answer.status_code == 303
    page = client.get(answer.headers["location"]).text
    assert "The call attempt is logged." in page and "Next item" in page
    assert "1 of 3 calls by staff" in page and "try again" in page
    assert "Call attempt 1 of 3: Left a voicemail." in page
    # It waits for its next try: the item due now comes first, in either order.
    assert rows_of(client.get("/staff/follow-ups?sort=waiting").text)[0].count("•••-•••-0002")
    rows = rows_of(client.get("/staff/follow-ups").text)
    assert "•••-•••-0002" in rows[0] and "•••-•••-0001" in rows[1]
    assert "try again" in rows[1] and "1 call by staff" in rows[1]
    # Its next try comes: due again, first again of those waiting longest.
    clock.advance(days=1, hours=1)
    signed_in(client, NAVIGATOR)  # (a session ends when idle)
    rows = rows_of(client.get("/staff/follow-ups?sort=waiting").text)
    assert "•••-•••-0001" in rows[0]
    post_form(client, item, f"{item}/attempt", result="no-answer", next_try="2h")
    last = client.get(item).text
    assert "the last, it closes the follow-up" in last
    answer = post_form(client, item, f"{item}/attempt", result="busy")
    page = client.get(answer.headers["location"]).text
    assert "Could not reach (every call attempt)" in page
    with database.session() as session:
        closed = session.scalars(select(FollowUp).where(FollowUp.phone == first)).one()
    assert (closed.outcome, closed.staff_attempts, closed.closed_by) == (
        "could-not-reach", 3, NAVIGATOR,
    )  # fmt: skip


def test_the_patient_trying_again_makes_a_waiting_item_due(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    caller = missed(recorder, 1, 10)
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    item = f"/staff/follow-ups/{item_of(database, caller)}"
    post_form(client, item, f"{item}/attempt", result="no-answer", next_try="2d")
    record_call(recorder, "CA" + "7" * 32, caller, NOW - timedelta(minutes=1),
                transfer=(*COORDINATOR, "busy"))  # fmt: skip
    sweep(database, clock)
    with database.session() as session:
        assert session.scalars(select(FollowUp.next_try_at)).one() is None


def test_next_item_after_a_close_skips_what_others_claimed(
    client: AppClient,
    navigators: None,
    recorder: Recorder,
    database: Database,
    clock: Clock,
    staff_app: FastAPI,
) -> None:
    for n, hours in ((1, 9), (2, 8), (3, 7)):
        missed(recorder, n, hours)
    sweep(database, clock)
    from tests.support import app_client

    with app_client(staff_app) as other:
        signed_in(other, OTHER)
        claimed = f"/staff/follow-ups/{item_of(database, '+18045550002')}"
        assert post_form(other, claimed, f"{claimed}/claim").status_code == 303
    signed_in(client, NAVIGATOR)
    item = f"/staff/follow-ups/{item_of(database, '+18045550001')}"
    answer = post_form(client, item, f"{item}/close", outcome="reached")
    page = client.get(answer.headers["location"]).text
    link = re.search(r'<a href="(/staff/follow-ups/\d+)">Next item</a>', page)
    assert link is not None
    assert link.group(1) == f"/staff/follow-ups/{item_of(database, '+18045550003')}"


def test_a_number_written_in_a_text_is_masked_revealed_with_an_audit_and_stays_revealed(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    texter = "+18045557001"
    with database.session() as session:
        save_conversation(session, texter, LINE, node="main", language="en", now=NOW)
    recorder.message_received("SM" + "1" * 32, texter, LINE,
                              "my cell is dead, pls call me back at 804 555 0199 after 3",
                              intent="asked_for_person", at=NOW - timedelta(minutes=5))  # fmt: skip
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    item = f"/staff/follow-ups/{item_of(database, texter)}"
    page = client.get(item).text
    assert "Number they asked to be called on" in page and "•••-•••-0199" in page
    assert "+18045550199" not in page
    revealed = client.post(
        f"{item}/reveal", data={"csrf_token": csrf_of(client.get(item)), "which": "given:0"}
    )
    assert revealed.status_code == 200
    assert '<a href="tel:+18045550199">+18045550199</a>' in revealed.text
    assert texter not in revealed.text  # only the number asked for
    with database.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).one()
    assert "written in a text" in (audit.detail or "") and "•••-•••-0199" in (audit.detail or "")
    # A note keeps it revealed (no second audit entry); the token is this item's and account's.
    kept = re.search(r'name="kept" value="([^"]+)"', revealed.text)
    assert kept is not None
    noted = client.post(
        f"{item}/notes",
        data={"csrf_token": csrf_of(revealed), "note": "Calling the cell.", "kept": kept.group(1)},
    )
    after = client.get(noted.headers["location"]).text
    assert "Your note was added." in after and "tel:+18045550199" in after
    token = parse_qs(urlsplit(noted.headers["location"]).query)["kept"][0]
    with database.session() as session:
        assert (
            len(session.scalars(select(AuditEntry).where(AuditEntry.action == "reveal")).all()) == 1
        )
    signed_in(client, VIEWER)
    assert "tel:" not in client.get(f"{item}?kept={token}").text


def test_the_item_says_what_the_patient_already_got(
    client: AppClient, navigators: None, recorder: Recorder, database: Database, clock: Clock
) -> None:
    caller = missed(recorder, 1, 3)
    sweep(database, clock)
    signed_in(client, NAVIGATOR)
    page = client.get(f"/staff/follow-ups/{item_of(database, caller)}").text
    assert "What they already got" in page
    assert (
        "Put through to Patient referral coordinator, VCU Massey, its number read to them first: "
        "nobody took it"
    ) in page
