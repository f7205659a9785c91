"""Reconciliation through Twilio's REST API (the real twilio client against a fake Calls
resource over HTTP): a call whose final status callback was lost is settled by what Twilio
says of it, or ends unknown when Twilio does not know it; never left in progress."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bench.harness import ACCOUNT_SID, AUTH_TOKEN
from service.calls.facts import CallStarted
from service.calls.reconcile import Reconciler
from service.calls.store import write_call_facts
from service.channels.sender import TwilioSender
from service.config import Settings
from service.db import Database
from service.models import Call, utcnow
from service.spool.spool import Spool
from service.stores import STORES
from tests.ops.fake_twilio import FakeTwilio, running_fake_twilio

CALLER = "+18045550123"
LINE = "+18045550199"
LOST = "CA" + "a1" * 16
UNKNOWN = "CA" + "b2" * 16


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


def sender_for(settings: Settings, fake: FakeTwilio) -> TwilioSender:
    account = {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN}
    return TwilioSender(settings.model_copy(update={"twilio_api_base": fake.base_url} | account))


def test_fetch_call_reads_twilios_calls_resource(settings: Settings, fake: FakeTwilio) -> None:
    fake.register_call(LOST, "no-answer", 0, CALLER, LINE)
    report = sender_for(settings, fake).fetch_call(LOST)
    assert report is not None
    assert (report.status, report.duration, report.caller, report.called) == (
        "no-answer", 0, CALLER, LINE,
    )  # fmt: skip
    assert report.ended_at is not None
    assert sender_for(settings, fake).fetch_call(UNKNOWN) is None  # Twilio answers 404


def test_calls_without_a_final_status_are_settled_by_what_twilio_says(
    database: Database, settings: Settings, fake: FakeTwilio
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    with database.session() as session:
        write_call_facts(
            session.connection(),
            [
                CallStarted(LOST, long_ago, CALLER, LINE),
                CallStarted(UNKNOWN, long_ago, CALLER, LINE),
            ],
            now=long_ago,
        )
    fake.register_call(LOST, "completed", 42, CALLER, LINE)
    spool = Spool(settings.spool_dir, lambda: database, stores=STORES)
    reconciler = Reconciler(
        sender_for(settings, fake), spool, after=timedelta(minutes=15), database=lambda: database
    )
    try:
        assert reconciler.run() == 2
        assert spool.drain(10)
    finally:
        spool.close()
    with database.session() as session:
        found = {c.call_sid: (c.status, c.outcome) for c in session.scalars(select(Call))}
    assert found[LOST][0] == "completed" and found[LOST][1] != "in-progress"
    assert found[UNKNOWN][1] == "unknown"
