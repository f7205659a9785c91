"""The menus page (`/staff/lines/{slug}/menus`): an editor adds, moves, re-keys and removes
options and menus, and changes a contact's office hours, without YAML; an administrator
changes its numbers and reads each as a caller will hear it. Each change is a draft checked as
`flows check` checks; a reserved key is refused at its field, a menu still led to is kept, a
stale page keeps what was typed. And the words page shows each problem at its field, with
each text message's segments."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service.db import Database
from service.flowengine import Flow
from service.flowengine.validate import flow_of_text
from service.models import AuditEntry, FlowRevision, StaffUser
from service.staff.revision_changes import readable_flow
from tests.staff.conftest import ADMIN, VIEWER, csrf_of, password_hash, signed_in
from tests.support import AppClient

MENUS = "/staff/lines/second-opinion/menus"
WORDS = "/staff/lines/second-opinion/words"
EDITOR = "edna"


@pytest.fixture
def editor(staff_app: FastAPI, database: Database) -> str:
    with database.session() as session:
        session.add(StaffUser(username=EDITOR, password_hash=password_hash(), role="editor"))
        session.add(StaffUser(username="nina", password_hash=password_hash(), role="navigator"))
    return EDITOR


def base_of(page: httpx.Response) -> str:
    found = re.search(r'name="base" value="(\d+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def change(
    client: AppClient, action: str, base: str | None = None, **fields: str
) -> httpx.Response:
    """Post one of the menus page's forms as the browser would (its token, its revision)."""
    page = client.get(MENUS)
    assert page.status_code == 200, page.text[:500]
    data = {"csrf_token": csrf_of(page), "base": base or base_of(page), **fields}
    return client.post(MENUS.removesuffix("/menus") + action, data=data)


def saved(client: AppClient, answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:2000]
    assert answer.headers["location"].startswith(MENUS + "?done=")
    return client.get(answer.headers["location"]).text


def newest(database: Database) -> FlowRevision:
    with database.session() as session:
        revision = session.scalars(
            select(FlowRevision).order_by(FlowRevision.number.desc()).limit(1)
        ).one()
        session.expunge(revision)
    return revision


def newest_flow(database: Database) -> Flow:
    """The newest revision's flow, through the check (it fails on any problem)."""
    revision = newest(database)
    return flow_of_text(revision.yaml, f"revision {revision.number}")


def revisions(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(FlowRevision)) or 0


def keys(flow: Flow, menu: str) -> list[str]:
    return [option.key for option in flow.nodes[menu].options]


def test_an_editor_adds_moves_and_removes_options_without_yaml(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    page = client.get(MENUS)
    assert page.status_code == 200 and "Options of Hear why it matters" in page.text
    assert "puts the caller through to Patient referral coordinator, VCU Massey" in page.text
    added = change(
        client, "/menus/why/options", key="4", leads="goto:disagree",
        **{"label-en": "hear what to do if they disagree",
           "label-es": "saber qué hacer si no están de acuerdo"},
    )  # fmt: skip
    shown = saved(client, added)
    assert "The option is added." in shown and "hear what to do if they disagree" in shown
    flow = newest_flow(database)
    assert keys(flow, "why") == ["2", "3", "4"]
    assert flow.nodes["why"].options[2].goto == "disagree"
    assert flow.nodes["why"].options[2].label["es"] == "saber qué hacer si no están de acuerdo"
    saved(client, change(client, "/menus/why/options/2", do="up"))
    assert keys(newest_flow(database), "why") == ["2", "4", "3"]
    saved(client, change(client, "/menus/why/options/0", do="remove"))
    assert keys(newest_flow(database), "why") == ["4", "3"]
    saved(client, change(client, "/menus/why/options/0", do="key", key="5"))
    assert keys(newest_flow(database), "why") == ["5", "3"]
    text = newest(database).yaml
    assert "# OFFICE HOURS: SET THESE." in text  # the file's comments are kept
    assert "      - key: 5\n        label: {en: hear what to do if they disagree" in text
    with database.session() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("revision-saved") == 4


def test_a_reserved_key_is_refused_at_its_field_and_nothing_is_saved(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    before = revisions(database)
    refused = change(
        client, "/menus/main/options", key="9", leads="goto:why",
        **{"label-en": "hear it again", "label-es": "oírlo otra vez"},
    )  # fmt: skip
    assert refused.status_code == 400
    at_field = re.search(
        r'<input id="add-option-main-key"[^>]*aria-invalid="true"[^>]*>\s*'
        r'<span class="error" id="add-option-main-key-refused" role="alert">([^<]*)</span>',
        refused.text,
    )
    assert at_field, refused.text
    assert at_field.group(1) == "Key 9 is reserved on the first menu for changing language."
    assert 'value="hear it again"' in refused.text  # what was typed is kept
    rekeyed = change(client, "/menus/why/options/0", do="key", key="0")
    assert rekeyed.status_code == 400
    assert (
        'id="option-why-0-key-refused" role="alert">Key 0 is reserved: 0 always reaches a person.'
        in rekeyed.text
    )
    taken = change(client, "/menus/why/options/0", do="key", key="3")
    assert taken.status_code == 400 and "Duplicate key 3" in taken.text
    assert revisions(database) == before


def test_a_menu_is_removed_only_when_nothing_leads_to_it(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    before = revisions(database)
    kept = change(client, "/menus/why/remove")
    assert kept.status_code == 400
    assert "Options lead to Hear why it matters (Main menu, key 1)" in html.unescape(kept.text)
    start = change(client, "/menus/main/remove")
    assert start.status_code == 400 and "where every call and text begins" in start.text
    assert revisions(database) == before
    # A new menu: a draft with a problem (nothing leads to it yet), shown at the menu.
    page = saved(
        client,
        change(client, "/menus/add", title="Insurance questions",
               **{"say-en": "Ask your insurer what it pays for.",
                  "say-es": "Pregunte a su seguro qué paga."}),
    )  # fmt: skip
    menu = re.search(
        r'id="menu-insurance_questions".*?</h3>\s*<ul class="problems"[^>]*>(.*?)</ul>', page, re.S
    )
    assert menu and "node &#39;insurance_questions&#39; is unreachable" in menu.group(1)
    assert "insurance_questions" in readable_flow(newest(database).yaml, "draft").nodes  # type: ignore[union-attr]
    saved(client, change(client, "/menus/insurance_questions/remove"))
    assert "insurance_questions" not in newest_flow(database).nodes


def test_an_editor_changes_office_hours_without_yaml(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    assert newest_flow(database).contacts["coordinator"].hours is None
    fields = {
        "timezone": "America/Chicago",
        **{f"span-new-{day}": "on" for day in ("mon", "tue", "wed", "thu", "fri")},
        "span-new-from": "09:00",
        "span-new-to": "17:00",
        "description-en": "Monday to Friday, 9 to 5",
        "description-es": "de lunes a viernes, de 9 a 5",
    }
    page = saved(client, change(client, "/contacts/coordinator/hours", **fields))
    assert "The office hours are changed." in page
    hours = newest_flow(database).contacts["coordinator"].hours
    assert hours is not None and hours.timezone == "America/Chicago"
    assert [(span.days, str(span.opens), str(span.closes)) for span in hours.spans] == [
        ((0, 1, 2, 3, 4), "09:00:00", "17:00:00")
    ]
    assert hours.description["es"] == "de lunes a viernes, de 9 a 5"
    # A second span on Saturday, the first removed, a zone typed.
    again = {
        "other-timezone": "America/Indiana/Indianapolis",
        "span-0-mon": "on", "span-0-from": "09:00", "span-0-to": "17:00", "span-0-remove": "on",
        "span-new-sat": "on", "span-new-from": "10:00", "span-new-to": "12:00",
        "description-en": "Saturday morning", "description-es": "el sábado por la mañana",
    }  # fmt: skip
    saved(client, change(client, "/contacts/coordinator/hours", **again))
    hours = newest_flow(database).contacts["coordinator"].hours
    assert hours is not None and hours.timezone == "America/Indiana/Indianapolis"
    assert [span.days for span in hours.spans] == [(5,)]
    before = revisions(database)
    late = change(client, "/contacts/coordinator/hours", **{**again, "span-new-to": "09:00"})
    assert late.status_code == 400
    assert 'id="hours-coordinator-span-new-to-refused" role="alert">Write the time it closes' in (
        late.text
    )
    nowhere = change(
        client, "/contacts/coordinator/hours", **{**again, "other-timezone": "Mars/Base"}
    )
    assert nowhere.status_code == 400 and "&#39;Mars/Base&#39; is not a time zone" in nowhere.text
    assert revisions(database) == before


def test_an_editor_cannot_change_a_number(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    page = client.get(MENUS)
    assert 'name="number-0"' not in page.text  # no form for numbers
    assert "(804) 828-7999 (+18048287999, said as “8 0 4, 8 2 8, 7 9 9 9”)" in page.text
    before = revisions(database)
    refused = change(client, "/contacts/coordinator/numbers",
                     **{"number-0": "(804) 828-0001", "display-0": "(804) 828-0001"})  # fmt: skip
    assert refused.status_code == 403 and "Only an administrator changes numbers" in refused.text
    assert revisions(database) == before
    assert newest_flow(database).contacts["coordinator"].numbers == ("+18048287999",)


def test_an_admin_changes_a_number_and_reads_it_in_words(
    client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    wrong = change(client, "/contacts/library/numbers",
                   **{"number-0": "+18048288709", "number-1": "804-555"})  # fmt: skip
    assert wrong.status_code == 400
    assert 'id="numbers-library-number-1-refused" role="alert">&#39;804-555&#39; is not' in (
        wrong.text
    )
    page = saved(
        client,
        change(client, "/contacts/library/numbers",
               **{"number-0": "(804) 828-0001", "display-0": "", "remove-1": "on",
                  "number-new": "+1 800 422 6237", "display-new": "1-800-4-CANCER"}),
    )  # fmt: skip
    assert "The numbers are changed" in page
    library = newest_flow(database).contacts["library"]
    assert library.numbers == ("+18048280001", "+18004226237")
    assert library.display == ("(804) 828-0001", "1-800-4-CANCER")
    assert "+18048280001 said as “8 0 4, 8 2 8, 0 0 0 1”" in page  # changes on publish
    assert "+18004226237 said as “1, 800, 4 2 2, 6 2 3 7”" in page
    assert 'value="+18048280001"' in page


def test_a_stale_page_is_refused_and_keeps_what_was_typed(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    opened = base_of(client.get(MENUS))
    signed_in(client, ADMIN)  # meanwhile an administrator removes an option
    saved(client, change(client, "/menus/why/options/1", do="remove"))
    signed_in(client, editor)
    before = revisions(database)
    stale = change(
        client, "/menus/why/options", base=opened, key="4", leads="goto:disagree",
        **{"label-en": "typed before the reload", "label-es": "escrito antes"},
    )  # fmt: skip
    assert stale.status_code == 409 and "nothing was saved" in stale.text
    assert "What changed since you opened the page" in stale.text
    assert 'value="typed before the reload"' in stale.text
    assert re.search(r'<option value="goto:disagree" selected>', stale.text)
    assert revisions(database) == before


def test_a_change_without_its_csrf_token_is_refused(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    before = revisions(database)
    refused = client.post(MENUS.removesuffix("/menus") + "/menus/why/options/0",
                          data={"base": "1", "do": "remove"})  # fmt: skip
    assert refused.status_code == 403
    assert revisions(database) == before


@pytest.mark.parametrize("who", [VIEWER, "nina"])
def test_viewers_and_navigators_cannot_open_or_post_the_menus_page(
    client: AppClient, editor: str, database: Database, who: str
) -> None:
    signed_in(client, who)
    assert client.get(MENUS).status_code == 403
    token = csrf_of(client.get("/staff/lines/second-opinion"))
    before = revisions(database)
    for action in ("/menus/why/options/0", "/contacts/coordinator/hours", "/menus/add"):
        answer = client.post(
            MENUS.removesuffix("/menus") + action,
            data={"csrf_token": token, "base": "1", "do": "remove", "title": "x"},
        )
        assert answer.status_code == 403
    assert revisions(database) == before


def test_the_words_page_shows_each_problem_and_measure_at_its_field(
    client: AppClient, editor: str
) -> None:
    signed_in(client, editor)
    page = client.get(WORDS)
    field = "w:nodes.why.sms.en"
    measure = re.search(rf'id="{field}-measure" lang="en">([^<]*)<', page.text)
    assert measure and measure.group(1).startswith("189 characters: 2 segment(s) of GSM-7")
    assert "a text message may take 2 in English" in measure.group(1)
    said = re.search(r'id="w:nodes.main.say.es-measure" lang="en">([^<]*)<', page.text)
    assert said and html.unescape(said.group(1)) == (
        '25 words before "press 1", about 10 seconds (at most 25 words).'
    )
    long = "A second opinion is an important way to take part in your health care. " * 10
    answer = client.post(
        WORDS, data={"csrf_token": csrf_of(page), "base": base_of(page), field: long}
    )
    assert answer.status_code == 303
    page = client.get(WORDS)
    problems = re.search(rf'<ul class="problems" id="{field}-problems"[^>]*>(.*?)</ul>', page.text)
    assert problems, page.text
    assert "SMS reply in &#39;en&#39; takes 3 messages (at most 2)" in problems.group(1)
    assert re.search(rf'id="{field}"[^>]*aria-describedby="{field}-problems {field}-measure"',
                     page.text)  # fmt: skip
    measure = re.search(rf'id="{field}-measure" lang="en">([^<]*)<', page.text)
    assert measure and measure.group(1).startswith(f"{len(long.strip())} characters: 5 segment(s)")
