from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.db import Database
from service.texts.conversations import load_conversation, save_conversation
from tests.recorder import Recorder

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TEXTER, LINE = "(804) 555-0100", "+18048287999"


def test_a_conversation_is_kept_for_24_quiet_hours(database: Database) -> None:
    with database.session() as session:
        assert load_conversation(session, TEXTER, LINE, now=T0) is None
        save_conversation(session, TEXTER, LINE, node="main", language="en", now=T0)

    with database.session() as session:
        later = T0 + timedelta(hours=23)
        conversation = load_conversation(session, TEXTER, LINE, now=later)
        assert conversation is not None
        assert (conversation.phone, conversation.node, conversation.language) == (
            "+18045550100",
            "main",
            "en",
        )
        save_conversation(
            session,
            TEXTER,
            LINE,
            node="reach",
            language="es",
            state={"back": ["main"]},
            flow_hash="f1",
            now=later,
        )

    with database.session() as session:
        conversation = load_conversation(session, TEXTER, LINE, now=T0 + timedelta(hours=46))
        assert conversation is not None
        assert conversation.node == "reach"
        assert conversation.state == {"back": ["main"]}
        assert conversation.started_at == T0
        assert load_conversation(session, TEXTER, LINE, now=T0 + timedelta(hours=48)) is None


def test_an_expired_conversation_starts_again_in_the_same_row(database: Database) -> None:
    with database.session() as session:
        first = save_conversation(session, TEXTER, LINE, node="reach", language="es", now=T0)
    restart = T0 + timedelta(days=3)
    with database.session() as session:
        again = save_conversation(session, TEXTER, LINE, node="main", language="en", now=restart)

    assert again.id == first.id
    assert again.started_at == restart
    assert again.last_activity_at == restart


def test_messages_are_linked_to_the_conversation(database: Database, recorder: Recorder) -> None:
    with database.session() as session:
        conversation_id = save_conversation(
            session, TEXTER, LINE, node="main", language="en", now=T0
        ).id
    recorder.message_received("SM1", TEXTER, LINE, "1", at=T0)

    with database.session() as session:
        conversation = load_conversation(session, TEXTER, LINE, now=T0)
        assert conversation is not None
        assert conversation.id == conversation_id
        assert [m.message_sid for m in conversation.messages] == ["SM1"]
