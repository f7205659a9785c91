"""Editing a line in the browser's forms, on SQLite and PostgreSQL: an editor saves a draft
(checked as `flows check` checks, each problem with its line), sees what changed by menu and
language, publishes it with a message, and a signed call hears it; rolls back (asked first) and
the old words return. A second save on a stale draft is refused and keeps what was typed; a
number change is an administrator's, typed again; viewers and navigators cannot edit."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry, StaffUser
from tests.staff.conftest import ADMIN, VIEWER, csrf_of, password_hash, post_form, signed_in
from tests.support import AppClient
from tests.voice.caller import Caller

EDITOR = "edna"
OLD_ES = "Esta es la Línea de Segunda Opinión de VCU Massey."
NEW_ES = "Bienvenido a la Línea de Segunda Opinión de VCU Massey."
EDIT = "/staff/lines/second-opinion/edit"


@pytest.fixture
def editor(staff_app: FastAPI, database: Database) -> str:
    with database.session() as session:
        session.add(StaffUser(username=EDITOR, password_hash=password_hash(), role="editor"))
        session.add(StaffUser(username="nina", password_hash=password_hash(), role="navigator"))
    return EDITOR


def flow_on(page: str) -> tuple[str, str]:
    """The YAML in the editor's box, and the revision it came from."""
    text = re.search(r'<textarea id="flow"[^>]*>(.*?)</textarea>', page, re.S)
    base = re.search(r'name="base" value="(\d+)"', page)
    assert text and base, page[:500]
    import html

    return html.unescape(text.group(1)), base.group(1)


def save(client: AppClient, text: str, base: str) -> tuple[int, str]:
    page = client.get(EDIT)
    answer = client.post(EDIT, data={"csrf_token": csrf_of(page), "flow": text, "base": base})
    if answer.status_code == 303:
        return 303, client.get(answer.headers["location"]).text
    return answer.status_code, answer.text


def spanish_greeting(client: AppClient, sid: str) -> str:
    """What a new call hears after pressing 9 (signed webhooks)."""
    caller = Caller(client, call_sid=sid)
    caller.call()
    return caller.press("9").text


def test_an_editor_changes_the_spanish_greeting_publishes_it_and_rolls_it_back(
    client: AppClient, editor: str, staff_app: FastAPI, database: Database
) -> None:
    signed_in(client, editor)
    text, base = flow_on(client.get(EDIT).text)
    assert OLD_ES in text
    status, page = save(client, text.replace(OLD_ES, NEW_ES), base)
    assert (
        status == 303 and "The draft is saved and checked." in page and "The check passed." in page
    )
    assert "Main menu: what a caller hears" in page and "Spanish" in page
    assert OLD_ES in page and NEW_ES in page  # before and after, side by side
    number = re.search(r"/revisions/(\d+)/publish", page)
    assert number is not None
    publish = f"/staff/lines/second-opinion/revisions/{number.group(1)}/publish"
    refused = post_form(client, EDIT, publish, message="  ")
    assert refused.status_code == 400 and "Say why" in refused.text
    assert NEW_ES not in spanish_greeting(client, "CA" + "1" * 32)  # nothing live yet
    done = post_form(client, EDIT, publish, message="A warmer Spanish welcome")
    assert done.status_code == 303
    assert staff_app.state.book.refresh()
    assert NEW_ES in spanish_greeting(client, "CA" + "2" * 32)
    line_page = client.get("/staff/lines/second-opinion").text
    assert "A warmer Spanish welcome" in line_page
    confirm = client.get("/staff/lines/second-opinion/revisions/1/rollback")
    assert confirm.status_code == 200 and "Roll back" in confirm.text and NEW_ES in confirm.text
    rolled = post_form(client, "/staff/lines/second-opinion/revisions/1/rollback",
                       "/staff/lines/second-opinion/revisions/1/rollback")  # fmt: skip
    assert rolled.status_code == 303
    assert staff_app.state.book.refresh()
    greeting = spanish_greeting(client, "CA" + "3" * 32)
    assert OLD_ES in greeting and NEW_ES not in greeting
    with database.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("revision-%"))
        ).all()
    assert actions == ["revision-saved", "revision-published", "revision-rolled-back"]


def test_a_problem_is_shown_with_its_line_and_the_draft_cannot_be_published(
    client: AppClient, editor: str
) -> None:
    signed_in(client, editor)
    text, base = flow_on(client.get(EDIT).text)
    long = "Esta es la Línea. " + "Muy " * 80 + "larga."
    status, page = save(client, text.replace(OLD_ES, long), base)
    assert status == 303 and "problem(s)" in page
    assert re.search(
        r"second-opinion\.yaml:\d+: \d+ words before the first option in &#39;es", page
    )
    assert "Main menu: what a caller hears" in page  # what it would change, all the same
    assert "/publish" not in page
    number = re.search(r"Draft: revision (\d+)", page)
    assert number is not None
    refused = post_form(
        client, EDIT, f"/staff/lines/second-opinion/revisions/{number.group(1)}/publish",
        message="try anyway",
    )  # fmt: skip
    assert refused.status_code == 400 and "cannot be published" in refused.text


def test_a_second_save_on_a_stale_draft_is_refused_and_keeps_what_was_typed(
    client: AppClient, editor: str
) -> None:
    signed_in(client, editor)
    mine, my_base = flow_on(client.get(EDIT).text)  # the editor opens revision 1
    signed_in(client, ADMIN)  # meanwhile an administrator opens it too, and saves first
    text, base = flow_on(client.get(EDIT).text)
    assert base == my_base and save(client, text.replace(OLD_ES, NEW_ES), base)[0] == 303
    signed_in(client, editor)
    typed = mine.replace("Para emergencias, cuelgue", "En una emergencia, cuelgue")
    status, page = save(client, typed, my_base)
    assert status == 409 and "nothing was saved" in page
    assert "What changed since you opened the page" in page and NEW_ES in page
    assert flow_on(page)[0] == typed  # what they typed is still in the box


def test_only_an_admin_changes_a_number_and_types_it_again(client: AppClient, editor: str) -> None:
    signed_in(client, editor)
    text, base = flow_on(client.get(EDIT).text)
    moved = text.replace('"+18048287999"', '"+18048280001"', 1)
    status, page = save(client, moved, base)
    assert status == 403 and "Only an administrator changes numbers (coordinator)" in page
    assert flow_on(page)[0] == moved
    signed_in(client, ADMIN)
    status, page = save(client, moved, flow_on(client.get(EDIT).text)[1])
    assert status == 303 and "Numbers that change" in page
    assert "+18048287999 → <strong>+18048280001</strong>" in page
    assert "8 0 4, 8 2 8, 0 0 0 1" in page  # said as a caller will hear it
    number = re.search(r"/revisions/(\d+)/publish", page)
    assert number is not None
    publish = f"/staff/lines/second-opinion/revisions/{number.group(1)}/publish"
    wrong = post_form(client, EDIT, publish, message="New number",
                      **{"again-coordinator-0": "+18048280002"})  # fmt: skip
    assert wrong.status_code == 400 and "Type the new number of coordinator again" in wrong.text
    right = post_form(client, EDIT, publish, message="New number",
                      **{"again-coordinator-0": "+18048280001"})  # fmt: skip
    assert right.status_code == 303


@pytest.mark.parametrize("who", [VIEWER, "nina"])
def test_viewers_and_navigators_read_revisions_but_cannot_edit(
    client: AppClient, editor: str, who: str
) -> None:
    signed_in(client, who)
    assert client.get(EDIT).status_code == 403
    line = client.get("/staff/lines/second-opinion")
    assert line.status_code == 200 and "Edit the" not in line.text
    token = csrf_of(client.get("/staff/lines/second-opinion"))
    refused = client.post(EDIT, data={"csrf_token": token, "flow": "x", "base": "1"})
    assert refused.status_code == 403


def test_a_save_without_its_csrf_token_is_refused(client: AppClient, editor: str) -> None:
    signed_in(client, editor)
    refused = client.post(EDIT, data={"flow": "name: x", "base": "1"})
    assert refused.status_code == 403


def test_a_draft_is_tried_in_the_simulator_before_it_is_published(
    client: AppClient, editor: str
) -> None:
    signed_in(client, editor)
    text, base = flow_on(client.get(EDIT).text)
    status, page = save(client, text.replace(OLD_ES, NEW_ES), base)
    link = re.search(r'href="(/staff/lines/second-opinion/revisions/\d+/simulator)"', page)
    assert status == 303 and link is not None
    start = client.get(link.group(1))
    assert start.status_code == 200 and "Simulator: revision" in start.text
    tried = client.post(
        link.group(1),
        data={"csrf_token": csrf_of(start), "start": "1", "channel": "voice", "lang": "es"},
    )
    assert tried.status_code == 200 and NEW_ES in tried.text  # the draft's words
    live = client.post(
        "/staff/simulator",
        data={"csrf_token": csrf_of(start), "start": "1", "channel": "voice", "lang": "es"},
    )
    assert OLD_ES in live.text and NEW_ES not in live.text  # the live line's are unchanged


def test_an_editor_changes_a_word_without_yaml(
    client: AppClient, editor: str, staff_app: FastAPI
) -> None:
    """The words page: every text in a field, Spanish beside English; a save changes that
    value only (the YAML's comments and layout kept), as a checked draft; then publish."""
    signed_in(client, editor)
    page = client.get("/staff/lines/second-opinion/words")
    assert page.status_code == 200
    field = 'name="w:nodes.main.say.es"'
    assert field in page.text and "What a caller hears (Spanish)" in page.text
    assert "+18048287999" not in page.text  # numbers are not words
    base = re.search(r'name="base" value="(\d+)"', page.text)
    assert base is not None
    before = flow_on(client.get(EDIT).text)[0]
    spanish = (
        "Bienvenido a la Línea de Segunda Opinión de VCU Massey. "
        "Para emergencias, cuelgue y llame al 9 1 1."
    )
    saved = client.post(
        "/staff/lines/second-opinion/words",
        data={"csrf_token": csrf_of(page), "base": base.group(1), "w:nodes.main.say.es": spanish},
    )
    assert saved.status_code == 303
    edit = client.get(saved.headers["location"]).text
    assert "The check passed." in edit and "Main menu: what a caller hears" in edit
    after = flow_on(edit)[0]
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert changed == [f"        {spanish}"]  # one line: comments and layout kept
    number = re.search(r"/revisions/(\d+)/publish", edit)
    assert number is not None
    publish = f"/staff/lines/second-opinion/revisions/{number.group(1)}/publish"
    assert post_form(client, EDIT, publish, message="Warmer").status_code == 303
    assert staff_app.state.book.refresh()
    assert "Bienvenido a la Línea" in spanish_greeting(client, "CA" + "4" * 32)
    # The same page, opened before that save, is stale now: refused, and what was typed kept.
    stale = client.post(
        "/staff/lines/second-opinion/words",
        data={"csrf_token": csrf_of(page), "base": base.group(1),
              "w:nodes.main.say.en": "Hello there."},
    )  # fmt: skip
    assert stale.status_code == 409 and 'value="Hello there."' not in stale.text
    assert "Hello there." in stale.text and "nothing was saved" in stale.text


def test_a_test_number_hears_the_draft_and_everyone_else_the_live_line(
    client: AppClient, editor: str, staff_app: FastAPI, database: Database
) -> None:
    signed_in(client, editor)
    added = post_form(client, EDIT, "/staff/lines/second-opinion/test-numbers",
                      number="(804) 555-0177")  # fmt: skip
    assert added.status_code == 303
    assert "+18045550177" in client.get(EDIT).text
    text, base = flow_on(client.get(EDIT).text)
    assert save(client, text.replace(OLD_ES, NEW_ES), base)[0] == 303
    assert staff_app.state.book.refresh()
    tester = Caller(client, call_sid="CA" + "5" * 32, caller="+18045550177")
    tester.call()
    assert NEW_ES in tester.press("9").text  # the draft
    stranger = Caller(client, call_sid="CA" + "6" * 32, caller="+18045550188")
    stranger.call()
    heard = stranger.press("9").text
    assert OLD_ES in heard and NEW_ES not in heard  # the live revision
    signed_in(client, ADMIN)
    call_page = client.get(f"/staff/calls/{'CA' + '5' * 32}").text
    assert "a draft: a test number's call" in call_page
    assert "a draft" not in client.get(f"/staff/calls/{'CA' + '6' * 32}").text
    calls = client.get("/staff/calls").text
    assert calls.count("a test of a draft") == 1  # the test number's call, not the stranger's
    # Removed, it hears the live revision again.
    signed_in(client, editor)
    page = client.get(EDIT).text
    remove = re.search(r'action="(/staff/lines/second-opinion/test-numbers/\d+/remove)"', page)
    assert remove is not None
    assert post_form(client, EDIT, remove.group(1)).status_code == 303
    assert staff_app.state.book.refresh()
    again = Caller(client, call_sid="CA" + "7" * 32, caller="+18045550177")
    again.call()
    assert NEW_ES not in again.press("9").text
    with database.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("test-number%"))
        ).all()
    assert actions == ["test-number-added", "test-number-removed"]


def test_each_revision_says_what_changed_from_the_one_before(
    client: AppClient, editor: str
) -> None:
    signed_in(client, editor)
    text, base = flow_on(client.get(EDIT).text)
    assert save(client, text.replace(OLD_ES, NEW_ES), base)[0] == 303
    page = client.get("/staff/lines/second-opinion/revisions/2").text
    assert "What changed from revision 1" in page
    assert "Main menu: what a caller hears" in page and OLD_ES in page and NEW_ES in page
    first = client.get("/staff/lines/second-opinion/revisions/1").text
    assert "What changed from revision" not in first
