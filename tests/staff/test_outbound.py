"""`/staff/outbound`: staff see every text and call-back the line queued, and what became of it
(sent, failed, opted out, refused by the outbound policy), masked; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from service.db import Database
from service.models import OutboxMessage
from service.optouts.store import set_opt_out
from service.outbound.outbox import enqueue
from tests.staff.conftest import VIEWER, signed_in
from tests.support import AppClient

MOBILE = "+18045556005"


def queue_everything(database: Database) -> None:
    with database.session() as session:
        enqueue(
            session, "sms", MOBILE, "VCU Massey Second Opinion Line: the numbers you asked for."
        )
        sent = enqueue(session, "sms", "+18045551234", "sent one")
        enqueue(session, "call", "+19005551234", "<Response/>")  # premium rate: refused
        set_opt_out(session, "+18045557777", True, "STOP")
        enqueue(session, "sms", "+18045557777", "after STOP")  # suppressed
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == sent.id).values(status="sent")
        )


def test_staff_see_what_the_line_sent_and_what_it_refused(
    client: AppClient, database: Database
) -> None:
    queue_everything(database)
    page = signed_in(client, VIEWER).get("/staff/outbound")
    assert page.status_code == 200
    text = page.text
    assert "Not sent: refused by the outbound policy" in text
    assert "refused by the outbound policy: number type not allowed" in text
    assert "Not sent: opted out" in text and "Queued" in text and "Sent" in text
    assert "•••-•••-6005" in text and MOBILE not in text  # masked
    assert "VCU Massey Second Opinion Line: the numbers you asked for." in text
    assert "&lt;Response/&gt;" not in text  # a call-back's TwiML is not shown
    refused_only = client.get("/staff/outbound?status=refused")
    assert "•••-•••-1234" in refused_only.text and "•••-•••-6005" not in refused_only.text
    assert 'href="/staff/outbound"' in text  # in the navigation


def test_odd_filters_are_a_400_page(client: AppClient) -> None:
    signed_in(client, VIEWER)
    for query in ("status=exploded", "kind=fax", "before=%C2%B9", "before=99999999999999999999"):
        response = client.get(f"/staff/outbound?{query}")
        assert response.status_code == 400, query
        assert "<html" in response.text


def test_signed_out_visitors_are_sent_to_sign_in(client: AppClient) -> None:
    response = client.get("/staff/outbound")
    assert response.status_code in (303, 401)


def test_pages_name_their_icon_and_it_is_served(client: AppClient) -> None:
    page = client.get("/staff/login")
    assert '<link rel="icon" href="/staff/favicon.svg" type="image/svg+xml">' in page.text
    icon = client.get("/staff/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")


def test_staff_see_whether_a_call_back_was_answered(client: AppClient, database: Database) -> None:
    results = {
        "+18045551001": ("no-answer", None),
        "+18045551002": ("completed", "busy"),
        "+18045551003": ("completed", "completed"),
        "+18045551004": (None, None),
    }
    with database.session() as session:
        for number, (call_status, dial_status) in results.items():
            row = enqueue(session, "call", number, "<Response/>")
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status="sent", call_status=call_status, dial_status=dial_status)
            )
    text = signed_in(client, VIEWER).get("/staff/outbound?kind=call").text
    assert "Not answered: nobody answered" in text
    assert "Answered, but the person it called was not reached: the line was busy" in text
    assert "Answered, and put through to a person" in text
    assert "Placed; Twilio has not said how it ended yet" in text
