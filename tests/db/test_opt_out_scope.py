"""Opt-outs per number of the service's (carriers' rules), in the database and pending in the
spool: STOP to a number stops that number's texts, STOPALL every number's, START to a number
starts that number's; the newest change decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from service import migrate
from service.db import Database
from service.models import OptOut, OutboxMessage
from service.optouts.store import (
    OptOutChanged,
    is_opted_out,
    opted_out_now,
    pending_changes,
    set_opt_out,
    stops_every_number,
)
from service.outbound.outbox import claim_due, enqueue

T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
PHONE = "+18045550111"
A, B = "+18045550100", "+18045550177"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_stop_to_one_number_leaves_the_others(database: Database) -> None:
    with database.session() as session:
        set_opt_out(session, PHONE, True, "STOP", number=A, at=at(1))
        assert is_opted_out(session, PHONE, A)
        assert is_opted_out(session, "(804) 555-0111", "804-555-0100")  # however written
        assert not is_opted_out(session, PHONE, B)
        assert is_opted_out(session, PHONE, None), "a number not known: stopped, to be safe"


def test_stopall_stops_every_number_and_a_start_restarts_one(database: Database) -> None:
    with database.session() as session:
        set_opt_out(session, PHONE, True, "STOPALL", at=at(1))
        assert is_opted_out(session, PHONE, A) and is_opted_out(session, PHONE, B)
        set_opt_out(session, PHONE, False, "START", number=B, at=at(2))
        assert is_opted_out(session, PHONE, A)
        assert not is_opted_out(session, PHONE, B)
        set_opt_out(session, PHONE, True, "STOPALL", at=at(3))
        assert is_opted_out(session, PHONE, B)


def test_a_late_change_changes_nothing(database: Database) -> None:
    with database.session() as session:
        set_opt_out(session, PHONE, False, "START", number=A, at=at(5))
        set_opt_out(session, PHONE, True, "STOP", number=A, at=at(4))  # written late
        assert not is_opted_out(session, PHONE, A)


def test_changes_pending_in_the_spool_are_weighed_with_the_databases(
    database: Database,
) -> None:
    pending = pending_changes(
        [
            OptOutChanged(PHONE, True, "STOP", at(2), A),
            OptOutChanged(PHONE, False, "START", at(3), B),
            OptOutChanged("+18045550199", True, "STOP", at(1)),  # spooled before numbers: all
        ]
    )
    with database.session() as session:
        set_opt_out(session, PHONE, True, "STOPALL", at=at(1))
        set_opt_out(session, PHONE, False, "START", number=A, at=at(9))  # newer than pending
        assert not opted_out_now(session, PHONE, A, pending)
        assert not opted_out_now(session, PHONE, B, pending)
        assert opted_out_now(session, "+18045550199", B, pending)
    assert opted_out_now(None, PHONE, A, pending)  # the database away: the spool alone


def test_stop_suppresses_the_waiting_texts_from_its_number(database: Database) -> None:
    with database.session() as session:
        from_a = enqueue(session, "sms", PHONE, "numbers", from_number=A, now=T0).id
        from_b = enqueue(session, "sms", PHONE, "numbers", from_number=B, now=T0).id
        unknown = enqueue(session, "sms", PHONE, "numbers", from_number=None, now=T0).id
        set_opt_out(session, PHONE, True, "STOP", number=A, at=at(1))
        queued_after = enqueue(session, "sms", PHONE, "later", from_number=A, now=at(2)).id
    with database.session() as session:
        statuses = dict(session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert statuses == {
        from_a: "suppressed",
        from_b: "pending",
        unknown: "suppressed",
        queued_after: "suppressed",
    }


def test_a_stop_written_without_touching_the_queue_is_caught_at_claim_time(
    database: Database,
) -> None:
    with database.session() as session:
        from_a = enqueue(session, "sms", PHONE, "numbers of A", from_number=A, now=T0).id
        from_b = enqueue(session, "sms", PHONE, "numbers of B", from_number=B, now=T0).id
        session.add(OptOut(phone=PHONE, number=A, opted_out=True, keyword="STOP", changed_at=T0))
    with database.session() as session:
        claimed = [m.id for m in claim_due(session, "w", now=at(60))]
    assert claimed == [from_b]
    with database.session() as session:
        assert session.get(OutboxMessage, from_a).status == "suppressed"  # type: ignore[union-attr]


def test_which_words_stop_every_number() -> None:
    assert stops_every_number("STOPALL")
    assert stops_every_number("WORDS:STOPALLTEXTSPLEASE")
    assert not stops_every_number("STOP")
    assert not stops_every_number("WORDS:PLEASESTOPALL")  # only what starts "stop all"
    assert not stops_every_number(None)


def test_the_opt_outs_kept_before_stop_every_number(migrated_url: str) -> None:
    """Rows kept when the service had one number become STOPALL's: nobody who stopped is
    texted from a number added since."""
    migrate.downgrade(migrated_url, "b8e4f2a6c913")
    database = Database(migrated_url)
    try:
        with database.session() as session:
            session.execute(
                text(
                    "INSERT INTO opt_outs (phone, opted_out, keyword, changed_at) "
                    "VALUES (:phone, true, 'STOP', :at)"
                ),
                {"phone": PHONE, "at": T0},
            )
        migrate.upgrade(migrated_url)
        with database.session() as session:
            assert is_opted_out(session, PHONE, B)
            assert session.scalars(select(OptOut.number)).all() == ["*"]
    finally:
        database.dispose()
