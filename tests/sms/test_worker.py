"""The outbox worker against a fake Twilio REST API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from service import migrate
from service.channels.sender import TwilioSender
from service.config import Settings
from service.db import Database
from service.flowengine.segments import count_segments
from service.models import Message, OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.outbound.outbox import enqueue
from service.outbound.worker import Worker, backoff
from service.spool.spool import Spool
from service.stores import STORES
from tests.recorder import Recorder
from tests.sms.conftest import ACCOUNT_SID, LINE, SID_PATTERN, TEXTER, FakeTwilio, make_settings

CLIENT_TIMEOUT = 0.5


def worker_for(
    database: Database, settings: Settings, fake: FakeTwilio, **kwargs: object
) -> Worker:
    settings = settings.model_copy(
        update={"twilio_api_base": fake.url, "public_base_url": "https://line.example.org"}
    )
    options: dict[str, object] = {"first_retry": timedelta(0)} | kwargs
    spool = Spool(settings.spool_dir, lambda: database, stores=STORES)
    worker = Worker(
        TwilioSender(settings, timeout=CLIENT_TIMEOUT),
        settings,
        spool,
        database=database,
        **options,  # type: ignore[arg-type]
    )
    SPOOLS.append(spool)
    return worker


SPOOLS: list[Spool] = []
"""The workers' spools the tests made, closed after each test (`close_workers` in conftest)."""


def queue_text(
    database: Database, body: str = "Coordinator: (804) 828-7999", to: str = TEXTER
) -> int:
    with database.session() as session:
        return enqueue(session, OutboxKind.SMS, to, body, from_number=LINE).id


def row(database: Database, message_id: int) -> OutboxMessage:
    with database.session() as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        return found


def test_a_text_is_sent_through_the_rest_api(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    message_id = queue_text(database)
    report = worker_for(database, settings, fake_twilio).run_once()
    assert report.sent == 1
    [request] = fake_twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": TEXTER,
        "From": LINE,
        "Body": "Coordinator: (804) 828-7999",
        # The row's id: the status callback marks this row, whatever else went to the number.
        "StatusCallback": f"https://line.example.org/twilio/sms/status?outbox={message_id}",
    }
    assert request.authorization.startswith("Basic ")
    sent = row(database, message_id)
    assert sent.status == "sent"
    assert sent.twilio_sid is not None and SID_PATTERN.match(sent.twilio_sid)
    with database.session() as session:
        recorded = session.scalars(select(Message).where(Message.message_sid == sent.twilio_sid))
        assert [(m.direction, m.phone, m.body) for m in recorded] == [
            ("out", TEXTER, "Coordinator: (804) 828-7999")
        ]
    # Sent is sent: nothing more goes out.
    assert worker_for(database, settings, fake_twilio).run_once().handled == 0
    assert len(fake_twilio.requests) == 1


def test_a_500_is_retried_then_succeeds(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.script = [500]
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio)
    assert worker.run_once().retried == 1
    waiting = row(database, message_id)
    assert waiting.status == "pending"
    assert waiting.last_error is not None and "500" in waiting.last_error
    assert worker.run_once().sent == 1
    assert row(database, message_id).status == "sent"
    assert row(database, message_id).attempts == 2
    assert len(fake_twilio.texts()) == 2


def test_a_429_is_retried_after_a_backoff(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.script = [429]
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio, first_retry=timedelta(seconds=30))
    before = utcnow()
    assert worker.run_once().retried == 1
    waiting = row(database, message_id)
    assert waiting.next_attempt_at >= before + timedelta(seconds=30)
    assert worker.run_once().handled == 0  # not due yet
    assert len(fake_twilio.requests) == 1


def test_a_timeout_is_retried(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.script = [("sleep", CLIENT_TIMEOUT * 4)]
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio)
    report = worker.run_once()
    assert report.retried == 1
    assert row(database, message_id).last_error == "timed out: ReadTimeout"
    assert worker.run_once().sent == 1
    assert row(database, message_id).status == "sent"


def test_a_connection_refused_is_retried(database: Database, settings: Settings) -> None:
    dead = FakeTwilio()  # never started: its port refuses connections
    dead.server.server_close()
    message_id = queue_text(database)
    assert worker_for(database, settings, dead).run_once().retried == 1
    assert "connection failed" in (row(database, message_id).last_error or "")


def test_a_permanent_400_fails_at_once_with_the_error_kept(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.script = [400]
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio)
    assert worker.run_once().failed == 1
    failed = row(database, message_id)
    assert failed.status == "failed"
    assert failed.last_error == "Twilio 400 (code 21211): Unable to create record: fake error 400"
    assert worker.run_once().handled == 0
    assert len(fake_twilio.requests) == 1


def test_it_gives_up_after_the_bound(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.script = [503, 503, 503, 503]
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio, max_attempts=3)
    reports = [worker.run_once() for _ in range(4)]
    assert [r.retried for r in reports] == [1, 1, 0, 0]
    assert reports[2].failed == 1
    failed = row(database, message_id)
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.startswith("gave up after 3")
    assert len(fake_twilio.requests) == 3


def test_backoff_doubles_up_to_a_cap() -> None:
    first = timedelta(seconds=30)
    assert [backoff(n, first) for n in (1, 2, 3)] == [first, first * 2, first * 4]
    assert backoff(20, first) == timedelta(hours=1)


def test_an_opted_out_number_is_never_sent_to(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    queued_before = queue_text(database)
    Recorder(database).opt_out(TEXTER, True, "STOP")
    queued_after = queue_text(database, "later")
    # An opt-out stored without touching the queue (another process's race) is caught too.
    with database.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == queued_before)
            .values(status=OutboxStatus.PENDING.value)
        )
    report = worker_for(database, settings, fake_twilio).run_once()
    assert report.sent == 0
    assert fake_twilio.requests == []
    assert row(database, queued_before).status == "suppressed"
    assert row(database, queued_after).status == "suppressed"


def test_a_stale_claim_is_reclaimed_but_a_sent_row_never(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    stuck, done = queue_text(database, "stuck"), queue_text(database, "done")
    long_ago = utcnow() - timedelta(hours=1)
    with database.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == stuck)
            .values(status="sending", claimed_at=long_ago, claimed_by="dead-worker", attempts=1)
        )
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == done)
            .values(status="sent", claimed_at=long_ago, twilio_sid="SM" + "1" * 32)
        )
    assert worker_for(database, settings, fake_twilio).run_once().sent == 1
    assert [r.form["Body"] for r in fake_twilio.requests] == ["stuck"]


def test_a_row_left_unfinished_when_the_database_refused_is_sent_on_the_next_tick(
    database: Database,
    settings: Settings,
    fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim is stored, then the database goes away before the opt-out check: the row
    stays `sending` under this worker, whose heartbeat keeps every other worker off it. It
    must not wait `stale_after` (minutes) for its own worker to take it again."""
    message_id = queue_text(database)
    worker = worker_for(database, settings, fake_twilio, stale_after=timedelta(hours=1))
    check = worker._opted_out
    refusals = iter([OperationalError("SELECT opt_outs", None, Exception("server closed"))])

    def refused_once(row: OutboxMessage) -> bool:
        for refusal in refusals:
            raise refusal
        return check(row)

    monkeypatch.setattr(worker, "_opted_out", refused_once)
    assert worker.run_once().sent == 0
    assert row(database, message_id).status == "sending"
    other = worker_for(database, settings, fake_twilio, stale_after=timedelta(hours=1))
    assert other.run_once().handled == 0  # a live worker's fresh claim is its own
    assert fake_twilio.requests == []

    assert worker.run_once().sent == 1
    assert [r.form["Body"] for r in fake_twilio.requests] == ["Coordinator: (804) 828-7999"]
    assert row(database, message_id).status == "sent"


def test_a_call_back_is_placed_with_its_twiml(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    twiml = "<Response><Dial><Number>+18048287999</Number></Dial></Response>"
    with database.session() as session:
        call_id = enqueue(session, OutboxKind.CALL, TEXTER, twiml, from_number=LINE).id
    assert worker_for(database, settings, fake_twilio).run_once().sent == 1
    [request] = fake_twilio.calls()
    assert request.form == {
        "To": TEXTER,
        "From": LINE,
        "Twiml": twiml,
        # Twilio says how the call ended, and the URL names this row.
        "StatusCallback": f"https://line.example.org/twilio/call-back/status?outbox={call_id}",
    }
    assert (row(database, call_id).twilio_sid or "").startswith("CA")


def test_without_a_from_number_a_text_goes_from_the_configured_one(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "hello")
    configured = settings.model_copy(update={"twilio_from_number": "+18045550100"})
    assert worker_for(database, configured, fake_twilio).run_once().sent == 1
    assert fake_twilio.requests[0].form["From"] == "+18045550100"
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "hello again")
    service = settings.model_copy(update={"twilio_messaging_service_sid": "MG" + "2" * 32})
    assert worker_for(database, service, fake_twilio).run_once().sent == 1
    assert fake_twilio.requests[1].form["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in fake_twilio.requests[1].form


def test_a_long_text_goes_out_as_texts_of_at_most_3_segments_in_ucs_2(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    lines = [
        f"Línea {i}: (804) 828-7999, pida el Directorio de Especialistas Médicos" for i in range(8)
    ]
    body = "\n".join(lines)
    assert count_segments(body) > 3  # UCS-2: 67 characters a segment
    message_id = queue_text(database, body)
    worker = worker_for(database, settings, fake_twilio)
    while worker.run_once().handled:
        pass
    sent = [r.form["Body"] for r in fake_twilio.texts()]
    assert len(sent) >= 2
    assert all(count_segments(text) <= 3 for text in sent)  # the line's limit for UCS-2
    assert "\n".join(sent) == body  # every line, in order, nothing twice
    with database.session() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert rows[0].id == message_id
    assert {r.status for r in rows} == {"sent"}
    assert len(rows) == len(sent)


@pytest.mark.postgres
def test_two_workers_racing_on_postgres_send_each_row_once(
    postgres_schema_url: str, tmp_path: Path, fake_twilio: FakeTwilio, unlimited_outbound: None
) -> None:
    migrate.upgrade(postgres_schema_url)
    databases = [Database(postgres_schema_url) for _ in range(3)]
    try:
        bodies = [f"text {i}" for i in range(40)]
        with databases[0].session() as session:
            for body in bodies:
                enqueue(session, OutboxKind.SMS, TEXTER, body, from_number=LINE)
        settings = make_settings(postgres_schema_url, tmp_path / "var")
        start = threading.Barrier(2)

        def work(database: Database, name: str) -> None:
            worker = worker_for(database, settings, fake_twilio, worker_id=name, batch_size=3)
            start.wait()
            while worker.run_once().handled:
                pass

        threads = [
            threading.Thread(target=work, args=(databases[i + 1], f"worker-{i}")) for i in (0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        sent = sorted(r.form["Body"] for r in fake_twilio.texts())
        assert sent == sorted(bodies)
        with databases[0].session() as session:
            rows = session.scalars(select(OutboxMessage)).all()
            assert {r.status for r in rows} == {"sent"}
            assert {r.claimed_by for r in rows} == {"worker-0", "worker-1"}
    finally:
        for database in databases:
            database.dispose()


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_sends_and_failures_are_counted_and_logged_without_numbers_or_bodies(
    database: Database,
    settings: Settings,
    fake_twilio: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = sample("phoneline_texts_sent_total", {"via": "api"})
    retrying = sample("phoneline_texts_failed_total", {"final": "false"})
    given_up = sample("phoneline_texts_failed_total", {"final": "true"})
    fake_twilio.script = [500, "ok", 400]
    for body in ("first secret", "second secret"):
        queue_text(database, body)
    worker = worker_for(database, settings, fake_twilio)
    # INFO is the app's level (at DEBUG, urllib3 logs request URLs, a list query's number too).
    with caplog.at_level(logging.INFO):
        while worker.run_once().handled:
            pass
    assert sample("phoneline_texts_sent_total", {"via": "api"}) == sent + 1
    assert sample("phoneline_texts_failed_total", {"final": "false"}) == retrying + 1
    assert sample("phoneline_texts_failed_total", {"final": "true"}) == given_up + 1
    assert "outbox 1" in caplog.text
    assert "secret" not in caplog.text
    assert TEXTER not in caplog.text
    assert "5550123" not in caplog.text


def test_an_unexpected_error_on_one_row_retries_that_row_and_sends_the_rest(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    first = queue_text(database, "first")
    second = queue_text(database, "second", to="+18045550124")
    worker = worker_for(database, settings, fake_twilio)
    send = worker.sender.send_sms
    broken = [True]

    def send_sms(to: str, *args: object) -> str:
        if broken.pop() if broken else False:
            raise OSError(9, "Bad file descriptor")  # what a socket closed under it raised
        return send(to, *args)  # type: ignore[arg-type]

    worker.sender.send_sms = send_sms  # type: ignore[method-assign]
    report = worker.run_once()
    assert (report.retried, report.sent) == (1, 1)
    waiting = row(database, first)
    assert (waiting.status, waiting.last_error) == ("pending", "unexpected: OSError")
    assert row(database, second).status == "sent"
    assert worker.run_once().sent == 1  # asked Twilio first (it had not got it), then sent
    assert row(database, first).status == "sent"
    assert [r.form["Body"] for r in fake_twilio.texts()] == ["second", "first"]
