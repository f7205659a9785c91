"""The dashboard with two lines: `?line=SLUG` on every list, page and export shows that line's
records only, and is remembered for the browser session; `?line=` shows every line again;
each row says its line. Records made through signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.lines.revisions import create_revision, line_named, publish_text
from service.models import Call, StaffUser, utcnow
from service.staff.web import LINE_COOKIE
from tests.lines.conftest import trials_text
from tests.lines.test_two_lines import (  # noqa: F401
    SHIPPED_NUMBER,
    TRIALS_NUMBER,
    UNASSIGNED,
    app,
    call_to,
    edition_two,
)
from tests.sms.conftest import Texter
from tests.staff.conftest import ADMIN, password_hash, signed_in
from tests.support import AppClient, app_client

TRIALS = "clinical-trials"


@pytest.fixture
def staff(app: FastAPI, database: Database) -> Iterator[AppClient]:  # noqa: F811
    """Signed in as an administrator, after a caller and a texter reached each line: each
    call transferred to nobody (a follow-up) and each texter asked to be called back."""
    with database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
    with app_client(app) as client:
        for n, number in enumerate((SHIPPED_NUMBER, TRIALS_NUMBER)):
            caller = call_to(client, number)
            caller.call()
            caller.hang_up()
            texter = Texter(client, phone=f"+1804555031{n}", line=number)
            texter.reply("hi")
            texter.reply("CALL")
            texter.reply("0")
        assert app.state.spool.drain(15)
        with database.session() as session:
            sweep_follow_ups(session, utcnow())
        yield signed_in(client, ADMIN)


def titles(app: FastAPI) -> dict[str, str]:  # noqa: F811
    return {line.slug: line.title for line in app.state.book.lines}


def rows_of(page: str) -> list[str]:
    return page.split("<tr>")[1:]


def rows(page: str) -> list[str]:
    """The rows of a page's list (each starts at a cell labelled for phones)."""
    return [row for row in page.split("<tr>")[1:] if 'data-label="Line"' in row]


@pytest.mark.parametrize(
    "page", ["/staff/calls", "/staff/messages", "/staff/follow-ups", "/staff/outbound"]
)
def test_each_list_shows_the_chosen_lines_rows_and_each_row_its_line(
    staff: AppClient, app: FastAPI, page: str  # noqa: F811
) -> None:
    names = titles(app)
    every = rows(staff.get(page).text)
    assert len(every) >= 2 and {names[TRIALS], names["second-opinion"]} <= set(
        title for row in every for title in names.values() if title in row
    ), page
    trials = rows(staff.get(f"{page}?line={TRIALS}").text)
    assert trials and all(names[TRIALS] in row for row in trials), page
    assert len(trials) < len(every)


def test_the_choice_is_remembered_until_every_line_is_chosen_again(
    staff: AppClient, app: FastAPI  # noqa: F811
) -> None:
    names = titles(app)
    chosen = staff.get(f"/staff/calls?line={TRIALS}")
    assert f'<option value="{TRIALS}" selected>' in chosen.text
    assert staff.cookies.get(LINE_COOKIE) == TRIALS
    for page in ("/staff/calls", "/staff/messages", "/staff/follow-ups", "/staff/outbound"):
        listed = rows(staff.get(page).text)
        assert listed and all(names[TRIALS] in row for row in listed), page
    everything = staff.get("/staff/calls?line=")
    assert LINE_COOKIE not in staff.cookies
    assert any(names["second-opinion"] in row for row in rows(everything.text))


def test_an_unknown_line_is_a_clear_400(staff: AppClient) -> None:
    response = staff.get("/staff/calls?line=no-such-line")
    assert response.status_code == 400
    assert "There is no line by that name" in response.text


@pytest.mark.parametrize("export", ["/staff/calls.csv", "/staff/messages.csv"])
def test_exports_follow_the_line(staff: AppClient, export: str) -> None:
    every = list(csv.DictReader(io.StringIO(staff.get(export + "?line=").text)))
    trials = list(csv.DictReader(io.StringIO(staff.get(f"{export}?line={TRIALS}").text)))
    assert trials and len(trials) < len(every)
    numbers = {(row.get("line") or "").lstrip("'") for row in trials}  # guarded: '+1…
    assert numbers <= {TRIALS_NUMBER, ""}, numbers


def test_the_overview_counts_the_chosen_lines_calls(staff: AppClient) -> None:
    def calls(page: str) -> str:
        match = re.search(r'id="headline-calls".*?<td class="num">(\d+)</td>', page, re.S)
        assert match is not None
        return match.group(1)

    assert calls(staff.get("/staff/?line=").text) == "2"
    assert calls(staff.get(f"/staff/?line={TRIALS}").text) == "1"
    assert calls(staff.get("/staff/?line=second-opinion").text) == "1"


def test_a_call_to_a_number_nobody_assigned_counts_for_the_default_line(
    staff: AppClient, app: FastAPI, database: Database  # noqa: F811
) -> None:
    caller = call_to(staff, UNASSIGNED)
    caller.call()
    caller.hang_up()
    assert app.state.spool.drain(15)
    with database.session(read_only=True) as session:
        default = line_named(session, "second-opinion").id
        assert session.scalars(select(Call.line_id).where(Call.called == UNASSIGNED)).one() == (
            default
        )

    def calls(page: str) -> str:
        match = re.search(r'id="headline-calls".*?<td class="num">(\d+)</td>', page, re.S)
        assert match is not None
        return match.group(1)

    assert calls(staff.get("/staff/?line=").text) == "3"
    assert calls(staff.get("/staff/?line=second-opinion").text) == "2"  # its own, and this one
    assert calls(staff.get(f"/staff/?line={TRIALS}").text) == "1"


def test_the_lines_page_shows_each_lines_numbers_published_revision_drafts_and_calls(
    staff: AppClient, app: FastAPI, database: Database  # noqa: F811
) -> None:
    with database.session() as session:
        publish_text(session, TRIALS, edition_two(), author="grace", message="New greeting")
        create_revision(session, TRIALS, trials_text("A draft."), author="grace", message="WIP")
    page = staff.get("/staff/lines").text
    names = titles(app)
    trials_row = next(row for row in rows_of(page) if names[TRIALS] in row)
    assert TRIALS_NUMBER in trials_row
    assert "revision 2" in trials_row and "by grace" in trials_row
    assert "“New greeting”" in trials_row
    assert re.search(r'data-label="Drafts" class="num">1<', trials_row)
    assert re.search(r'data-label="Calls it took" class="num">0<', trials_row)  # heard rev 1
    shipped_row = next(row for row in rows_of(page) if names["second-opinion"] in row)
    assert SHIPPED_NUMBER in shipped_row and "default" in shipped_row
    assert re.search(r'data-label="Calls it took" class="num">1<', shipped_row)

    history = staff.get(f"/staff/lines/{TRIALS}").text
    assert [int(n) for n in re.findall(r">revision (\d+)</a>", history)] == [3, 2, 1]
    assert "never" in history and "WIP" in history


def test_a_revision_reads_as_callers_hear_it_in_each_language_not_as_yaml(
    staff: AppClient,
) -> None:
    page = staff.get(f"/staff/lines/{TRIALS}/revisions/1").text
    assert "What a caller hears, in English" in page
    assert "What a caller hears, in Spanish" in page
    assert "Welcome to VCU Massey&#39;s Clinical Trials Line." in page
    assert "Press 1: hear why it matters (it goes to" in page
    assert "goto:" not in page and "nodes:" not in page
    for bad in ("9", "0", "x", "%D9%A3"):
        assert staff.get(f"/staff/lines/{TRIALS}/revisions/{bad}").status_code == 404, bad
    assert staff.get("/staff/lines/no-such-line").status_code == 404


def test_a_calls_page_links_to_the_revision_its_caller_heard(
    staff: AppClient, app: FastAPI, database: Database  # noqa: F811
) -> None:
    with database.session(read_only=True) as session:
        call_id = session.scalars(
            select(Call.id).where(Call.line_id == line_named(session, TRIALS).id)
        ).one()
    page = staff.get(f"/staff/calls/{call_id}").text
    assert f'href="/staff/lines/{TRIALS}/revisions/1"' in page
    assert f"{titles(app)[TRIALS]}, revision 1" in page
