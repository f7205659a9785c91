"""The CSV exports opened as a spreadsheet would open them: no cell is a formula, the clinic's
own `+1…` numbers are text (not `1.8E+10`), and the file is named for the days it covers in
the clinic's zone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from service.db import Database
from tests.recorder import Recorder
from tests.sms.conftest import ACCOUNT_SID, FakeTwilio
from tests.sms.test_worker import SPOOLS, worker_for
from tests.staff.conftest import LINE, NOW, VIEWER, Clock, record_call, signed_in
from tests.support import AppClient
from tests.voice.caller import Caller

COORDINATOR = "+18048287999"
TEXTER = "+18045557001"
# What a patient (or anyone with a phone) could text the line, each read by a spreadsheet as
# a formula if written as it came.
DANGEROUS = [
    "=1+2",
    '=HYPERLINK("http://evil.example","x")',
    "-2+3",
    "+15",
    "@SUM(A1)",
    "\tcmd",
    "\rcmd",
    "  =1+1",
    "\uff1d1+1",  # a full-width "=", which some spreadsheets fold to "="
]
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def as_a_spreadsheet_reads(cell: str) -> tuple[str, str]:
    """What Excel or LibreOffice makes of a CSV cell when it opens the file: a formula (a tab or
    carriage return first, or `=`, `+`, `-`, `@` or their full-width forms after any spaces),
    a number (what parses as one: `+18048287999` becomes 1.8E+10), or text (anything else,
    such as a cell that starts with `'`)."""
    if cell[:1] in ("\t", "\r") or cell.lstrip()[:1] in FORMULA_STARTS:
        return ("formula", cell)
    try:
        float(cell)
    except ValueError:
        return ("text", cell)
    return ("number", cell)


def cells(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text, newline="")))


@pytest.fixture
def exported(recorder: Recorder) -> None:
    record_call(
        recorder,
        "CA" + "a" * 32,
        "+18045551234",
        NOW - timedelta(hours=3),
        keys=[("main", "2", "reach"), ("reach", "1", "coordinator")],
        transfer=("coordinator", COORDINATOR, "completed"),
    )
    for n, body in enumerate(DANGEROUS):
        recorder.message_received(
            f"SM{n:032x}", TEXTER, LINE, body, at=NOW - timedelta(minutes=n + 1)
        )
    recorder.message_sent(None, TEXTER, LINE, "@reply", status="sent", at=NOW)


def test_no_cell_of_either_csv_is_a_formula_and_the_clinics_numbers_are_text(
    client: AppClient, exported: None
) -> None:
    signed_in(client, VIEWER)
    calls = cells(client.get("/staff/calls.csv?for=excel"))
    messages = cells(client.get("/staff/messages.csv?for=excel"))
    for row in calls + messages:
        for cell in row:
            assert as_a_spreadsheet_reads(cell.lstrip("\ufeff"))[0] != "formula", repr(cell)

    call = dict(zip(calls[0], calls[1], strict=True))
    assert as_a_spreadsheet_reads(call["transferred_number"]) == ("text", f"'{COORDINATOR}")
    assert as_a_spreadsheet_reads(call["duration_seconds"])[0] == "number"  # real numbers stay
    lines = {row[messages[0].index("line")] for row in messages[1:]}
    assert lines == {f"'{LINE}"}
    bodies = [row[messages[0].index("body")] for row in messages[1:]]
    assert bodies == ["'@reply"] + ["'" + body for body in DANGEROUS]


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("from=2026-11-01&to=2026-11-30", "2026-11-01_2026-11-30"),
        ("from=2026-11-01", "2026-11-01_2026-11-24"),  # until today
        ("to=2026-11-20", "until-2026-11-20"),
        ("", "until-2026-11-24"),
        ("from=2026-11-01&to=2026-11-30&for=excel", "2026-11-01_2026-11-30"),
    ],
)
def test_a_csv_is_named_for_the_days_it_covers(
    client: AppClient, exported: None, query: str, days: str
) -> None:
    signed_in(client, VIEWER)
    for kind in ("calls", "messages"):
        response = client.get(f"/staff/{kind}.csv?{query}")
        assert response.status_code == 200
        disposition = response.headers["content-disposition"]
        assert disposition == f'attachment; filename="{kind}-{days}.csv"'


def test_today_in_a_csvs_name_is_the_clinics_date(
    staff_app: FastAPI, client: AppClient, clock: Clock
) -> None:
    settings = staff_app.state.settings
    staff_app.state.settings = settings.model_copy(update={"timezone": "America/New_York"})
    clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # still the 24th in New York
    signed_in(client, VIEWER)
    response = client.get("/staff/calls.csv?from=2026-11-01")
    assert response.headers["content-disposition"] == (
        'attachment; filename="calls-2026-11-01_2026-11-24.csv"'
    )


def test_a_text_the_outbox_sent_carries_its_language(
    client: AppClient, staff_app: FastAPI, database: Database
) -> None:
    """A Spanish caller presses 8: the text goes out through the worker to a number that never
    texted the line (no conversation), and the CSV still says it was in Spanish."""
    caller = Caller(client, call_sid="CA" + "e" * 32, caller="+18045556789")
    caller.call()
    caller.press("9")
    caller.press("2")
    assert caller.press("8").words[0] == "En un momento le enviaremos un mensaje de texto."
    fake = FakeTwilio().start()
    try:
        settings = staff_app.state.settings.model_copy(update={"twilio_account_sid": ACCOUNT_SID})
        worker = worker_for(database, settings, fake)
        try:
            assert worker.run_once().sent == 1
        finally:
            SPOOLS.remove(worker.spool)
            worker.spool.close()
    finally:
        fake.stop()
    signed_in(client, VIEWER)
    messages = cells(client.get("/staff/messages.csv"))
    [sent] = [dict(zip(messages[0], row, strict=True)) for row in messages[1:]]
    assert (sent["direction"], sent["phone"], sent["language"]) == ("out", "•••-•••-6789", "es")
    assert sent["body"].startswith("Línea de Segunda Opinión de VCU Massey")
