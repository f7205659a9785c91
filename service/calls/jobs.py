"""The calls' periodic work, run by the spool thread (`Spool(periodic=...)`) once what it holds
is written: settle quiet calls (and count them), and end as unknown the calls nothing was heard
of for hours."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.calls.facts import UNKNOWN_STATUS, StatusReported
from service.calls.store import (
    SETTLE_QUIET,
    calls_without_final_status,
    settle_calls,
    write_call_facts,
)
from service.spool.spool import Periodic
from service.spool.stores import AfterCommit

UNKNOWN_AFTER = timedelta(hours=4)
"""A call nothing was heard of for this long (and that Twilio could not be asked about) ends
as unknown."""


def settle_quiet_calls(quiet: timedelta = SETTLE_QUIET) -> Periodic:
    """Mark ended calls that have been quiet for `quiet` as settled; count them once that is
    committed (phoneline_calls_total, phoneline_transfers_total)."""

    def settle(session: Session, now: datetime) -> AfterCommit | None:
        return settle_calls(session.connection(), now, quiet=quiet).count

    return settle


def end_forgotten_calls(after: timedelta = UNKNOWN_AFTER) -> Periodic:
    """Calls nobody (Twilio included) said anything of for `after`: unknown, so that no call
    stays "in progress" for ever."""

    def end(session: Session, now: datetime) -> AfterCommit | None:
        connection = session.connection()
        forgotten = calls_without_final_status(
            connection, quiet_since=now - after, checked_before=now - after, limit=500
        )
        facts = [StatusReported(sid, now, UNKNOWN_STATUS) for sid in forgotten]
        write_call_facts(connection, facts, now=now)
        return None

    return end
