"""One view per number, and finding it by its last four digits or a SID (issue 14), on SQLite
and PostgreSQL: every call, text and queued text of that number, the number masked and never
in a URL."""

from __future__ import annotations

import re
from datetime import timedelta

from service.db import Database
from service.outbound.outbox import enqueue
from service.texts.conversations import save_conversation
from tests.recorder import Recorder
from tests.staff.conftest import LINE, NOW, VIEWER, record_call, signed_in
from tests.support import AppClient

PATIENT = "+18045551001"
OTHER = "+18045559001"  # the same last four digits, another person
SID = "CA" + "a" * 32
TEXT_SID = "SM" + "b" * 32


def story(recorder: Recorder, database: Database) -> None:
    record_call(recorder, SID, PATIENT, NOW - timedelta(days=2))
    record_call(recorder, "CA" + "c" * 32, PATIENT, NOW - timedelta(days=1))
    record_call(recorder, "CA" + "d" * 32, OTHER, NOW - timedelta(hours=3))
    with database.session() as session:
        save_conversation(session, PATIENT, LINE, node="main", language="es", now=NOW)
    recorder.message_received(TEXT_SID, PATIENT, LINE, "call me at 804 555 1001", at=NOW)
    with database.session() as session:
        enqueue(
            session, "sms", PATIENT, "VCU Massey Second Opinion Line: the numbers you asked for."
        )


def test_last_four_digits_find_each_number_and_its_page_has_everything(
    client: AppClient, recorder: Recorder, database: Database
) -> None:
    story(recorder, database)
    signed_in(client, VIEWER)
    found = client.get("/staff/search?q=1001")
    assert found.status_code == 200
    assert found.text.count("•••-•••-1001") == 1 and "•••-•••-9001" not in found.text
    link = found.text.split('href="/staff/number?', 1)[1].split('"', 1)[0]
    assert PATIENT not in link and "1001" not in link  # named by a row, not by the number
    page = client.get("/staff/number?" + link.replace("&amp;", "&"))
    assert page.status_code == 200
    text = page.text
    assert "Everything from •••-•••-1001" in re.sub(r"<[^>]+>", "", text)
    assert PATIENT not in text and "804 555 1001" not in text  # masked; bodies redacted
    assert text.count('href="/staff/calls/') == 2  # its two calls, not the other person's
    assert "call me at" in text
    assert "Text" in text and "Queued" in text  # the text the line queued


def test_a_sid_goes_straight_to_its_call_or_conversation(
    client: AppClient, recorder: Recorder, database: Database
) -> None:
    story(recorder, database)
    signed_in(client, VIEWER)
    call = client.get(f"/staff/search?q={SID}")
    assert call.status_code == 303 and call.headers["location"].startswith("/staff/calls/")
    text = client.get(f"/staff/search?q={TEXT_SID}")
    assert text.status_code == 303 and text.headers["location"].startswith("/staff/messages/")


def test_odd_searches_are_a_400_page_and_unknown_rows_a_404(client: AppClient) -> None:
    signed_in(client, VIEWER)
    for query in ("12", "\uff11\uff12\uff13\uff14", "<script>", "1001 OR 1=1"):
        response = client.get("/staff/search", params={"q": query})
        assert response.status_code == 400, query
    assert "No number ending in 4321" in client.get("/staff/search?q=4321").text
    for query in ("call=99", "call=%C2%B9", "conversation=x", ""):
        assert client.get(f"/staff/number?{query}").status_code == 404, query
