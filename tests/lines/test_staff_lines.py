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

from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.models import StaffUser, utcnow
from service.staff.web import LINE_COOKIE
from tests.lines.test_two_lines import SHIPPED_NUMBER, TRIALS_NUMBER, app, call_to  # noqa: F401
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
