"""The outbox sender inside `serve`: started by the app's lifespan unless disabled."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prometheus_client import REGISTRY
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.main import create_app
from service.models import OptOut, OutboxKind, OutboxMessage
from service.optouts.store import OptOutChanged
from service.outbound.outbox import enqueue
from service.spool.spool import Kept, Spool
from service.stores import STORES
from tests.sms.conftest import LINE, TEXTER, FakeTwilio
from tests.spool.test_spool import die


def run_app_for_a_moment(settings: Settings, until: object) -> None:
    app = create_app(settings)

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + 30  # a loaded machine: the first tick may be late
            while time.monotonic() < deadline and not until():  # type: ignore[operator]
                await asyncio.sleep(0.05)

    asyncio.run(serve())


def texts_sent_via_api() -> float:
    return REGISTRY.get_sample_value("phoneline_texts_sent_total", {"via": "api"}) or 0.0


def test_serve_sends_queued_texts_and_replays_a_spool_left_behind_at_start(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    # A process that took a STOP while the database was away, and then died.
    other = "+18045550124"
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/down")
    gone = Spool(settings.spool_dir, lambda: down, stores=STORES)
    assert (
        gone.submit([OptOutChanged(other, True, "STOP", datetime.now(UTC))], durable=True)
        is Kept.DISK
    )
    die(gone)
    down.dispose()
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "your numbers", from_number=LINE)
    before = texts_sent_via_api()
    serving = settings.model_copy(
        update={"run_worker_in_server": True, "twilio_api_base": fake_twilio.url}
    )

    def sent_marked() -> bool:
        with database.session() as session:
            return session.scalars(select(OutboxMessage.status)).all() == ["sent"]

    run_app_for_a_moment(serving, sent_marked)
    sent = [
        (r.path.rsplit("/", 1)[-1], r.form.get("To"), r.form.get("Body"))
        for r in fake_twilio.requests
    ]
    assert sent == [("Messages.json", TEXTER, "your numbers")]
    assert texts_sent_via_api() >= before + 1
    with database.session() as session:
        assert session.scalars(select(OutboxMessage.status)).all() == ["sent"]
        assert session.scalar(select(OptOut.opted_out).where(OptOut.phone == other)) is True


def test_serve_sends_nothing_when_its_worker_is_disabled(
    database: Database, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    with database.session() as session:
        enqueue(session, OutboxKind.SMS, TEXTER, "your numbers", from_number=LINE)
    quiet = settings.model_copy(update={"twilio_api_base": fake_twilio.url})
    assert quiet.run_worker_in_server is False
    started = time.monotonic()
    run_app_for_a_moment(quiet, lambda: time.monotonic() - started > 1)
    assert fake_twilio.requests == []
    with database.session() as session:
        assert session.scalars(select(OutboxMessage.status)).all() == ["pending"]
