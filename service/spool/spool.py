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
as soon as the database has them: every process on the machine reads the records pending there
before it replies or sends (`pending_records`). If neither the disk nor the database takes such
a record, it is kept in memory only, retried, and the spool is not `healthy` (/readyz answers
503) until the database has it.

When the disk will not take records but the database answers, `submit` writes them to the
database at once instead (`Kept.DATABASE`); when neither takes them it says so (`Kept.MEMORY`,
`Kept.DROPPED`), and the caller makes no promise it cannot keep (a caller hears the fallback, a
texter the coordinator's number).

When the database comes back, the durable stream goes first (this process's, then what
processes that are gone left in it), and the spool's fence row (`service.spool.fence`) says
so, so that other hosts may reply and send again. Records are written only once the database
holds the schema the code expects (`ready`), so a process that started while the database was
away writes nothing into an old schema.

A record that the database refuses while it answers (a bug, not an outage) is moved to
`rejected/` beside the segments, logged and counted, so that it cannot stop the records after
it. Each record type is written by the store its domain declared (`service.spool.stores`);
the spool imports no domain. `drain()` waits until what was submitted is written; `close()`
drains and stops the thread.
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
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy.orm import Session

from service.db import DATABASE_ERRORS, Database, describe_error, get_database, is_transient
from service.metrics import (
    DB_ERRORS,
    SPOOL_DROPPED,
    SPOOL_PENDING,
    SPOOL_REJECTED,
    SPOOL_WRITE_ERRORS,
)
from service.models import utcnow
from service.spool import fence
from service.spool.checkpoints import forget_checkpoints, load_checkpoint, save_checkpoints
from service.spool.codec import DecodeError, Record, decode, encode_payload
from service.spool.segments import Directory, Segment, read_lines
from service.spool.stores import AfterCommit, Applied, Store, apply_records

log = logging.getLogger(__name__)

MAIN = "main"
DURABLE = "durable"
"""The stream of records that are fsync'd before `submit` returns (opt-outs, sent marks)."""
LINGER_SECONDS = 0.5
MAX_BATCH = 500
MAX_IN_MEMORY = 50_000
SEGMENT_BYTES = 4 * 1024 * 1024
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
PERIODIC_EVERY_SECONDS = 5.0
ORPHANS_EVERY_SECONDS = 5.0
REJECTED_DIR = "rejected"

Periodic = Callable[[Session, datetime], AfterCommit | None]
"""Work the spool thread does every few seconds once the database answers and nothing waits
in the spool (settling calls, the follow-up sweep), each in a transaction of its own; it may
return what to do once that transaction has committed."""


class Kept(StrEnum):
    """Where `submit` put the records."""

    DISK = "disk"
    """In a segment (fsync'd for the durable stream): written to the database soon."""
    DATABASE = "database"
    """The disk refused them; they are in the database already."""
    MEMORY = "memory"
    """Neither took them: held in this process's memory, retried, lost if it stops."""
    DROPPED = "dropped"
    """Neither took them and they were not held."""

    @property
    def promised(self) -> bool:
        """Whether the line may answer as if the records were kept."""
        return self in (Kept.DISK, Kept.DATABASE)


@dataclass(frozen=True, slots=True)
class Entry:
    segment: str | None
    """The segment holding it; None when the disk would not take it (memory only)."""
    seq: int
    records: Sequence[Record]
    durable: bool = False


class _Stop(Exception):
    pass


class Spool:
    """This process's spool (see the module's text)."""

    def __init__(
        self,
        directory: Path,
        database: Callable[[], Database] = get_database,
        *,
        stores: Sequence[Store],
        linger: float = LINGER_SECONDS,
        max_batch: int = MAX_BATCH,
        max_in_memory: int = MAX_IN_MEMORY,
        segment_bytes: int = SEGMENT_BYTES,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        periodic_every: float = PERIODIC_EVERY_SECONDS,
        orphans_every: float = ORPHANS_EVERY_SECONDS,
        periodic: Sequence[Periodic] = (),
        ready: Callable[[], bool] | None = None,
        fence_give_up: float = fence.GIVE_UP_SECONDS,
    ) -> None:
        self.directory = Directory(directory)
        self._database = database
        self.stores = tuple(stores)
        self.linger = linger
        self.max_batch = max_batch
        self.max_in_memory = max_in_memory
        self.segment_bytes = segment_bytes
        self.retry_delays = tuple(retry_delays)
        self.periodic_every = periodic_every
        self.orphans_every = orphans_every
        self.periodic = tuple(periodic)
        self._ready = ready
        """The database holds the schema this code writes (None: assume so)."""
        self._fence_give_up = fence_give_up
        self._fence: fence.Fence | None = None
        self._next_beat = 0.0
        self._schema_known = False

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

    def submit(
        self, records: Sequence[Record], *, durable: bool = False, hold: bool = True
    ) -> Kept:
        """Keep these records (one webhook's, one text's) and have them written to the
        database soon. Never raises. On local disk (`durable`: fsync'd too) it never waits for
        the database. When the disk refuses them they are written to the database at once, in
        the caller's thread; when that fails too, they are held in memory and retried (`hold`,
        as an opt-out must be: this process still obeys it), or not held at all (`hold=False`:
        the caller answers as if they had never come). See `Kept`."""
        if not records:
            return Kept.DISK
        stream = DURABLE if durable else MAIN
        payload = encode_payload(records)
        with self._lock:
            self._seq += 1
            seq = self._seq
            segment = self._append(stream, b"%d\t%s" % (seq, payload), seq)
            if segment is not None:
                if self._from_files:
                    pass  # read back from the file by the thread
                elif len(self._queue) < self.max_in_memory:
                    self._queue.append(Entry(segment.name, seq, records, durable))
                else:
                    self._read_back_from_files()
                self._submitted += 1
                if len(self._queue) == 1 or len(self._queue) >= self.max_batch:
                    self._wake.notify()
        if self._thread is None:
            self.start()
        if segment is not None:
            return Kept.DISK
        entry = Entry(None, seq, records, durable)
        if self._write_through(entry):
            return Kept.DATABASE
        if not hold:
            return Kept.DROPPED
        with self._lock:
            held = len(self._queue) < self.max_in_memory
            if held:
                self._queue.append(entry)
                self._submitted += 1
                self._wake.notify()
        if not held:
            SPOOL_DROPPED.inc()
            log.error("a record was dropped: the disk and the spool's memory are both full")
            return Kept.DROPPED
        return Kept.MEMORY

    def write(self, session: Session, records: Sequence[Record], *, now: datetime) -> Applied:
        """Write `records` now, in the caller's transaction, through the stores the spool was
        given (for work that must be in the database before it answers: a STOP at once, a mark
        that a text was sent). `Applied.count` once that transaction has committed."""
        return apply_records(session, records, self.stores, now=now)

    @property
    def disk_failing(self) -> bool:
        """The disk refused the last record: `submit` may write to the database (and wait)."""
        return self.unwritable_since is not None

    def _write_through(self, entry: Entry) -> bool:
        """The disk refused `entry`: write it to the database now, if it answers."""
        if not self._schema_ready():
            return False
        try:
            self._transaction([entry])
        except Exception as error:
            DB_ERRORS.labels(operation="spool").inc()
            log.warning(
                "neither the disk nor the database takes a record: %s", describe_error(error)
            )
            return False
        with self._lock:
            self._wake.notify_all()
        return True

    def start(self) -> None:
        """Start the spool thread (it also starts with the first record)."""
        with self._lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="spool", daemon=True)
                self._thread.start()

    def drain(self, timeout: float = 30.0, *, while_it_answers: bool = False) -> bool:
        """Wait until everything submitted so far is in the database; False after `timeout`
        (or, `while_it_answers`, as soon as the database refuses a write)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            self._flush = True
            self._wake.notify()
            while self._written < target:
                if self._thread is None or not self._thread.is_alive():
                    return self._written >= target
                if while_it_answers and self.database_down_since is not None:
                    return False
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
            # Stopping during an outage this spool had not yet seen: no waiting for it either.
            self.drain(timeout, while_it_answers=True)
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
        """False while the disk refuses records (or the directory cannot be written: a disk
        remounted read-only, found at once, before this process tried to write to it; every
        process on the host shares it), or records are held in memory only."""
        with self._lock:
            memory_only = any(entry.segment is None for entry in self._queue)
        return self.directory.writable() and self.unwritable_since is None and not memory_only

    def pending_records(self) -> list[Record]:
        """The records of the durable stream that the database may not have yet: those in the
        durable segments of every process that shares this directory (this host's), and those
        this process holds in memory only. Opt-outs are read from here before every reply and
        every send."""
        pending: list[Record] = []
        for path in self.directory.segments(DURABLE):
            for _, line in read_lines(path):
                with contextlib.suppress(DecodeError):
                    pending.extend(decode(line)[1])
        with self._lock:
            pending.extend(
                record
                for entry in self._queue
                if entry.segment is None and entry.durable
                for record in entry.records
            )
        return pending

    def _durable_clear(self) -> bool:
        """Whether everything in this directory's durable stream is in the database: no durable
        segment left (each is removed once written) and nothing durable held in memory."""
        with self._lock:
            if any(entry.durable and entry.segment is None for entry in self._queue):
                return False
            own = {
                segment.path.name
                for segment in (*self._active.values(), *self._sealed)
                if self._applied.get(segment.name, 0) >= segment.last_seq
            }
        return all(path.name in own for path in self.directory.segments(DURABLE))

    def fence(self) -> fence.Fence:
        """This directory's view of the other hosts' fence rows."""
        if self._fence is None:
            self._fence = fence.Fence(self.directory.path, give_up=self._fence_give_up)
        return self._fence

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
        # The periodic work a period after the start, not at once: a process that has just
        # started has written nothing to settle or sweep, and the others run it meanwhile (a
        # test's app, which lives a fraction of a second, ran the roll-up and the sweep for
        # nothing: a tenth of the tests' processor time).
        next_periodic = time.monotonic() + self.periodic_every
        next_orphans = time.monotonic()
        failures = 0
        while True:
            try:
                with self._lock:
                    if self._stopping:
                        return
                    self._wait_for_work(min(next_periodic, next_orphans, self._next_beat))
                self._sync()
                # Opt-outs first: this host's, then any a process that is gone left behind;
                # then the fence may say this directory is clear.
                written = self._schema_ready() and self._write_queue(durable_only=True)
                if written and self._orphans(DURABLE):
                    written = self._replay_orphans(DURABLE)
                if written and time.monotonic() >= self._next_beat:
                    self._beat()
                if written:
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
                    next_periodic = now + self.periodic_every
                SPOOL_PENDING.set(self.pending)
            except _Stop:
                return
            except Exception:  # a bug here must not stop the recording of everything after
                log.exception("the spool thread failed; it goes on")
                self._pause(1.0)
            finally:
                with self._lock:
                    self._wake.notify_all()

    def _schema_ready(self) -> bool:
        """Whether the database holds the schema this code writes (asked until it does)."""
        if self._ready is None or self._schema_known:
            return True
        try:
            self._schema_known = self._ready()
        except Exception as error:
            log.warning("the database's schema is not ready: %s", describe_error(error))
            self._schema_known = False
        if not self._schema_known and self.database_down_since is None:
            # Nothing is written until it is: the database is away for this spool (a stop
            # does not wait for it).
            self.database_down_since = time.monotonic()
        elif self._schema_known:
            self.database_down_since = None
        return self._schema_known

    def _beat(self) -> None:
        """Tell the other hosts whether this directory's opt-outs are in the database."""
        self._next_beat = time.monotonic() + fence.BEAT_SECONDS
        clear = self._durable_clear()
        try:
            with self._database().session() as session:
                fence.beat(session, self.fence().directory, clear)
        except DATABASE_ERRORS as error:
            DB_ERRORS.labels(operation="fence").inc()
            log.debug("fence beat failed: %s", describe_error(error))

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

    def _write_queue(self, *, durable_only: bool = False) -> bool:
        """Write what waits in memory, a batch at a time; False when the database refused.
        `durable_only`: only the durable stream's records (opt-outs go before the rest).

        After the first batch, only full batches (a backlog) are written at once: the few
        records that came in while a batch was written wait `linger` for more. Chasing them
        wrote a tail of tiny transactions after every batch (on PostgreSQL, whose round trips
        let more arrive meanwhile, three times as many as on SQLite: 3 ms of fixed work
        each, which had made its CPU per webhook 2.3 times the minimal app's)."""
        first = True
        while True:
            with self._lock:
                if durable_only:
                    batch = [entry for entry in self._queue if entry.durable][: self.max_batch]
                elif not first and len(self._queue) < self.max_batch:
                    return True
                else:
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
                    if not durable_only and self._queue and self._queue[0] is entry:
                        self._queue.popleft()
                if durable_only:
                    gone = {id(entry) for entry in batch[:done]}
                    self._queue = deque(e for e in self._queue if id(e) not in gone)
                self._written += done
                self._wake.notify_all()
            if done < len(batch):
                return False

    def _write_from_files(self) -> bool:
        """Read this process's segments back from disk and write what is not written yet."""
        while True:
            with self._lock:
                segments = sorted(
                    [*self._sealed, *self._active.values()], key=lambda s: s.stream != DURABLE
                )
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
                session,
                [record for entry in entries for record in entry.records],
                self.stores,
                now=now,
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

    def _orphans(self, stream: str) -> bool:
        """Whether segments of `stream` that are not this process's lie in the directory (of
        processes that are gone, or of other live ones)."""
        with self._lock:
            own = {s.name for s in (*self._active.values(), *self._sealed)}
        return any(path.name not in own for path in self.directory.segments(stream))

    def _replay_orphans(self, stream: str | None = None) -> bool:
        """Replay the segments (of `stream`) of processes that are gone, oldest first, then
        remove them. False when the database did not take them all."""
        with self._lock:
            own = {s.name for s in (*self._active.values(), *self._sealed)}
        taken = self.directory.take_orphans(own, stream)
        try:
            for segment in taken:
                try:
                    with self._database().session(read_only=True) as session:
                        applied = load_checkpoint(session, segment.name)
                except DATABASE_ERRORS:
                    return False
                self._orphan_backlog = sum(1 for _ in read_lines(segment.path))
                written, _, count, _ = self._write_lines(segment, 0, applied)
                self._orphan_backlog = 0
                if not written:
                    return False
                segment.remove()
                with contextlib.suppress(*DATABASE_ERRORS), self._database().session() as s:
                    forget_checkpoints(s, [segment.name])
                log.info("replayed %d record(s) left by a process that is gone", count)
        finally:
            for segment in taken:
                segment.close()
        return True

    def _run_periodic(self) -> None:
        """The periodic work, each in its own transaction. Not while records wait here: the
        calls they tell of are not quiet yet, and the sweep would read a past that is still
        being written."""
        if self.pending:
            return
        now = utcnow()
        for work in self.periodic:
            try:
                with self._database().session() as session:
                    after = work(session, now)
            except DATABASE_ERRORS as error:
                log.warning("periodic work failed: %s", describe_error(error))
                continue
            if after is not None:
                after()
