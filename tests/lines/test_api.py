"""`/api/v1` as the clinic's IT uses it, with tokens made by `phoneline api-token`: lines and
revisions (draft, check, publish, roll back: a publish is heard by the next call), calls,
conversations and follow-ups with numbers masked and cursor paging; roles, lines, revocation,
an audit entry for every use, and clear 4xx for bad tokens and bad input. Two lines, records
made through signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.api import routes
from service.cli import app as cli
from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.models import AuditEntry, utcnow
from tests.lines.conftest import TRIALS_GREETING, trials_text
from tests.lines.test_two_lines import (  # noqa: F401
    EDITION_TWO,
    SHIPPED_NUMBER,
    TRIALS_NUMBER,
    app,
    edition_two,
)
from tests.sms.conftest import Texter
from tests.support import AppClient, app_client
from tests.voice.caller import Caller

TRIALS = "clinical-trials"
SHIPPED = "second-opinion"
CALLERS = ("+18045550601", "+18045550602", "+18045550603")


def make_token(name: str, role: str, *lines: str) -> str:
    args = ["api-token", "create", name, "--role", role]
    for line in lines:
        args += ["--line", line]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[-1]
    assert re.fullmatch(r"plt_[A-Za-z0-9_-]{43}", token), result.output
    return token


@pytest.fixture
def client(app: FastAPI, database: Database) -> Iterator[AppClient]:  # noqa: F811
    """Two calls to the trials line and one to the shipped line, and on each line a texter who
    asked for a call back (a follow-up)."""
    with app_client(app) as client:
        for n, number in enumerate((TRIALS_NUMBER, TRIALS_NUMBER, SHIPPED_NUMBER)):
            caller = Caller(client, call_sid=f"CA{n + 700:032d}", called=number,
                            caller=CALLERS[n])  # fmt: skip
            caller.call()
            caller.hang_up()
        for n, number in enumerate((TRIALS_NUMBER, SHIPPED_NUMBER)):
            texter = Texter(client, phone=f"+1804555070{n}", line=number)
            for body in ("hi", "CALL", "0"):  # asks for a call back: a follow-up
                texter.reply(body)
        assert app.state.spool.drain(15)
        with database.session() as session:
            sweep_follow_ups(session, utcnow())
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_request_without_a_valid_token_is_refused_clearly(client: AppClient) -> None:
    token = make_token("crm", "viewer")
    for headers in (
        {},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        bearer("plt_" + "x" * 43),
        bearer("not a token at all"),
        bearer(token + "x"),
    ):
        refused = client.get("/api/v1/lines", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "API token" in refused.json()["detail"]
    assert client.get("/api/v1/lines", headers=bearer(token)).status_code == 200
    revoked = CliRunner().invoke(cli, ["api-token", "revoke", "crm"])
    assert revoked.exit_code == 0 and "Revoked crm." in revoked.output
    assert client.get("/api/v1/lines", headers=bearer(token)).status_code == 401
    listed = CliRunner().invoke(cli, ["api-token", "list"]).output
    assert listed.startswith("crm\tviewer\tevery line\trevoked\tlast used 20")
    assert token not in listed


def test_an_editor_drafts_checks_publishes_and_rolls_back_and_the_next_call_hears_it(
    client: AppClient, app: FastAPI  # noqa: F811
) -> None:
    headers = bearer(make_token("pipeline", "editor"))
    lines = {line["slug"]: line for line in client.get("/api/v1/lines", headers=headers).json()}
    assert lines[TRIALS]["numbers"] == [TRIALS_NUMBER]
    assert lines[TRIALS]["published_revision"] == 1 and lines[SHIPPED]["default"] is True

    broken = client.post(
        f"/api/v1/lines/{TRIALS}/revisions",
        headers=headers,
        json={"yaml": trials_text().replace("goto:", "go-to:", 1), "message": "typo"},
    )
    assert broken.status_code == 201
    assert broken.json()["number"] == 2 and broken.json()["problems"]
    refused = client.post(f"/api/v1/lines/{TRIALS}/revisions/2/publish", headers=headers)
    assert refused.status_code == 422 and "has problems" in refused.json()["detail"]

    draft = client.post(
        f"/api/v1/lines/{TRIALS}/revisions",
        headers=headers,
        json={"yaml": edition_two(), "message": "New greeting"},
    )
    assert draft.status_code == 201 and draft.json()["problems"] == []
    shown = client.get(f"/api/v1/lines/{TRIALS}/revisions/3", headers=headers).json()
    assert shown["yaml"] == edition_two() and shown["published"] is False
    published = client.post(f"/api/v1/lines/{TRIALS}/revisions/3/publish", headers=headers)
    assert published.status_code == 200 and published.json()["published"] is True
    assert published.json()["published_by"] == "api:pipeline"
    assert app.state.book.refresh()
    heard = Caller(client, call_sid="CA" + "9" * 32, called=TRIALS_NUMBER).call()
    assert EDITION_TWO in heard.text

    back = client.post(
        f"/api/v1/lines/{TRIALS}/rollback",
        headers=headers,
        json={"revision": 1, "message": "Back to the first words"},
    )
    assert back.status_code == 200
    assert back.json()["number"] == 4 and back.json()["copied_from"] == 1
    assert app.state.book.refresh()
    heard = Caller(client, call_sid="CA" + "8" * 32, called=TRIALS_NUMBER).call()
    assert TRIALS_GREETING.replace("'", "&apos;") in heard.text or TRIALS_GREETING in heard.text
    history = client.get(f"/api/v1/lines/{TRIALS}/revisions", headers=headers).json()
    assert [(r["number"], r["published"]) for r in history] == [
        (4, True), (3, False), (2, False), (1, False),
    ]  # fmt: skip


def test_a_viewer_reads_but_changes_nothing(client: AppClient) -> None:
    headers = bearer(make_token("reader", "viewer"))
    assert client.get(f"/api/v1/lines/{TRIALS}/revisions/1", headers=headers).status_code == 200
    for path, body in (
        (f"/api/v1/lines/{TRIALS}/revisions", {"yaml": edition_two()}),
        (f"/api/v1/lines/{TRIALS}/revisions/1/publish", {}),
        (f"/api/v1/lines/{TRIALS}/rollback", {"revision": 1, "message": "x"}),
    ):
        refused = client.post(path, headers=headers, json=body)
        assert refused.status_code == 403, path
    history = client.get(f"/api/v1/lines/{TRIALS}/revisions", headers=headers).json()
    assert [r["number"] for r in history] == [1]


def test_records_are_masked_filtered_and_paged_and_a_line_token_sees_only_its_line(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = bearer(make_token("ehr", "viewer"))
    trials_only = bearer(make_token("trials-crm", "viewer", TRIALS))
    calls = client.get("/api/v1/calls", headers=every).json()
    assert [call["line"] for call in calls["items"]] == [SHIPPED, TRIALS, TRIALS]
    assert calls["next"] is None
    assert {call["caller"][-4:] for call in calls["items"]} == {c[-4:] for c in CALLERS}
    assert all(call["revision"] == 1 for call in calls["items"])
    mine = client.get("/api/v1/calls", headers=trials_only).json()["items"]
    assert [call["line"] for call in mine] == [TRIALS, TRIALS]
    assert client.get(f"/api/v1/calls?line={TRIALS}", headers=every).json()["items"] == mine
    for path in (
        f"/api/v1/calls?line={SHIPPED}",
        f"/api/v1/conversations?line={SHIPPED}",
        f"/api/v1/follow-ups?line={SHIPPED}",
        f"/api/v1/lines/{SHIPPED}/revisions",
        f"/api/v1/lines/{SHIPPED}/revisions/1",
    ):
        assert client.get(path, headers=trials_only).status_code == 404, path
    lines = client.get("/api/v1/lines", headers=trials_only).json()
    assert [line["slug"] for line in lines] == [TRIALS]
    texts = client.get("/api/v1/conversations", headers=trials_only).json()["items"]
    assert [text["line"] for text in texts] == [TRIALS]
    items = client.get("/api/v1/follow-ups", headers=trials_only).json()["items"]
    assert items and {item["line"] for item in items} == {TRIALS}

    # No answer of any route carries a patient's whole number.
    answers = [
        client.get(path, headers=every).text
        for path in ("/api/v1/calls", "/api/v1/conversations", "/api/v1/follow-ups",
                     "/api/v1/follow-ups?state=closed")
    ]  # fmt: skip
    for number in (*CALLERS, "+18045550700", "+18045550701"):
        for answer in answers:
            assert number not in answer and number[2:] not in answer, number

    monkeypatch.setattr(routes, "PAGE", 1)
    seen, after = [], ""
    while True:
        page = client.get(f"/api/v1/calls{after}", headers=every).json()
        seen += [call["call_sid"] for call in page["items"]]
        if page["next"] is None:
            break
        after = f"?after={page['next']}"
    assert seen == [call["call_sid"] for call in calls["items"]]
    items, after = [], ""
    while True:
        page = client.get(f"/api/v1/follow-ups{after}", headers=every).json()
        items += page["items"]
        if page["next"] is None:
            break
        after = f"?after={page['next']}"
    assert len(items) == len({item["id"] for item in items}) >= 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/calls?after=not-a-cursor", None),
        ("GET", "/api/v1/calls?after=bm90LWEtY3Vyc29y", None),
        ("GET", "/api/v1/calls?since=yesterday", None),
        ("GET", "/api/v1/calls?since=2026-12-02&until=2026-12-01", None),
        ("GET", "/api/v1/calls?outcome=maybe", None),
        ("GET", "/api/v1/calls?line=%00", None),
        ("GET", "/api/v1/follow-ups?state=everything", None),
        ("GET", "/api/v1/follow-ups?after=-1", None),
        ("GET", "/api/v1/lines/no-such-line/revisions", None),
        ("GET", f"/api/v1/lines/{TRIALS}/revisions/99", None),
        ("GET", f"/api/v1/lines/{TRIALS}/revisions/one", None),
        ("POST", f"/api/v1/lines/{TRIALS}/revisions", {"message": "no yaml"}),
        ("POST", f"/api/v1/lines/{TRIALS}/revisions", {"yaml": "x" * 60_001}),
        ("POST", f"/api/v1/lines/{TRIALS}/revisions", {"yaml": ": : :\n\t- ["}),
        ("POST", f"/api/v1/lines/{TRIALS}/revisions/99/publish", None),
        ("POST", f"/api/v1/lines/{TRIALS}/rollback", {"revision": 0, "message": "x"}),
        ("POST", f"/api/v1/lines/{TRIALS}/rollback", {"revision": 99, "message": "x"}),
        ("POST", f"/api/v1/lines/{TRIALS}/rollback", {"revision": 1}),
    ],
)
def test_bad_input_is_a_clear_4xx_never_a_5xx(
    client: AppClient, method: str, path: str, body: object
) -> None:
    headers = bearer(make_token("fuzz", "editor"))
    answer = client.request(method, path, headers=headers, json=body)
    assert 400 <= answer.status_code < 500 or (
        answer.status_code == 201 and answer.json()["problems"]  # kept as a draft, not valid
    ), (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/json")


def test_every_use_is_audited_and_the_public_document_lists_only_the_api(
    client: AppClient, database: Database
) -> None:
    headers = bearer(make_token("audited", "viewer"))
    for path in ("/api/v1/lines", "/api/v1/calls?outcome=hung-up", "/api/v1/follow-ups"):
        assert client.get(path, headers=headers).status_code == 200
    with database.session(read_only=True) as session:
        used = session.scalars(
            select(AuditEntry.detail)
            .where(AuditEntry.actor == "api:audited")
            .order_by(AuditEntry.id)
        ).all()
        made = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "api-token")
        )
    assert used == ["GET /api/v1/lines", "GET /api/v1/calls?outcome=hung-up",
                    "GET /api/v1/follow-ups"]  # fmt: skip
    assert made == 1
    document = httpx.Response(200, content=client.get("/openapi.json").content).json()
    paths = set(document["paths"])
    assert paths and all(path.startswith("/api/v1/") for path in paths), paths
    assert {"/api/v1/lines", "/api/v1/calls", "/api/v1/lines/{slug}/rollback"} <= paths


def test_an_administrator_makes_and_revokes_a_token_at_staff_admin(
    client: AppClient, database: Database
) -> None:
    from service.models import StaffUser
    from tests.staff.conftest import ADMIN, csrf_of, password_hash, post_form, signed_in

    with database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
    signed_in(client, ADMIN)
    form = client.get("/staff/admin")
    made = client.post(
        "/staff/admin/api-tokens",
        data={"csrf_token": csrf_of(form), "name": "crm-export", "role": "viewer",
              f"line:{TRIALS}": "on"},
    )  # fmt: skip
    assert made.status_code == 200
    token = re.search(r"plt_[A-Za-z0-9_-]{43}", made.text)
    assert token is not None
    lines = client.get("/api/v1/lines", headers=bearer(token.group(0))).json()
    assert [line["slug"] for line in lines] == [TRIALS]
    listed = client.get("/staff/admin").text
    assert "crm-export" in listed and token.group(0) not in listed
    asked = post_form(client, "/staff/admin", "/staff/admin/api-tokens/crm-export/revoke")
    assert "Revoke the API token crm-export?" in asked.text
    done = post_form(
        client, "/staff/admin", "/staff/admin/api-tokens/crm-export/revoke", confirm="yes"
    )
    assert "The API token crm-export is revoked." in done.text
    assert client.get("/api/v1/lines", headers=bearer(token.group(0))).status_code == 401
    duplicate = client.post(
        "/staff/admin/api-tokens",
        data={"csrf_token": csrf_of(client.get("/staff/admin")), "name": "crm-export",
              "role": "viewer"},
    )  # fmt: skip
    assert duplicate.status_code == 400 and "already a token named" in duplicate.text
    with database.session(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == ADMIN).order_by(AuditEntry.id)
        ).all()
    assert [a for a in actions if a.startswith("api-token")] == ["api-token", "api-token-revoke"]
