"""Every form of the dashboard, found from its routes (a new one is held to these without being
listed here): each POST without its CSRF token is refused with "Form expired" and changes
nothing; and a viewer can post no form that edits a line, even with a good token: no revision
is saved, published or rolled back, no test number added, no recording kept."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import func, select

from service.db import Database
from service.models import AuditEntry, FlowRevision, LineTestNumber, PromptAudio
from service.staff.routes import router
from tests.audio import mp3_of
from tests.staff.conftest import ADMIN, VIEWER, csrf_of, signed_in
from tests.support import AppClient

VALUES = {
    "slug": "second-opinion",
    "contact_id": "coordinator",
    "node_id": "main",
    "username": VIEWER,
    "name": "a-token",
}
"""What each path parameter is posted as (any other: 1)."""


def posted_forms() -> list[str]:
    schema = get_openapi(title="staff", version="1", routes=router.routes)
    paths = [path for path, methods in schema["paths"].items() if "post" in methods]
    return sorted(re.sub(r"\{(\w+)\}", lambda m: VALUES.get(m.group(1), "1"), path)
                  for path in paths)  # fmt: skip


def changes(database: Database) -> tuple[int, ...]:
    """What a form could have changed: revisions, test numbers, recordings, audit entries
    other than signing in."""
    with database.session(read_only=True) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table).where(*where)) or 0
            for table, where in (
                (FlowRevision, ()),
                (LineTestNumber, ()),
                (PromptAudio, ()),
                (AuditEntry, (AuditEntry.action.not_in(["sign-in", "sign-in-failed"]),)),
            )
        )


def test_there_are_forms_to_hold_to_it() -> None:
    forms = posted_forms()
    assert len(forms) >= 30
    assert "/staff/lines/second-opinion/recordings" in forms
    assert "/staff/lines/second-opinion/menus/main/options/1" in forms


@pytest.mark.parametrize("action", posted_forms())
def test_a_form_without_its_token_is_refused_and_changes_nothing(
    client: AppClient, database: Database, staff_app: FastAPI, action: str
) -> None:
    signed_in(client, ADMIN)
    before = changes(database)
    answer = client.post(
        action,
        data={"base": "1", "node": "main", "lang": "en", "message": "m", "number": "8045550123"},
        files={"audio": ("a.mp3", mp3_of(2), "audio/mpeg")},
    )
    assert answer.status_code == 403 and "Form expired" in answer.text, (action, answer.text[:300])
    assert changes(database) == before


LINE_FORMS = [form for form in posted_forms() if form.startswith("/staff/lines/")]


@pytest.mark.parametrize("action", LINE_FORMS)
def test_a_viewer_edits_no_line_even_with_a_good_token(
    client: AppClient, database: Database, action: str
) -> None:
    signed_in(client, VIEWER)
    token = csrf_of(client.get("/staff/lines/second-opinion"))
    before = changes(database)
    answer = client.post(
        action,
        data={"csrf_token": token, "base": "1", "node": "main", "lang": "en",
              "message": "m", "number": "8045550123", "key": "5"},
        files={"audio": ("a.mp3", mp3_of(2), "audio/mpeg")},
    )  # fmt: skip
    if action.endswith("/simulator"):  # trying a revision changes nothing, and viewers may
        assert answer.status_code in (200, 400)
    else:
        assert answer.status_code == 403, (action, answer.status_code, answer.text[:300])
    assert changes(database) == before
