"""The SMS line through signed webhooks: what a texter reads, in English and Spanish, and what is
recorded (on SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.db import Database
from service.flowengine import Flow
from service.flowengine.segments import count_segments
from service.models import Conversation, Message, OutboxMessage, utcnow
from tests.engine.test_facts import facts, key_words
from tests.sms.conftest import LINE, TEXTER, Texter
from tests.support import AppClient


# Every fact of the handout (tests/engine/test_facts.py), as a texter reads it.
def fact_words(lang: str) -> list[str]:
    return [word for fact in facts() for word in key_words(fact, "sms", lang)]


NUMBERS = [
    "(804) 828-7999",
    "(804) 828-8709",
    "(804) 828-0450",
    "1-800-4-CANCER",
    "1-800-422-6237",
    "(800) 638-6833",
]

# The whole handout: every menu, every contact, every step, then every number by text.
SCRIPT = [
    "1",
    "#",
    "2",
    "1",
    "#",
    "2",
    "#",
    "3",
    "#",
    "4",
    "#",
    "5",
    "#",
    "8",
    "MENU",
    "3",
    "#",
    "4",
    "1",
    "1",
    "8",
    "MENU",
    "8",
]


SEGMENTS = {"en": 2, "es": 3}
"""Segments a message may take: English is GSM-7, Spanish UCS-2 (67 characters a segment)."""


def read_the_handout(texter: Texter, first: str, lang: str = "en") -> None:
    texter.send(first)
    for body in SCRIPT:
        messages = texter.send(body)
        assert messages, f"no answer to {body!r}"
        for message in messages:
            assert count_segments(message) <= SEGMENTS[lang]


def test_an_english_texter_reads_every_fact_and_gets_every_number(texter: Texter) -> None:
    read_the_handout(texter, "Hi")
    for fact in [*fact_words("en"), *NUMBERS, "Directory of Medical Specialists"]:
        assert fact.lower() in texter.everything.lower(), fact
    # The last answer (main menu "8") carries all five contacts.
    last = "\n".join(texter.send("8"))
    for number in NUMBERS:
        assert number in last
    assert "Directory of Medical Specialists" in last


def test_a_spanish_texter_starting_with_hola_reads_everything_in_spanish(texter: Texter) -> None:
    first = texter.reply("HOLA")
    assert "Línea de Segunda Opinión" in first
    assert "Responda STOP para cancelar" in first  # the opt-in notice, in Spanish
    read_the_handout(texter, "menu", "es")
    for fact in [*fact_words("es"), *NUMBERS, "Directory of Medical Specialists"]:
        assert fact.lower() in texter.everything.lower(), fact
    assert "Reply" not in texter.everything  # never English once switched
    last = "\n".join(texter.send("8"))
    for number in NUMBERS:
        assert number in last


def test_the_first_reply_is_the_main_menu_with_the_opt_in_notice(texter: Texter) -> None:
    first = texter.reply("I got this number from my doctor")
    assert first.startswith("VCU Massey Second Opinion Line")
    assert "1 Why a second opinion" in first
    assert "Reply STOP to opt out, HELP for help" in first
    second = texter.reply("1")
    assert "take part in your health care" in second
    assert "STOP" not in second
    assert second.endswith("Reply # to go back, 0 for a person.")


def test_a_first_text_asking_who_this_is_gets_who_and_how_to_go_on(texter: Texter) -> None:
    first = texter.send("what is this?")
    assert first[0].startswith("This is VCU Massey Second Opinion Line, a text line about")
    assert "Reply STOP to opt out, HELP for help" in first[0]
    whole = "\n".join(first)
    assert "Patient referral coordinator, VCU Massey: (804) 828-7999" in whole
    assert whole.endswith("Reply MENU for the menu, 0 for a person.")
    assert "1 Why a second opinion" in texter.reply("menu")


def test_digits_navigate_back_and_menu_return_and_nonsense_gets_the_options(
    texter: Texter,
) -> None:
    texter.send("hi")
    assert "Your doctor can't recommend a colleague?" in texter.reply("2")
    assert "The patient referral coordinator at VCU Massey can help you" in texter.reply("1")
    assert "1 Call the referral coordinator" in texter.reply("#")
    assert "1 Why a second opinion" in texter.reply("#")
    assert "1 Why a second opinion" in texter.reply("#")  # up from the main menu stays there
    texter.send("2")
    unknown = texter.reply("purple")
    assert unknown.startswith("Sorry, we didn't understand that. In an emergency, call 911.")
    assert "1 Call the referral coordinator" in unknown  # the current options
    assert unknown.endswith("Reply # to go back, 0 for a person.")
    assert "1 Why a second opinion" in texter.reply("BACK")
    texter.send("3")
    assert "1 Why a second opinion" in texter.reply("menu")


def test_zero_gives_the_coordinator_and_call_queues_a_call_back(
    texter: Texter, database: Database
) -> None:
    texter.send("hi")
    zero = texter.reply("0")
    assert "(804) 828-7999" in zero
    assert "Reply CALL" in zero
    calling = texter.reply("CALL")
    assert "We will call you in a moment" in calling
    assert calling.endswith("Reply # to go back, 0 for a person.")
    with database.session() as session:
        rows = session.scalars(select(OutboxMessage)).all()
    assert [(r.kind, r.to_number, r.from_number, r.status, r.language) for r in rows] == [
        ("call", TEXTER, LINE, "pending", "en")
    ]
    call = rows[0].body
    # Before it connects, the call says who is calling and why.
    assert call.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US" '
        'voice="Polly.Joanna-Neural">Hello. This is VCU Massey\'s Second Opinion Line, calling '
        "because you asked by text to talk with the patient referral coordinator"
    )
    assert '<Dial timeout="25"><Number>+18048287999</Number></Dial>' in call
    assert "You can call the patient referral coordinator" in call  # after the dial ends
    assert '<prosody rate="85%">8 0 4,<break time="400ms" /> 8 2 8,' in call


@pytest.mark.parametrize("body", ["LLAMAME", "llámenme", "llamame por favor"])
def test_llamame_in_an_english_conversation_calls_back_in_spanish(
    texter: Texter, database: Database, body: str
) -> None:
    texter.send("hi")
    texter.send("0")
    calling = texter.reply(body)
    assert calling.startswith("En un momento le llamaremos para comunicarle")
    with database.session() as session:
        call = session.scalars(select(OutboxMessage.body)).one()
        conversation = session.scalars(select(Conversation)).one()
    assert '<Say language="es-US" voice="Polly.Lupe-Neural">Hola. Le llama' in call
    assert 'language="en-US"' not in call
    assert conversation.language == "es"
    assert texter.reply("1").startswith("Una segunda opinión")  # and goes on in Spanish


def test_a_call_back_asked_for_in_spanish_is_in_spanish(texter: Texter, database: Database) -> None:
    texter.send("hola")
    assert "En un momento le llamaremos" in texter.reply("LLAMAME")
    with database.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert (row.kind, row.language) == ("call", "es")
    assert '<Say language="es-US"' in row.body


def test_call_from_the_library_page_calls_back_to_the_library(
    texter: Texter, database: Database
) -> None:
    texter.send("hi")
    texter.send("2")
    texter.send("2")
    texter.send("CALL")
    with database.session() as session:
        twiml = session.scalars(select(OutboxMessage.body)).one()
    assert "<Number>+18048288709</Number><Number>+18048280450</Number>" in twiml


def test_the_conversation_is_kept_with_its_language_and_flow_version(
    texter: Texter, database: Database, flow: Flow
) -> None:
    texter.send("hola")
    texter.send("2")
    with database.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.phone, conversation.line) == (TEXTER, LINE)
        assert (conversation.node, conversation.language) == ("reach", "es")
        assert conversation.flow_hash == flow.content_hash


def test_after_24_quiet_hours_it_starts_over_in_the_last_language(
    texter: Texter, database: Database
) -> None:
    texter.send("hola")
    texter.send("2")
    with database.session() as session:
        session.execute(
            update(Conversation).values(last_activity_at=utcnow() - timedelta(hours=25))
        )
    again = texter.reply("1")
    assert again.startswith("Línea de Segunda Opinión de VCU Massey")  # main menu, not option 1
    assert "Responda STOP para cancelar" in again
    assert "Si su médico no puede recomendarle a un colega" in texter.reply("2")


def test_a_conversation_a_day_old_but_not_24_hours_quiet_carries_on(
    texter: Texter, database: Database
) -> None:
    texter.send("hi")
    texter.send("2")
    with database.session() as session:
        session.execute(
            update(Conversation).values(last_activity_at=utcnow() - timedelta(hours=23))
        )
    assert "Cancer Information Service" in texter.reply("3")


def test_texts_are_recorded_once_per_message_sid(texter: Texter, database: Database) -> None:
    texter.send("hi", sid="SM" + "a" * 32)
    first = texter.send("2", sid="SM" + "b" * 32)
    # Twilio retried the same webhook: the same menu again, not a step further.
    again = texter.send("2", sid="SM" + "b" * 32)
    assert again == first
    with database.session() as session:
        inbound = session.scalars(
            select(Message).where(Message.direction == "in").order_by(Message.id)
        ).all()
        outbound = session.scalars(select(Message).where(Message.direction == "out")).all()
    assert [(m.message_sid, m.body, m.phone, m.line) for m in inbound] == [
        ("SM" + "a" * 32, "hi", TEXTER, LINE),
        ("SM" + "b" * 32, "2", TEXTER, LINE),
    ]
    assert all(m.conversation_id is not None for m in inbound)
    assert len(outbound) == len(texter.transcript)
    assert {m.body for m in outbound} == set(texter.transcript)


def test_bodies_and_numbers_never_reach_the_log(
    texter: Texter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        texter.send("my secret words")
        texter.send("2")
        texter.send("STOP")
    assert "secret" not in caplog.text
    assert "5550123" not in caplog.text
    assert "Second Opinion" not in caplog.text


def test_an_unsigned_text_is_refused(client: AppClient) -> None:
    response = client.post(
        "/twilio/sms",
        data={"From": TEXTER, "To": LINE, "Body": "hi", "MessageSid": "SM" + "1" * 32},
    )
    assert response.status_code == 403
    forged = client.twilio(
        "/twilio/sms", {"From": TEXTER, "To": LINE, "Body": "hi"}, token="not-the-token"
    )
    assert forged.status_code == 403


def test_a_text_without_a_sender_is_a_clear_400(client: AppClient) -> None:
    response = client.twilio("/twilio/sms", {"Body": "hi", "MessageSid": "SM" + "1" * 32})
    assert response.status_code == 400
    assert "From and To" in response.text


def test_delivery_status_callbacks_update_the_message(
    client: AppClient, database: Database
) -> None:
    sid = "SM" + "c" * 32
    for status in ("sent", "delivered", "sent"):  # repeated and out of order
        response = client.twilio("/twilio/sms/status", {"MessageSid": sid, "MessageStatus": status})
        assert response.status_code == 204
        assert response.content == b""
    with database.session() as session:
        assert session.scalars(select(Message.status).where(Message.message_sid == sid)).one() == (
            "delivered"
        )
    # A status Twilio may add one day is ignored, never refused (Twilio would log every such
    # callback as a failed webhook).
    odd = client.twilio("/twilio/sms/status", {"MessageSid": sid, "MessageStatus": "exploded"})
    assert odd.status_code == 204
    with database.session() as session:
        assert session.scalars(select(Message.status).where(Message.message_sid == sid)).one() == (
            "delivered"
        )
    unsigned = client.post("/twilio/sms/status", data={"MessageSid": sid})
    assert unsigned.status_code == 403
