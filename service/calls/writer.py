"""Recording calls in the background: one writer thread per process, in batches.

A voice webhook hands the facts of its turn to `CallWriter.submit()` (a queue append, no
database) and answers the caller at once. The writer thread takes what is queued, waits
`linger` seconds for more (less once `max_batch` webhooks wait), and writes it all in one
transaction (`write_call_facts`: a handful of statements however many webhooks the batch
holds). Under load a batch holds hundreds of webhooks, so recording costs each one a small share
of a few statements instead of transactions of its own; at rest a record reaches the database
within `linger`.

Failures never reach a caller. A batch that fails is retried after `retry_delays`; a batch that
still fails is written one webhook at a time, and what still fails is dropped, logged (without
numbers) and counted in `phoneline_db_errors_total`. While the database is away the queue holds
at most `max_pending` webhooks; beyond that new ones are dropped and counted, so a database
outage never grows the process without bound. `drain()` waits until everything submitted so
far is written (shutdown, tests); `close()` drains and stops the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from queue import Empty, SimpleQueue

from service.calls.facts import CallFact
from service.calls.store import SETTLE_QUIET, settle_calls, write_call_facts
from service.db import Database, get_database
from service.metrics import CALL_RECORDS_PENDING, DB_ERRORS
from service.models import utcnow
from service.recording import DATABASE_ERRORS, count_settled, describe_error

log = logging.getLogger(__name__)

LINGER_SECONDS = 0.5
MAX_BATCH = 500
MAX_PENDING = 20_000
RETRY_DELAYS = (0.2, 1.0, 3.0)
SETTLE_EVERY_SECONDS = 5.0

Submission = Sequence[CallFact]


class _Stop:
    """Queued by `close()`: write what came before, then end the thread."""


class CallWriter:
    """The process's background writer of call facts (see the module's text)."""

    def __init__(
        self,
        database: Callable[[], Database] = get_database,
        *,
        linger: float = LINGER_SECONDS,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        settle_every: float = SETTLE_EVERY_SECONDS,
        settle_quiet: timedelta = SETTLE_QUIET,
    ) -> None:
        self._database = database
        self.linger = linger
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.retry_delays = tuple(retry_delays)
        self.settle_every = settle_every
        self.settle_quiet = settle_quiet
        self._queue: SimpleQueue[Submission | threading.Event | _Stop] = SimpleQueue()
        self._flush_now = threading.Event()
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- what webhooks and the app call -----------------------------------------------------

    def submit(self, facts: Submission) -> None:
        """Queue one webhook's facts to be written soon. Never blocks, never raises."""
        if not facts:
            return
        if self._queue.qsize() >= self.max_pending:
            DB_ERRORS.labels(operation="call_record_dropped").inc()
            log.warning("a call record was dropped: %d records already wait", self.max_pending)
            return
        self._queue.put(facts)
        if self._thread is None:
            self._start()
        elif self._queue.qsize() >= self.max_batch:
            self._flush_now.set()  # a full batch is waiting: no need to linger

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted before this call is written or given up on; returns
        False if that took longer than `timeout` seconds."""
        if self._thread is None or not self._thread.is_alive():
            return True
        written = threading.Event()
        self._queue.put(written)
        self._flush_now.set()
        return written.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (waiting at most `timeout` seconds), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._queue.put(_Stop())
        self._flush_now.set()
        thread.join(timeout)
        if thread.is_alive():
            log.error("call records were still being written after %.0f s at shutdown", timeout)

    # -- the thread -------------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="call-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        next_settle = time.monotonic() + self.settle_every
        while True:
            try:
                first = self._queue.get(timeout=max(0.0, next_settle - time.monotonic()))
            except Empty:
                self._settle()
                next_settle = time.monotonic() + self.settle_every
                continue
            if not isinstance(first, threading.Event | _Stop):
                # Let a batch gather, unless someone waits for it (drain, close).
                self._flush_now.wait(self.linger)
            self._flush_now.clear()
            submissions, waiting, stop = self._collect(first)
            try:
                CALL_RECORDS_PENDING.set(self._queue.qsize() + len(submissions))
                if submissions:
                    self._write(submissions)
                CALL_RECORDS_PENDING.set(self._queue.qsize())
            except Exception:  # a bug here must not stop the recording of every later call
                log.exception("the call writer failed on a batch; it goes on")
            finally:
                for event in waiting:
                    event.set()
            if stop:
                return

    def _collect(
        self, first: Submission | threading.Event | _Stop
    ) -> tuple[list[Submission], list[threading.Event], bool]:
        submissions: list[Submission] = []
        waiting: list[threading.Event] = []
        stop = False
        item: Submission | threading.Event | _Stop = first
        while True:
            if isinstance(item, threading.Event):
                waiting.append(item)
            elif isinstance(item, _Stop):
                stop = True
            else:
                submissions.append(item)
            if len(submissions) >= self.max_batch:
                break
            try:
                item = self._queue.get_nowait()
            except Empty:
                break
        return submissions, waiting, stop

    def _write(self, submissions: list[Submission]) -> None:
        facts = [fact for submission in submissions for fact in submission]
        for delay in (*self.retry_delays, None):
            if self._try_write(facts):
                return
            if delay is None or self._stopping.wait(delay):
                break
        if len(submissions) > 1:
            # Perhaps one webhook's facts cannot be written: save the others.
            submissions = [one for one in submissions if not self._try_write(one)]
        if submissions:
            DB_ERRORS.labels(operation="call_record_dropped").inc(len(submissions))
            log.error("%d call records could not be written and were dropped", len(submissions))

    def _settle(self) -> None:
        """Count the calls that ended and have been quiet since (see `settle_calls`)."""
        try:
            with self._database().session() as session:
                settled = settle_calls(session.connection(), utcnow(), quiet=self.settle_quiet)
        except DATABASE_ERRORS as error:
            log.warning("settling calls failed: %s", describe_error(error))
            return
        except Exception:  # a bug must not end the thread that records every call
            log.exception("settling calls failed")
            return
        count_settled(settled)

    def _try_write(self, facts: Sequence[CallFact]) -> bool:
        try:
            with self._database().session() as session:
                write_call_facts(session.connection(), facts)
        except DATABASE_ERRORS as error:
            DB_ERRORS.labels(operation="call_record").inc()
            log.warning("writing call records failed: %s", describe_error(error))
            return False
        except Exception:  # a bug must not end the thread that records every call
            DB_ERRORS.labels(operation="call_record").inc()
            log.exception("writing call records failed")
            return False
        return True
