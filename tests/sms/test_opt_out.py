"""Short-code compliance: STOP means nothing more is sent, replies and queued texts alike, until
START; HELP always answers with a number and STOP (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.config import Settings
from service.db import Database
from service.models import OptOut, OutboxKind, OutboxMessage
from service.optouts.store import is_opted_out
from service.outbound.outbox import enqueue
from tests.sms.conftest import LINE, TEXTER, FakeTwilio, Texter
from tests.sms.test_worker import worker_for

OPT_OUT_WORDS = [
    "STOP",
    "stopall",
    "Unsubscribe",
    "CANCEL",
    "end",
    "QUIT",
    "revoke",
    "OPTOUT",
    "Parar",
    "ALTO",
]


def opted_out(database: Database) -> bool | None:
    with database.session() as session:
        if not session.scalar(select(func.count()).where(OptOut.phone == TEXTER)):
            return None
        return is_opted_out(session, TEXTER, LINE)


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_each_opt_out_word_stops_everything_until_start(
    texter: Texter, database: Database, word: str
) -> None:
    texter.send("hi")
    [confirmation] = texter.send(word)
    assert "No more messages will be sent" in confirmation or "No le enviaremos" in confirmation
    assert "START" in confirmation
    assert opted_out(database) is True
    for anything in ("hi", "1", "HELP", "menu", "HOLA", "CALL", word):
        assert texter.send(anything) == [], anything
    with database.session() as session:
        assert session.scalars(select(OutboxMessage)).all() == []  # CALL queued nothing
    [back] = texter.send("START")
    assert "subscribed" in back or "suscrito" in back
    assert opted_out(database) is False
    assert "1 " in texter.reply("menu")


def test_the_spanish_opt_out_words_answer_in_spanish(texter: Texter) -> None:
    texter.send("hi")
    assert "No le enviaremos más mensajes" in texter.reply("parar")


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_each_opt_in_word_brings_the_texter_back(
    texter: Texter, database: Database, word: str
) -> None:
    texter.send("STOP")
    assert texter.send("hi") == []
    assert "subscribed to VCU Massey Second Opinion Line again" in texter.reply(word)
    assert opted_out(database) is False
    assert "1 Why a second opinion" in texter.reply("menu")


def test_stop_then_queued_texts_are_suppressed_by_the_worker(
    texter: Texter, database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    with database.session() as session:
        before = enqueue(session, OutboxKind.SMS, TEXTER, "numbers", from_number=LINE).id
    texter.send("STOP")
    with database.session() as session:
        after = enqueue(session, OutboxKind.SMS, TEXTER, "numbers again", from_number=LINE).id
    report = worker_for(database, settings, fake_twilio).run_once()
    assert report.sent == 0
    assert fake_twilio.requests == []
    with database.session() as session:
        statuses = {r.id: r.status for r in session.scalars(select(OutboxMessage))}
    assert statuses == {before: "suppressed", after: "suppressed"}
    texter.send("START")
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "welcome back", from_number=LINE)
    assert worker_for(database, settings, fake_twilio).run_once().sent == 1
    assert [r.form["Body"] for r in fake_twilio.requests] == ["welcome back"]


@pytest.mark.parametrize(
    ("word", "number_word"),
    [("HELP", "coordinator"), ("info", "coordinator"), ("AYUDA", "coordinación de referidos")],
)
def test_help_carries_a_phone_number_and_stop(texter: Texter, word: str, number_word: str) -> None:
    texter.send("hi")
    texter.send("2")
    [help_text] = texter.send(word)
    assert "(804) 828-7999" in help_text
    assert "STOP" in help_text
    assert number_word in help_text
    # HELP does not move the conversation (AYUDA goes on in Spanish).
    then = "Servicio de Información sobre el Cáncer" if word == "AYUDA" else "Cancer Information"
    assert texter.reply("3").startswith(then + " Service" * (word != "AYUDA"))


def test_help_as_the_very_first_text(texter: Texter) -> None:
    [help_text] = texter.send("HELP")
    assert "Msg&data rates may apply" in help_text
    assert "Reply STOP to opt out" in help_text


def test_a_retried_stop_is_confirmed_again_and_counted_once(
    texter: Texter, database: Database
) -> None:
    sid = "SM" + "d" * 32
    assert texter.send("STOP", sid=sid) == texter.send("STOP", sid=sid)
    assert opted_out(database) is True
