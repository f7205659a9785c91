"""Calls whose final status callback was lost (or never sent) are settled by what Twilio's
Calls resource says of them: its final status, or unknown when it does not know the call, so
that no call stays "in progress". A chore of the outbox worker's loop (it talks to Twilio's
REST API, never from the spool's thread), wired in by the composition root."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from service.calls.facts import CALL_STATUS_RANK, FINAL_CALL_RANK, UNKNOWN_STATUS, StatusReported
from service.calls.store import calls_without_final_status
from service.channels.sender import Sender, SendError, TwilioSender, credentials_configured
from service.chores import Chore
from service.config import Settings
from service.db import DATABASE_ERRORS, Database, describe_error, get_database
from service.models import utcnow
from service.spool.spool import Spool

log = logging.getLogger(__name__)

RECONCILE_EVERY_SECONDS = 60.0


class Reconciler:
    """Asks Twilio about calls quiet for `after` with no final status (`run`)."""

    def __init__(
        self,
        sender: Sender,
        spool: Spool,
        *,
        after: timedelta,
        database: Callable[[], Database] = get_database,
    ) -> None:
        self.sender = sender
        self.spool = spool
        self.after = after
        self._database = database

    def run(self) -> int:
        """Settle what Twilio says of the calls without a final status; how many it asked."""
        now = utcnow()
        try:
            with self._database().session() as session:
                sids = calls_without_final_status(
                    session.connection(),
                    quiet_since=now - self.after,
                    checked_before=now - self.after,
                )
        except DATABASE_ERRORS as error:
            log.warning("reconciling calls failed: %s", describe_error(error))
            return 0
        facts: list[StatusReported] = []
        for sid in sids:
            try:
                call = self.sender.fetch_call(sid)
            except SendError as error:
                log.warning("could not ask Twilio about a call: %s", error)
                continue
            if call is None:
                facts.append(StatusReported(sid, now, UNKNOWN_STATUS))
            elif CALL_STATUS_RANK.get(call.status) == FINAL_CALL_RANK:
                at = call.ended_at or now
                facts.append(
                    StatusReported(sid, at, call.status, call.duration, call.caller, call.called)
                )
        self.spool.submit(facts)
        if sids:
            log.info("asked Twilio about %d call(s) without a final status", len(sids))
        return len(sids)


def call_reconciler(settings: Settings, spool: Spool) -> Chore | None:
    """The worker's chore of reconciling calls, for these settings (None without Twilio's
    credentials)."""
    if not credentials_configured(settings):
        return None
    after = timedelta(seconds=settings.call_reconcile_seconds)
    reconciler = Reconciler(TwilioSender(settings), spool, after=after)
    return Chore(reconciler.run, min(RECONCILE_EVERY_SECONDS, settings.call_reconcile_seconds / 2))
