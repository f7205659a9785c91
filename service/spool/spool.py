"""The spool: what the line has acknowledged is on local disk before (or as) the answer goes out,
and one thread per process writes it to the database in batches.

`Spool.submit(records)` appends one line to this process's segment (one `write`: in the page
cache at once, so a `kill -9` of the process loses nothing) and queues the records in memory.
The spool thread fsyncs the segment (so a machine that loses power loses at most the last
`linger` of records), waits `linger` for more to gather, and writes them in one transaction
together with the segment's checkpoint (the last seq written), so that a replay after a crash
writes exactly what is not there yet.

While the database is away nothing is dropped: the thread retries with a growing pause, the
records wait in memory (at most `max_in_memory` submissions; beyond that only on disk, read
back from the segment files when the database answers) and on disk (bounded by the disk).
Segments of processes that are gone (`kill -9`, a crash, a restart while the database was down)
are found by the periodic scan of every live process and replayed in order.

Opt-outs (and sent marks) go to a stream of their own (`durable`), fsync'd at once and removed
as soon as the database has them: every process on the machine reads the opt-outs pending there
before it sends (`pending_opt_outs`). If the disk will not take a record either, it is kept in
memory only, retried, and the spool is not `healthy` (/readyz answers 503) until the database
has it.

A record that the database refuses while it answers (a bug, not an outage) is moved to
`rejected/` beside the segments, logged and counted, so that it cannot stop the records after
it. `drain()` waits until what was submitted is written; `close()` drains and stops the thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from service.calls.facts import UNKNOWN_STATUS, StatusReported
from service.calls.store import (
    SETTLE_QUIET,
    calls_without_final_status,
    settle_calls,
    write_call_facts,
)
from service.db import DATABASE_ERRORS, Database, describe_error, get_database, is_transient
from service.metrics import (
    DB_ERRORS,
    SPOOL_DROPPED,
    SPOOL_PENDING,
    SPOOL_REJECTED,
    SPOOL_WRITE_ERRORS,
)
from service.models import utcnow
from service.spool.apply import (
    apply_records,
    forget_checkpoints,
    load_checkpoint,
    save_checkpoints,
)
from service.spool.codec import DecodeError, Record, decode, encode_payload
from service.spool.segments import Directory, Segment, read_lines
from service.texts.optouts import opt_out_key
from service.texts.records import OptOutChanged

log = logging.getLogger(__name__)

MAIN = "main"
DURABLE = "durable"
"""The stream of records that are fsync'd before `submit` returns (opt-outs, sent marks)."""
LINGER_SECONDS = 0.5
MAX_BATCH = 500
MAX_IN_MEMORY = 50_000
SEGMENT_BYTES = 4 * 1024 * 1024
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
SETTLE_EVERY_SECONDS = 5.0
ORPHANS_EVERY_SECONDS = 5.0
REJECTED_DIR = "rejected"
UNKNOWN_AFTER = timedelta(hours=4)
"""A call nothing was heard of for this long (and that Twilio could not be asked about) ends
as unknown."""

Periodic = Callable[[Session, datetime], None]
"""Work the spool thread does every few seconds once the database answers (settling calls,
the follow-up sweep), each in a transaction of its own."""


@dataclass(frozen=True, slots=True)
class Entry:
    segment: str | None
    """The segment holding it; None when the disk would not take it (memory only)."""
    seq: int
    records: Sequence[Record]


class _Stop(Exception):
    pass


class Spool:
    """This process's spool (see the module's text)."""

    def __init__(
        self,
        directory: Path,
        database: Callable[[], Database] = get_database,
        *,
        linger: float = LINGER_SECONDS,
        max_batch: int = MAX_BATCH,
        max_in_memory: int = MAX_IN_MEMORY,
        segment_bytes: int = SEGMENT_BYTES,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        settle_every: float = SETTLE_EVERY_SECONDS,
        settle_quiet: timedelta = SETTLE_QUIET,
        orphans_every: float = ORPHANS_EVERY_SECONDS,
        unknown_after: timedelta = UNKNOWN_AFTER,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        self.directory = Directory(directory)
        self._database = database
        self.linger = linger
        self.max_batch = max_batch
        self.max_in_memory = max_in_memory
        self.segment_bytes = segment_bytes
        self.retry_delays = tuple(retry_delays)
        self.settle_every = settle_every
        self.settle_quiet = settle_quiet
        self.orphans_every = orphans_every
        self.unknown_after = unknown_after
        self.periodic = tuple(periodic)

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._seq = 0
        self._active: dict[str, Segment] = {}
        self._sealed: list[Segment] = []
        """Own segments no longer appended to, not all written yet (oldest first)."""
        self._applied: dict[str, int] = {}
        """Own segment name -> last seq written to the database."""
        self._queue: deque[Entry] = deque()
        self._from_files = False
        """Submissions are on disk only (the queue overflowed): the thread reads them back."""
        self._offsets: dict[str, int] = {}
        """Own segment name -> bytes read back so far (while reading from files)."""
        self._submitted = 0
        self._written = 0
        self._orphan_backlog = 0
        self._stopping = False
        self._flush = False
        self._thread: threading.Thread | None = None
        self.unwritable_since: float | None = None
        """When the disk last refused a record (None: the last one was taken)."""
        self.database_down_since: float | None = None
        """When the database last refused a batch (None: the last batch was written)."""

    # -- what webhooks and the app call -----------------------------------------------------

    def submit(self, records: Sequence[Record], *, durable: bool = False) -> bool:
        """Keep these records (one webhook's, one text's) and have them written to the
        database soon. Never blocks on the database, never raises. Returns True once they are
        on local disk (`durable`: fsync'd too), False when the disk refused them and they are
        only in memory (or, with memory full as well, dropped and counted)."""
        if not records:
            return True
        stream = DURABLE if durable else MAIN
        payload = encode_payload(records)
        with self._lock:
            self._seq += 1
            seq = self._seq
            segment = self._append(stream, b"%d\t%s" % (seq, payload), seq)
            kept = True
            if segment is not None and self._from_files:
                pass  # read back from the file by the thread
            elif len(self._queue) < self.max_in_memory:
                self._queue.append(Entry(segment.name if segment else None, seq, records))
            elif segment is not None:
                self._read_back_from_files()
            else:
                kept = False
            if kept:
                self._submitted += 1
                if len(self._queue) == 1 or len(self._queue) >= self.max_batch or segment is None:
                    self._wake.notify()
        if not kept:
            SPOOL_DROPPED.inc()
            log.error("a record was dropped: the disk and the spool's memory are both full")
        if self._thread is None:
            self.start()
        return segment is not None

    def start(self) -> None:
        """Start the spool thread (it also starts with the first record)."""
        with self._lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="spool", daemon=True)
                self._thread.start()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is in the database; False after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            self._flush = True
            self._wake.notify()
            while self._written < target:
                if self._thread is None or not self._thread.is_alive():
                    return self._written >= target
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(min(remaining, 0.05))
                self._flush = True
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what waits (trying for at most `timeout` seconds), then stop the thread and let
        go of the segments. What the database did not take stays on disk for the next start (no
        waiting for a database that is away: it is on disk already)."""
        if self.database_down_since is None:
            self.drain(timeout)
        with self._lock:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            waiting = self._submitted - self._written
            memory_only = sum(1 for entry in self._queue if entry.segment is None)
            segments = [*self._active.values(), *self._sealed]
            self._active.clear()
            self._sealed.clear()
        done = [s for s in segments if self._applied.get(s.name, 0) >= s.last_seq]
        for segment in done:
            segment.remove()
        with contextlib.suppress(*DATABASE_ERRORS), self._database().session() as session:
            forget_checkpoints(session, (s.name for s in done))
        for segment in segments:
            segment.close()
        if waiting:
            log.error(
                "%d spooled record(s) were not written to the database before shutdown; "
                "they wait on disk for the next start%s",
                waiting,
                f" ({memory_only} held in memory only are lost)" if memory_only else "",
            )

    @property
    def pending(self) -> int:
        """Submissions not written to the database yet (this process's and orphans')."""
        return self._submitted - self._written + self._orphan_backlog

    @property
    def healthy(self) -> bool:
        """False while the disk refuses records, or records are held in memory only."""
        with self._lock:
            memory_only = any(entry.segment is None for entry in self._queue)
        return self.unwritable_since is None and not memory_only

    def pending_opt_outs(self) -> dict[str, bool]:
        """Number -> opted out, for every opt-out or opt-in on this machine that the database
        may not have yet (the `durable` stream of every process, and this process's memory)."""
        latest: dict[str, OptOutChanged] = {}

        def keep(record: Record) -> None:
            if isinstance(record, OptOutChanged):
                key = opt_out_key(record.phone)
                if key not in latest or latest[key].at <= record.at:
                    latest[key] = record

        for path in self.directory.segments(DURABLE):
            for _, line in read_lines(path):
                with contextlib.suppress(DecodeError):
                    for record in decode(line)[1]:
                        keep(record)
        with self._lock:
            held = [record for e in self._queue if e.segment is None for record in e.records]
        for record in held:
            keep(record)
        return {phone: record.opted_out for phone, record in latest.items()}

    # -- appending (under the lock) ------------------------------------------------------------

    def _append(self, stream: str, line: bytes, seq: int) -> Segment | None:
        segment = self._active.get(stream)
        if segment is not None and segment.size >= self.segment_bytes:
            self._seal(stream)
            segment = None
        try:
            if segment is None:
                segment = self.directory.create(stream)
                self._active[stream] = segment
                self._applied[segment.name] = 0
            segment.append(line + b"\n", seq)
            if stream == DURABLE:
                segment.sync()
        except OSError as error:
            SPOOL_WRITE_ERRORS.inc()
            if self.unwritable_since is None:
                self.unwritable_since = time.monotonic()
            log.error("the spool cannot write to %s: %s", self.directory.path, error)
            if segment is not None:
                self._seal(stream)  # nothing more goes after a line that may be unfinished
            return None
        self.unwritable_since = None
        return segment

    def _seal(self, stream: str) -> None:
        segment = self._active.pop(stream)
        if segment.lines:
            self._sealed.append(segment)
        else:
            segment.remove()
            self._applied.pop(segment.name, None)

    def _read_back_from_files(self) -> None:
        """The queue is full: keep only what is not on disk in memory; the thread reads the rest
        back from the segments."""
        if not self._from_files:
            log.warning(
                "%d records wait for the database: reading them back from disk from now on",
                len(self._queue),
            )
        kept = [entry for entry in self._queue if entry.segment is None]
        self._queue = deque(kept)
        self._from_files = True

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_periodic = time.monotonic()
        next_orphans = time.monotonic()
        failures = 0
        while True:
            try:
                with self._lock:
                    if self._stopping:
                        return
                    self._wait_for_work(min(next_periodic, next_orphans))
                self._sync()
                written = self._write_queue()
                if written and self._from_files:
                    written = self._write_from_files()
                if written:
                    failures = 0
                    self._retire()
                else:
                    delay = self.retry_delays[min(failures, len(self.retry_delays) - 1)]
                    failures += 1
                    self._pause(delay)
                now = time.monotonic()
                if written and now >= next_orphans:
                    self._replay_orphans()
                    next_orphans = now + self.orphans_every
                if written and now >= next_periodic:
                    self._run_periodic()
                    next_periodic = now + self.settle_every
                SPOOL_PENDING.set(self.pending)
            except _Stop:
                return
            except Exception:  # a bug here must not stop the recording of everything after
                log.exception("the spool thread failed; it goes on")
                self._pause(1.0)
            finally:
                with self._lock:
                    self._wake.notify_all()

    def _wait_for_work(self, until: float) -> None:
        """(Lock held.) Until there is something to write and it had `linger` to gather, or
        periodic work is due."""
        while not self._queue and not self._from_files and not self._stopping:
            remaining = until - time.monotonic()
            if remaining <= 0 or self._flush:
                break
            self._wake.wait(remaining)
        if self._queue and not self._flush and len(self._queue) < self.max_batch:
            self._wake.wait(self.linger)
        self._flush = False

    def _pause(self, seconds: float) -> None:
        with self._lock:
            if not self._stopping:
                self._wake.wait(seconds)
            if self._stopping and self._written >= self._submitted:
                raise _Stop

    def _sync(self) -> None:
        """fsync what was appended since the last time (outside the lock: appends go on)."""
        with self._lock:
            segments = [*self._active.values(), *self._sealed]
        for segment in segments:
            try:
                segment.sync()
            except OSError as error:
                SPOOL_WRITE_ERRORS.inc()
                log.error("the spool cannot fsync %s: %s", segment.name, error)

    def _write_queue(self) -> bool:
        """Write what waits in memory, a batch at a time; False when the database refused.

        After the first batch, only full batches (a backlog) are written at once: the few
        records that came in while a batch was written wait `linger` for more. Chasing them
        wrote a tail of tiny transactions after every batch (on PostgreSQL, whose round trips
        let more arrive meanwhile, three times as many as on SQLite: 3 ms of fixed work
        each, which had made its CPU per webhook 2.3 times the minimal app's)."""
        first = True
        while True:
            with self._lock:
                if not first and len(self._queue) < self.max_batch:
                    return True
                batch = [self._queue[i] for i in range(min(self.max_batch, len(self._queue)))]
            first = False
            if not batch:
                return True
            done = self._write(batch)
            with self._lock:
                for entry in batch[:done]:
                    if entry.segment is not None:
                        self._applied[entry.segment] = max(
                            entry.seq, self._applied.get(entry.segment, 0)
                        )
                    # The queue may have been cut to what is not on disk meanwhile.
                    if self._queue and self._queue[0] is entry:
                        self._queue.popleft()
                self._written += done
                self._wake.notify_all()
            if done < len(batch):
                return False

    def _write_from_files(self) -> bool:
        """Read this process's segments back from disk and write what is not written yet."""
        while True:
            with self._lock:
                segments = [*self._sealed, *self._active.values()]
                caught_up = all(self._offsets.get(s.name, 0) >= s.size for s in segments)
                if caught_up:
                    self._from_files = False
                    self._offsets.clear()
                    return True
            for segment in segments:
                start = self._offsets.get(segment.name, 0)
                applied = self._applied.get(segment.name, 0)
                written, offset, count, last = self._write_lines(segment, start, applied)
                with self._lock:
                    self._offsets[segment.name] = offset
                    self._applied[segment.name] = max(last, self._applied.get(segment.name, 0))
                    self._written += count
                    self._wake.notify_all()
                if not written:
                    return False

    def _write_lines(
        self, segment: Segment, start: int, applied: int
    ) -> tuple[bool, int, int, int]:
        """Write the lines of a segment from byte `start` whose seq is past `applied`, a batch
        at a time. Returns (all written, the offset reached, how many were written, the last
        seq written)."""
        batch: list[Entry] = []
        offsets: list[int] = []
        offset = start
        count = 0
        last = applied
        for end, line in read_lines(segment.path, start):
            try:
                seq, records = decode(line)
            except DecodeError as error:
                self._reject(segment.name, line, error)
                seq, records = None, []
            if seq is None or seq <= applied:
                if not batch:
                    offset = end
                continue
            batch.append(Entry(segment.name, seq, records))
            offsets.append(end)
            if len(batch) >= self.max_batch:
                done = self._write(batch)
                if done:
                    offset, last = offsets[done - 1], batch[done - 1].seq
                count += done
                if done < len(batch):
                    return False, offset, count, last
                batch, offsets = [], []
        if batch:
            done = self._write(batch)
            if done:
                offset, last = offsets[done - 1], batch[done - 1].seq
            count += done
            if done < len(batch):
                return False, offset, count, last
        return True, offset, count, last

    def _write(self, entries: list[Entry]) -> int:
        """Write entries in one transaction with their checkpoints; how many of the first ones
        are now in the database (or rejected). A database that is away writes none; a record
        the database refuses while it answers is found by halving and rejected."""
        try:
            self._transaction(entries)
        except Exception as error:
            if is_transient(error):
                DB_ERRORS.labels(operation="spool").inc()
                if self.database_down_since is None:
                    self.database_down_since = time.monotonic()
                    log.warning(
                        "the database is not taking spooled records (they wait): %s",
                        describe_error(error),
                    )
                return 0
            if len(entries) > 1:
                half = len(entries) // 2
                done = self._write(entries[:half])
                return done if done < half else half + self._write(entries[half:])
            if not self._database().is_ready():
                return 0
            self._reject(entries[0].segment, None, error, entries[0])
            return 1
        if self.database_down_since is not None:
            waited = time.monotonic() - self.database_down_since
            log.info("the database takes spooled records again (after %.1f s)", waited)
            self.database_down_since = None
        return len(entries)

    def _transaction(self, entries: list[Entry]) -> None:
        now = utcnow()
        checkpoints: dict[str, int] = {}
        for entry in entries:
            if entry.segment is not None:
                checkpoints[entry.segment] = max(entry.seq, checkpoints.get(entry.segment, 0))
        with self._database().session() as session:
            applied = apply_records(
                session, [record for entry in entries for record in entry.records], now=now
            )
            save_checkpoints(session, checkpoints, now)
        applied.count()

    def _reject(
        self,
        segment: str | None,
        line: bytes | None,
        error: BaseException,
        entry: Entry | None = None,
    ) -> None:
        """Keep a record the database will not take (or a line that does not decode) aside,
        so that it stops nothing after it; past its seq, its segment's checkpoint moves on."""
        SPOOL_REJECTED.inc()
        log.error(
            "a spooled record was rejected and kept in %s/: %s",
            REJECTED_DIR,
            describe_error(error),
        )
        if line is None and entry is not None:
            line = b"%d\t%s" % (entry.seq, encode_payload(entry.records))
        rejected = self.directory.path / REJECTED_DIR
        with contextlib.suppress(OSError):
            rejected.mkdir(parents=True, exist_ok=True)
            note = json.dumps({"segment": segment, "error": describe_error(error)})
            with open(rejected / f"{segment or 'memory'}.rejected", "ab") as file:
                file.write(note.encode() + b"\n" + (line or b"").rstrip(b"\n") + b"\n")
        if entry is not None and entry.segment is not None:
            with contextlib.suppress(*DATABASE_ERRORS), self._database().session() as session:
                save_checkpoints(session, {entry.segment: entry.seq}, utcnow())

    def _retire(self) -> None:
        """Remove own segments that are written to the end: sealed ones, and the opt-out
        stream's at once (so that what is pending there is only what the database lacks)."""
        with self._lock:
            if self._from_files:
                return
            done: list[Segment] = []
            for segment in list(self._sealed):
                if self._applied.get(segment.name, 0) >= segment.last_seq:
                    self._sealed.remove(segment)
                    done.append(segment)
            durable = self._active.get(DURABLE)
            if durable is not None and self._applied.get(durable.name, 0) >= durable.last_seq:
                del self._active[DURABLE]
                done.append(durable)
            for segment in done:
                segment.remove()
                self._applied.pop(segment.name, None)
        if done:
            with contextlib.suppress(*DATABASE_ERRORS), self._database().session() as session:
                forget_checkpoints(session, (segment.name for segment in done))

    def _replay_orphans(self) -> None:
        """Replay the segments of processes that are gone, oldest first, then remove them."""
        with self._lock:
            own = {s.name for s in (*self._active.values(), *self._sealed)}
        for segment in self.directory.take_orphans(own):
            try:
                try:
                    with self._database().session(read_only=True) as session:
                        applied = load_checkpoint(session, segment.name)
                except DATABASE_ERRORS:
                    return
                self._orphan_backlog = sum(1 for _ in read_lines(segment.path))
                written, _, count, _ = self._write_lines(segment, 0, applied)
                self._orphan_backlog = 0
                if not written:
                    return
                segment.remove()
                with contextlib.suppress(*DATABASE_ERRORS), self._database().session() as s:
                    forget_checkpoints(s, [segment.name])
                log.info("replayed %d record(s) left by a process that is gone", count)
            finally:
                segment.close()

    def _run_periodic(self) -> None:
        """Settle quiet calls (and count them), then the other periodic work, each in its own
        transaction. Not while records wait here: their calls are not quiet yet."""
        if self.pending:
            return
        now = utcnow()
        try:
            with self._database().session() as session:
                connection = session.connection()
                # Calls nobody (Twilio included) said anything of for hours: unknown, so that
                # no call stays "in progress" for ever.
                forgotten = calls_without_final_status(
                    connection,
                    quiet_since=now - self.unknown_after,
                    checked_before=now - self.unknown_after,
                    limit=500,
                )
                facts = [StatusReported(sid, now, UNKNOWN_STATUS) for sid in forgotten]
                write_call_facts(connection, facts, now=now)
            with self._database().session() as session:
                settled = settle_calls(session.connection(), now, quiet=self.settle_quiet)
        except DATABASE_ERRORS as error:
            log.warning("settling calls failed: %s", describe_error(error))
            return
        settled.count()
        for work in self.periodic:
            try:
                with self._database().session() as session:
                    work(session, now)
            except DATABASE_ERRORS as error:
                log.warning("periodic work failed: %s", describe_error(error))

