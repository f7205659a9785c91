"""An account limited to one line (a navigator of the clinical-trials line) sees nothing of the
other line: not on a list, an export, the overview, a search, a number's page, a record's page,
a reveal or a follow-up action; choosing the other line is refused as if it did not exist. An
administrator limits an account at /staff/admin (audited) or with `phoneline staff lines`.
Records made through signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli
from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.lines.revisions import line_named
from service.models import AuditEntry, Call, Conversation, FollowUp, Message, StaffUser, utcnow
from service.staff.auth import limit_to_lines
from tests.lines.test_two_lines import (  # noqa: F401
    SHIPPED_NUMBER,
    TRIALS_NUMBER,
    app,
)
from tests.sms.conftest import Texter
from tests.staff.conftest import ADMIN, csrf_of, password_hash, post_form, signed_in
from tests.support import AppClient, app_client
from tests.voice.caller import Caller

TRIALS = "clinical-trials"
SHIPPED = "second-opinion"
NAVIGATOR = "nina"
CALLERS = {SHIPPED_NUMBER: "+18045550401", TRIALS_NUMBER: "+18045550402"}
TEXTERS = {SHIPPED_NUMBER: "+18045550501", TRIALS_NUMBER: "+18045550502"}


@dataclass(frozen=True)
class Records:
    """One line's records, as the pages name them."""

    call_id: int
    call_sid: str
    conversation_id: int
    message_sid: str
    follow_up_id: int


@pytest.fixture
def records(app: FastAPI, database: Database) -> dict[str, Records]:  # noqa: F811
    """A caller who reached nobody and a texter who asked for a call back, on each line."""
    with app_client(app) as client:
        for n, number in enumerate((SHIPPED_NUMBER, TRIALS_NUMBER)):
            caller = Caller(client, call_sid=f"CA{n + 900:032d}", called=number,
                            caller=CALLERS[number])  # fmt: skip
            caller.call()
            caller.hang_up()
            texter = Texter(client, phone=TEXTERS[number], line=number)
            texter.reply("hi")
            texter.reply("CALL")
            texter.reply("0")
        assert app.state.spool.drain(15)
    found = {}
    with database.session() as session:
        sweep_follow_ups(session, utcnow())
        for slug in (SHIPPED, TRIALS):
            line_id = line_named(session, slug).id
            call = session.scalars(select(Call).where(Call.line_id == line_id)).one()
            conversation = session.scalars(
                select(Conversation).where(Conversation.line_id == line_id)
            ).one()
            message_sid = session.scalars(
                select(Message.message_sid).where(
                    Message.line_id == line_id, Message.message_sid.is_not(None)
                )
            ).first()
            follow_up = session.scalars(
                select(FollowUp.id).where(FollowUp.line_id == line_id)
            ).first()
            assert message_sid is not None and follow_up is not None, slug
            found[slug] = Records(call.id, call.call_sid, conversation.id, message_sid, follow_up)
    return found


@pytest.fixture
def navigator(
    app: FastAPI, database: Database, records: dict[str, Records]  # noqa: F811
) -> Iterator[AppClient]:
    """Signed in as a navigator limited to the clinical-trials line."""
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
        session.flush()
        limit_to_lines(session, NAVIGATOR, [TRIALS])
    with app_client(app) as client:
        yield signed_in(client, NAVIGATOR)


def masked(number: str) -> str:
    return number[-4:]


def test_lists_exports_and_the_overview_show_only_the_accounts_line(
    navigator: AppClient, app: FastAPI  # noqa: F811
) -> None:
    titles = {line.slug: line.title for line in app.state.book.lines}
    for page in ("/staff/calls", "/staff/messages", "/staff/follow-ups", "/staff/outbound"):
        text = navigator.get(page).text
        assert titles[TRIALS] in text, page
        assert titles[SHIPPED] not in text, page  # neither a row nor a choice
        for number in (CALLERS[SHIPPED_NUMBER], TEXTERS[SHIPPED_NUMBER]):
            assert masked(number) not in text, (page, number)
    for export in ("/staff/calls.csv", "/staff/messages.csv"):
        text = navigator.get(export).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows, export
        assert masked(CALLERS[SHIPPED_NUMBER]) not in text and SHIPPED_NUMBER not in text
        assert masked(TEXTERS[SHIPPED_NUMBER]) not in text, export
    overview = navigator.get("/staff/").text
    calls = re.search(r'id="headline-calls".*?<td class="num">(\d+)</td>', overview, re.S)
    assert calls is not None and calls.group(1) == "1"
    lines = navigator.get("/staff/lines").text
    assert titles[TRIALS] in lines and titles[SHIPPED] not in lines


def test_the_other_line_cannot_be_chosen_and_its_records_are_not_found(
    navigator: AppClient, records: dict[str, Records]
) -> None:
    refused = navigator.get(f"/staff/calls?line={SHIPPED}")
    assert refused.status_code == 400 and "There is no line by that name" in refused.text
    other, own = records[SHIPPED], records[TRIALS]
    for page in (
        f"/staff/calls/{other.call_id}",
        f"/staff/calls/{other.call_sid}",
        f"/staff/messages/{other.conversation_id}",
        f"/staff/follow-ups/{other.follow_up_id}",
        f"/staff/number?call={other.call_id}",
        f"/staff/number?conversation={other.conversation_id}",
        f"/staff/lines/{SHIPPED}",
        f"/staff/lines/{SHIPPED}/revisions/1",
    ):
        assert navigator.get(page).status_code == 404, page
    for page in (
        f"/staff/calls/{own.call_id}",
        f"/staff/messages/{own.conversation_id}",
        f"/staff/follow-ups/{own.follow_up_id}",
        f"/staff/number?call={own.call_id}",
        f"/staff/lines/{TRIALS}",
    ):
        assert navigator.get(page).status_code == 200, page


def test_search_finds_only_the_accounts_lines_numbers_and_sids(
    navigator: AppClient, records: dict[str, Records]
) -> None:
    other, own = records[SHIPPED], records[TRIALS]
    for number in (CALLERS[SHIPPED_NUMBER], TEXTERS[SHIPPED_NUMBER]):
        page = navigator.get(f"/staff/search?q={number[-4:]}").text
        assert "/staff/number?" not in page, number
    for sid in (other.call_sid, other.message_sid):
        assert navigator.get(f"/staff/search?q={sid}").status_code == 200, sid  # no redirect
    for sid in (own.call_sid, own.message_sid):
        assert navigator.get(f"/staff/search?q={sid}").status_code == 303, sid
    found = navigator.get(f"/staff/search?q={CALLERS[TRIALS_NUMBER][-4:]}").text
    assert "/staff/number?call=" in found


def test_no_follow_up_action_or_reveal_reaches_the_other_line(
    navigator: AppClient, records: dict[str, Records], database: Database
) -> None:
    other, own = records[SHIPPED], records[TRIALS]
    own_page = f"/staff/follow-ups/{own.follow_up_id}"
    for action in ("claim", "notes", "close", "reveal"):
        response = post_form(
            navigator, own_page, f"/staff/follow-ups/{other.follow_up_id}/{action}",
            note="called", outcome="reached",
        )  # fmt: skip
        assert response.status_code == 404, action
        assert TEXTERS[SHIPPED_NUMBER] not in response.text
        assert CALLERS[SHIPPED_NUMBER] not in response.text
    with database.session(read_only=True) as session:
        item = session.get(FollowUp, other.follow_up_id)
        assert item is not None and item.closed_at is None and item.claimed_by is None
        assert not session.scalars(
            select(AuditEntry).where(AuditEntry.action == "reveal")
        ).all()
    revealed = post_form(navigator, own_page, own_page + "/reveal")
    assert revealed.status_code == 200
    own_numbers = (CALLERS[TRIALS_NUMBER], TEXTERS[TRIALS_NUMBER])
    assert any(number in revealed.text for number in own_numbers)


def test_an_administrator_limits_an_account_in_the_browser_and_it_is_audited(
    app: FastAPI, database: Database, records: dict[str, Records]  # noqa: F811
) -> None:
    with database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
    with app_client(app) as admin, app_client(app) as nina:
        signed_in(admin, ADMIN)
        signed_in(nina, NAVIGATOR)
        assert nina.get(f"/staff/calls/{records[SHIPPED].call_id}").status_code == 200
        form = admin.get(f"/staff/admin/staff/{NAVIGATOR}/lines")
        assert form.status_code == 200 and f'name="line:{TRIALS}"' in form.text
        saved = admin.post(
            f"/staff/admin/staff/{NAVIGATOR}/lines",
            data={"csrf_token": csrf_of(form), f"line:{TRIALS}": "on"},
        )
        assert saved.status_code == 200 and f"{NAVIGATOR} now sees {TRIALS}." in saved.text
        # at once, without signing in again
        assert nina.get(f"/staff/calls/{records[SHIPPED].call_id}").status_code == 404
        assert nina.get(f"/staff/calls/{records[TRIALS].call_id}").status_code == 200
        page = admin.get("/staff/admin").text
        row = next(r for r in page.split("<tr>") if f">{NAVIGATOR}<" in r)
        assert re.search(r'data-label="Lines">[^<]*Trials', row), row
        # none ticked: every line again
        cleared = post_form(
            admin, f"/staff/admin/staff/{NAVIGATOR}/lines", f"/staff/admin/staff/{NAVIGATOR}/lines"
        )
        assert f"{NAVIGATOR} now sees every line." in cleared.text
        assert nina.get(f"/staff/calls/{records[SHIPPED].call_id}").status_code == 200
        refused = post_form(
            admin, f"/staff/admin/staff/{NAVIGATOR}/lines", f"/staff/admin/staff/{ADMIN}/lines",
            **{f"line:{TRIALS}": "on"},
        )  # fmt: skip
        assert refused.status_code == 409 and "administrator sees every line" in refused.text
    with database.session(read_only=True) as session:
        audited = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "limit-lines")
        ).all()
    assert audited == [f"{NAVIGATOR}: {TRIALS}", f"{NAVIGATOR}: every line"]


def test_the_command_line_limits_an_account_and_refuses_an_unknown_line(
    app: FastAPI, database: Database  # noqa: F811
) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["staff", "add", NAVIGATOR, "--role", "navigator", "--password-stdin",
              "--line", TRIALS], input="a long enough password\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert f"Added navigator {NAVIGATOR}, sees {TRIALS}." in added.output
    listed = runner.invoke(cli, ["staff", "list"])
    assert listed.output.splitlines()[0].endswith(f"\t{TRIALS}")
    unknown = runner.invoke(cli, ["staff", "lines", NAVIGATOR, "--line", "no-such-line"])
    assert unknown.exit_code == 1 and "there is no line named 'no-such-line'" in unknown.output
    cleared = runner.invoke(cli, ["staff", "lines", NAVIGATOR])
    assert cleared.exit_code == 0, cleared.output
    assert runner.invoke(cli, ["staff", "list"]).output.splitlines()[0].endswith("\tevery line")
