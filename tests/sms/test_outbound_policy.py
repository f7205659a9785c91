"""The outbound policy, attack by attack (issue 13's evidence): the line cannot be made to text
or call strangers, premium numbers or foreign numbers, nor one number over and over. Each
refusal is a `refused` outbox row staff can see, counted in /metrics, and the caller or texter
is told what to do instead. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from itertools import count

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.main import create_app
from service.models import OutboxMessage, utcnow
from service.outbound import limits
from service.outbound.limits import Limits, Refusal, destination_refusal
from service.outbound.outbox import enqueue
from tests.sms.conftest import Texter
from tests.support import AppClient, app_client
from tests.voice.caller import Caller

SPOOFED = "+18045556005"
COORDINATOR_CARD = "Patient referral coordinator, VCU Massey: (804) 828-7999"
CANNOT_TEXT = "Sorry, we can't send a text message to this phone."
CALL_REFUSED = "We can't call this number back. Please call us:"

_calls = count(1)


def rows(database: Database, to: str | None = None) -> list[tuple[str, str, str, str | None]]:
    with database.session() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if to is not None:
            query = query.where(OutboxMessage.to_number == to)
        return [
            (row.kind, row.to_number, row.status, row.last_error) for row in session.scalars(query)
        ]


def refused_total(kind: str, reason: str) -> float:
    labels = {"kind": kind, "reason": reason}
    return REGISTRY.get_sample_value("phoneline_outbound_refused_total", labels) or 0.0


def press_8_from(client: AppClient, number: str) -> list[str]:
    """A call from `number` (a spoofed caller ID, say) that asks for the numbers by text."""
    caller = Caller(client, call_sid=f"CA{next(_calls):032x}", caller=number)
    caller.call()
    return caller.press("8").words


def texter_at(client: AppClient, number: str) -> Texter:
    return Texter(client, phone=number)


def test_a_spoofed_caller_id_gets_five_texts_a_day_and_no_more(
    client: AppClient, database: Database
) -> None:
    for _ in range(5):
        assert press_8_from(client, SPOOFED)[0] == "We will send you a text message in a moment."
    before = refused_total("sms", "number_cap")
    for _ in range(5):
        heard = press_8_from(client, SPOOFED)
        assert heard[0] == CANNOT_TEXT  # no promise the line will not keep
    statuses = [status for _, _, status, _ in rows(database, SPOOFED)]
    assert statuses == ["pending"] * 5 + ["refused"] * 5
    assert rows(database, SPOOFED)[-1][3] == "refused by the outbound policy: per-number cap"
    assert refused_total("sms", "number_cap") == before + 5


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+2348031234567", "country not allowed"), ("+5352345678", "country not allowed")],
    ids=["nigeria", "cuba"],
)
def test_spoofed_foreign_caller_ids_get_no_text(
    client: AppClient, database: Database, number: str, reason: str
) -> None:
    assert press_8_from(client, number)[0] == CANNOT_TEXT
    assert rows(database) == [
        ("sms", number, "refused", f"refused by the outbound policy: {reason}")
    ]


def test_a_caller_id_that_is_not_a_valid_number_gets_no_text(
    client: AppClient, database: Database
) -> None:
    assert press_8_from(client, "+447700900123")[0] == CANNOT_TEXT  # a UK drama number
    assert rows(database) == []  # not even a mobile: never queued at all


def test_call_from_one_number_places_two_call_backs_a_day(
    client: AppClient, database: Database
) -> None:
    texter = texter_at(client, SPOOFED)
    texter.send("hi")
    for _ in range(2):
        assert "We will call you in a moment" in texter.reply("CALL")
    for _ in range(3):
        reply = texter.reply("CALL")
        assert reply.startswith(CALL_REFUSED)
        assert COORDINATOR_CARD in reply
    assert [status for kind, _, status, _ in rows(database) if kind == "call"] == (
        ["pending"] * 2 + ["refused"] * 3
    )


@pytest.mark.parametrize(
    "number",
    ["+19005551234", "+447700900123", "+18005551234", "12345", "+882345678"],
    ids=["premium", "uk", "toll-free", "short-code", "international-network"],
)
def test_call_from_a_number_the_line_must_not_call_is_refused_plainly(
    client: AppClient, database: Database, number: str
) -> None:
    reply = texter_at(client, number).reply("CALL")
    assert reply.startswith(CALL_REFUSED)
    assert COORDINATOR_CARD in reply
    assert [(kind, status) for kind, _, status, _ in rows(database)] == [("call", "refused")]


def test_the_hourly_caps_hold_across_numbers(database: Database, settings: Settings) -> None:
    capped = settings.model_copy(update={"outbound_texts_per_hour": 3})
    with app_client(create_app(capped)) as client:
        heard = [press_8_from(client, f"+1804555{n:04d}")[0] for n in range(4)]
    assert heard[3] == CANNOT_TEXT and CANNOT_TEXT not in heard[:3]
    assert [status for _, _, status, _ in rows(database)] == ["pending"] * 3 + ["refused"]
    assert rows(database)[-1][3] == "refused by the outbound policy: hourly cap"


def call_backs_at_once(database: Database, numbers: list[str]) -> list[str]:
    """Queue a call-back to each number, all at once: one thread per number, each with its own
    connection and transaction, which stays open a moment after the row is queued (as the
    webhook's goes on to answer the texter). The rows' statuses, in id order."""
    url = database.url.render_as_string(hide_password=False)
    concurrent = Database(url, pool_size=len(numbers), max_overflow=0)
    start = threading.Barrier(len(numbers))

    def call_back(number: str) -> None:
        start.wait(10)
        with concurrent.session() as session:
            enqueue(session, "call", number, "<Response/>")
            time.sleep(0.05)

    try:
        with ThreadPoolExecutor(len(numbers)) as pool:
            for done in [pool.submit(call_back, number) for number in numbers]:
                done.result()
    finally:
        concurrent.dispose()
    return [status for kind, _, status, _ in rows(database) if kind == "call"]


def test_the_hourly_cap_holds_when_texters_ask_at_once(database: Database) -> None:
    limits.configure(Limits(calls_per_hour=7))
    statuses = call_backs_at_once(database, [f"+1804555{n:04d}" for n in range(20)])
    assert sorted(statuses) == ["pending"] * 7 + ["refused"] * 13


def test_the_per_number_cap_holds_when_one_number_asks_at_once(database: Database) -> None:
    statuses = call_backs_at_once(database, [SPOOFED] * 8)
    assert sorted(statuses) == ["pending"] * 2 + ["refused"] * 6


def test_opt_outs_win_over_the_policy(texter: Texter, database: Database) -> None:
    texter.send("STOP")
    with database.session() as session:
        row = enqueue(session, "sms", texter.phone, "numbers")
        assert row.status == "suppressed"  # not refused, not pending: the patient said stop


def test_refused_and_suppressed_rows_do_not_use_up_the_caps(database: Database) -> None:
    with database.session() as session:
        for _ in range(5):
            enqueue(session, "sms", "+19005551234", "x")  # refused: premium rate
        for n in range(5):
            enqueue(session, "sms", SPOOFED, f"text {n}")
        assert enqueue(session, "sms", SPOOFED, "sixth").status == "refused"
        # Yesterday's texts are not today's.
        later = utcnow() + timedelta(hours=25)
        assert enqueue(session, "sms", SPOOFED, "tomorrow", now=later).status == "pending"


def test_a_long_texts_further_parts_are_the_same_text(database: Database) -> None:
    with database.session() as session:
        for n in range(5):
            enqueue(session, "sms", SPOOFED, f"text {n}", dedupe_key=f"t{n}")
            part = enqueue(
                session, "sms", SPOOFED, "part 2", dedupe_key=f"t{n}#2", further_part=True
            )
            assert part.status == "pending"
        assert enqueue(session, "sms", SPOOFED, "sixth").status == "refused"


@pytest.mark.parametrize(
    ("number", "refusal"),
    [
        ("+18045556005", None),
        ("+14165550123", None),  # Toronto: the NANP
        ("+19005551234", Refusal.NUMBER_TYPE),
        ("+18005551234", Refusal.NUMBER_TYPE),
        ("+2348031234567", Refusal.COUNTRY),
        ("+447700900123", Refusal.INVALID),
        ("12345", Refusal.INVALID),
        ("", Refusal.INVALID),
    ],
)
def test_destinations(number: str, refusal: Refusal | None) -> None:
    assert destination_refusal(number, Limits()) == refusal


def test_the_settings_can_narrow_the_nanp_to_regions(settings: Settings) -> None:
    narrowed = Limits.of(settings.model_copy(update={"outbound_regions": "us"}))
    assert destination_refusal("+18045556005", narrowed) is None
    assert destination_refusal("+14165550123", narrowed) == Refusal.COUNTRY
    assert Limits.of(settings) == Limits()
