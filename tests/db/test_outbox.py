"""The outbox: queued once, claimed by one worker at a time, stale claims taken over."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service.db import Database
from service.models import OutboxKind, OutboxMessage
from service.optouts.store import OptOutChanged, is_opted_out, pending_changes, set_opt_out
from service.outbound.outbox import (
    OutboxQueued,
    beat,
    claim_due,
    enqueue,
    mark_failed,
    mark_retry,
    mark_sent,
    write_outbox_records,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TEXTER = "+18045550100"


def statuses(database: Database) -> dict[int, str]:
    with database.session() as session:
        return dict(session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())


def test_enqueue_normalises_and_dedupes(database: Database) -> None:
    with database.session() as session:
        first = enqueue(
            session, "sms", "(804) 555-0100", "Numbers", now=NOW, dedupe_key="CA1:numbers"
        )
        again = enqueue(
            session, "sms", "(804) 555-0100", "Numbers", now=NOW, dedupe_key="CA1:numbers"
        )
        other = enqueue(session, "sms", "(804) 555-0100", "Numbers", now=NOW)

    assert first.id == again.id != other.id
    assert first.to_number == TEXTER
    assert first.status == "pending"
    assert first.attempts == 0


def test_what_is_not_a_phone_number_is_kept_as_refused_never_sent(database: Database) -> None:
    with database.session() as session:
        junk = enqueue(session, "sms", "911x", "hi")
        assert (junk.status, junk.to_number) == ("refused", "911x")
        assert junk.last_error == "refused by the outbound policy: invalid number"


def test_claim_send_retry_and_fail(database: Database) -> None:
    with database.session() as session:
        a = enqueue(session, "sms", TEXTER, "a", now=NOW).id
        b = enqueue(session, "call", TEXTER, "<Response/>", now=NOW).id
        later = enqueue(
            session, "sms", TEXTER, "later", now=NOW, not_before=NOW + timedelta(hours=1)
        ).id

    with database.session() as session:
        beat(session, "worker-1", NOW + timedelta(seconds=1))
        claimed = claim_due(session, "worker-1", limit=10, now=NOW + timedelta(seconds=1))
    assert [(m.id, m.status, m.attempts, m.claimed_by) for m in claimed] == [
        (a, "sending", 1, "worker-1"),
        (b, "sending", 1, "worker-1"),
    ]

    with database.session() as session:
        assert claim_due(session, "worker-2", now=NOW + timedelta(seconds=2)) == []
        mark_sent(session, a, "SM123")
        mark_retry(session, b, "Twilio 503", NOW + timedelta(seconds=30))

    with database.session() as session:
        retried = claim_due(session, "worker-2", now=NOW + timedelta(seconds=31))
        assert [(m.id, m.attempts) for m in retried] == [(b, 2)]
        mark_failed(session, b, "Twilio 21211 invalid number")

    assert statuses(database) == {a: "sent", b: "failed", later: "pending"}
    with database.session() as session:
        sent = session.get(OutboxMessage, a)
        assert sent is not None
        assert sent.twilio_sid == "SM123"
        assert sent.sent_at is not None


def test_a_stale_claim_is_taken_over_even_from_a_worker_that_beats(database: Database) -> None:
    with database.session() as session:
        item = enqueue(session, "sms", TEXTER, "a", now=NOW).id
    with database.session() as session:
        beat(session, "stuck-worker", NOW)
        assert len(claim_due(session, "stuck-worker", now=NOW + timedelta(seconds=1))) == 1

    with database.session() as session:
        too_soon = NOW + timedelta(minutes=4)
        beat(session, "stuck-worker", too_soon)
        assert claim_due(session, "w2", stale_after=timedelta(minutes=5), now=too_soon) == []
    with database.session() as session:
        late = NOW + timedelta(minutes=6)
        beat(session, "stuck-worker", late)
        taken = claim_due(session, "w2", stale_after=timedelta(minutes=5), now=late)

    assert [(m.id, m.claimed_by, m.attempts) for m in taken] == [(item, "w2", 2)]


def test_the_claims_of_a_worker_whose_heart_stopped_are_taken_over_in_seconds(
    database: Database,
) -> None:
    with database.session() as session:
        item = enqueue(session, "sms", TEXTER, "a", now=NOW).id
    with database.session() as session:
        beat(session, "killed", NOW)
        assert len(claim_due(session, "killed", now=NOW)) == 1
    alive_at = NOW + timedelta(seconds=14)
    with database.session() as session:
        assert claim_due(session, "w2", now=alive_at, dead_after=timedelta(seconds=15)) == []
    with database.session() as session:
        taken = claim_due(
            session, "w2", now=NOW + timedelta(seconds=16), dead_after=timedelta(seconds=15)
        )
    assert [(m.id, m.claimed_by, m.attempts) for m in taken] == [(item, "w2", 2)]


def test_two_identical_texts_to_one_number_are_never_sent_at_once(database: Database) -> None:
    """So that asking Twilio "did you take this text?" can only find one row's text."""
    with database.session() as session:
        first = enqueue(session, "sms", TEXTER, "numbers", now=NOW).id
        second = enqueue(session, "sms", TEXTER, "numbers", now=NOW).id
        other = enqueue(session, "sms", TEXTER, "other numbers", now=NOW).id
    with database.session() as session:
        beat(session, "w", NOW)
        claimed = claim_due(session, "w", now=NOW)
    assert sorted(m.id for m in claimed) == sorted([first, other])
    with database.session() as session:
        mark_sent(session, first, "SM1")
    with database.session() as session:
        assert [m.id for m in claim_due(session, "w2", now=NOW)] == [second]


def test_opted_out_numbers_get_no_texts(database: Database) -> None:
    with database.session() as session:
        queued_before = enqueue(session, "sms", TEXTER, "before", now=NOW).id
        call_before = enqueue(session, "call", TEXTER, "<Response/>", now=NOW).id
        set_opt_out(session, "804-555-0100", True, "STOP")
        queued_after = enqueue(session, "sms", TEXTER, "after", now=NOW).id
        assert is_opted_out(session, TEXTER, None)

    with database.session() as session:
        claimed = claim_due(session, "w", now=NOW + timedelta(days=1))

    assert [m.id for m in claimed] == [call_before]
    assert statuses(database)[queued_before] == "suppressed"
    assert statuses(database)[queued_after] == "suppressed"

    with database.session() as session:
        set_opt_out(session, TEXTER, False, "START")
        assert not is_opted_out(session, TEXTER, None)
        assert enqueue(session, "sms", TEXTER, "welcome back", now=NOW).status == "pending"


def test_an_opt_out_after_queuing_is_caught_at_claim_time(database: Database) -> None:
    with database.session() as session:
        item = enqueue(session, "sms", TEXTER, "numbers", now=NOW).id
    with database.session() as session:
        # Written directly, as if the opt-out raced the queuing.
        set_opt_out(session, TEXTER, True, "STOP")
        session.get(OutboxMessage, item).status = "pending"  # type: ignore[union-attr]

    with database.session() as session:
        assert claim_due(session, "w", now=NOW + timedelta(days=1)) == []
    assert statuses(database)[item] == "suppressed"


@pytest.mark.parametrize("start_spooled", [True, False], ids=["start-spooled", "stop-alone"])
def test_a_text_promised_after_a_start_the_database_lacks_yet_is_sent(
    database: Database, start_spooled: bool
) -> None:
    """A caller's STOP is in the database; the START they texted after it is still in another
    process's spool (a database outage has just ended); the text promised after both reaches
    the database first, through the spool. The START the database lacks yet must not cost the
    caller the text they were promised; without it, the STOP stands."""
    started_at, promised_at = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    with database.session() as session:
        set_opt_out(session, TEXTER, True, "STOP", at=NOW)
        promise = OutboxQueued(
            OutboxKind.SMS, TEXTER, "numbers", None, "voice-text:CA1:numbers", promised_at
        )
        write_outbox_records(session, [promise])
    start = OptOutChanged(TEXTER, False, "START", started_at)
    spooled = pending_changes([start] if start_spooled else [])
    with database.session() as session:
        claimed = claim_due(session, "w", now=promised_at, pending=lambda: spooled)

    assert [m.body for m in claimed] == (["numbers"] if start_spooled else [])
    assert list(statuses(database).values()) == ["sending" if start_spooled else "suppressed"]


def test_a_promise_written_after_a_stop_that_came_later_is_suppressed(database: Database) -> None:
    """The other way round: the STOP came after the promise and reached the database first."""
    with database.session() as session:
        set_opt_out(session, TEXTER, True, "STOP", at=NOW + timedelta(seconds=1))
        promise = OutboxQueued(OutboxKind.SMS, TEXTER, "numbers", None, "voice-text:CA2", NOW)
        write_outbox_records(session, [promise])
    assert list(statuses(database).values()) == ["suppressed"]


def test_concurrent_claimers_never_get_the_same_row(
    migrated_url: str, unlimited_outbound: None
) -> None:
    rows = 300
    setup = Database(migrated_url)
    try:
        with setup.session() as session:
            for number in range(rows):
                enqueue(session, "sms", f"+1804555{number:04d}", "hello")
    finally:
        setup.dispose()

    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        database = Database(migrated_url)
        try:
            start.wait()
            while True:
                with database.session() as session:
                    beat(session, name)  # as every worker does before it claims
                    batch = claim_due(session, name, limit=7)
                if not batch:
                    return
                with lock:
                    claimed.extend(m.id for m in batch)
                with database.session() as session:  # a worker ends its batch before the next
                    for message in batch:
                        mark_sent(session, message.id, f"SM{message.id:032d}")
        except BaseException as error:
            errors.append(error)
        finally:
            database.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    duplicates = [item for item, times in Counter(claimed).items() if times > 1]
    assert duplicates == []
    assert len(claimed) == rows
