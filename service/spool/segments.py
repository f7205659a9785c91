"""Spool segments: append-only files of spool lines, each owned by one live process.

A segment is `<spool dir>/<stream>-<host>-<pid>-<time>-<random>.spool`. Its owner holds an
exclusive `flock` on it for as long as it lives (flock belongs to the open file, so nothing
else the process opens or closes can drop it, unlike the POSIX locks SQLite uses). A segment
nobody holds a lock on belongs to a process that is gone: any live process may take it over
(`take_orphans`) and replay what it holds.

A segment is created under a temporary name, locked, then renamed, so that no one can find it
unlocked. Lines are appended with one `write` each (O_APPEND), so a reader sees whole lines or
an unfinished last one, which it leaves for later.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".spool"
CLOSED = -1
"""The `fd` of a segment that has been let go of."""


@dataclass
class Segment:
    """An open, locked segment file."""

    path: Path
    fd: int
    size: int = 0
    synced: int = 0
    """How many of its bytes are known to be on disk (fsync)."""
    last_seq: int = 0
    """The seq of the last line in it (0: empty)."""
    lines: int = 0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stream(self) -> str:
        return self.path.name.split("-", 1)[0]

    def append(self, line: bytes, seq: int) -> None:
        """Append one line; raises OSError (a full or read-only disk) with nothing written, or
        with an unfinished line that no reader takes. Either way nothing more may be appended to
        this segment (the spool starts another)."""
        _write_all(self.fd, line)
        self.size += len(line)
        self.last_seq = seq
        self.lines += 1

    def sync(self) -> None:
        if self.synced < self.size:
            size = self.size
            os.fsync(self.fd)
            self.synced = size

    def close(self) -> None:
        """Let go of the file; once only. A second `os.close` of the same number would close
        whatever the process opened since under that number: another thread's socket to
        Twilio or to the database."""
        fd, self.fd = self.fd, CLOSED
        if fd != CLOSED:
            with contextlib.suppress(OSError):
                os.close(fd)

    def remove(self) -> None:
        """Delete the file, then let go of it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.close()


@dataclass
class Directory:
    """The spool directory of this machine (shared by every process that uses `var/`)."""

    path: Path

    def writable(self) -> bool:
        """Whether records could be written here now: a file can be made in the directory, or
        in the nearest folder above it while it is not made yet (a disk gone read-only says no
        at once, in every process, before it tried to write a record). Tried, not asked: since
        Linux 6.11 an ext4 error (errors=remount-ro) makes every write fail with EROFS while the
        mount still says rw ("emergency_ro"), and `access` answers yes."""
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                probe = folder / f".writable-{os.getpid()}-{secrets.token_hex(4)}"
                try:
                    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except OSError:
                    return False
                with contextlib.suppress(OSError):
                    probe.unlink()
                return True
        return False

    def create(self, stream: str) -> Segment:
        """A new segment of `stream`, locked by this process."""
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns():x}"
        host = _safe(socket.gethostname())
        name = f"{stream}-{host}-{os.getpid()}-{stamp}-{secrets.token_hex(3)}"
        temporary = self.path / f"{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = self.path / f"{name}{SUFFIX}"
            os.rename(temporary, final)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return Segment(final, fd)

    def segments(self, stream: str | None = None) -> list[Path]:
        """Every segment file here (of `stream`), oldest first."""
        try:
            names = [entry.name for entry in os.scandir(self.path) if entry.name.endswith(SUFFIX)]
        except FileNotFoundError:
            return []
        if stream is not None:
            names = [name for name in names if name.startswith(f"{stream}-")]
        return sorted((self.path / name for name in names), key=_age)

    def take_orphans(self, own: set[str], stream: str | None = None) -> list[Segment]:
        """Lock and open every segment (of `stream`) whose owner is gone (not one of `own`),
        oldest first."""
        taken = []
        for path in self.segments(stream):
            if path.name in own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # replayed and removed by someone else just now
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    log.warning("cannot lock spool segment %s: %s", path.name, error)
                continue  # its owner is alive
            if not path.exists():  # removed between the open and the lock
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            taken.append(Segment(path, fd, size=size, synced=size))
        return taken


def read_lines(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) of every whole line from byte `start` (an unfinished last
    line is left for a later read)."""
    try:
        with open(path, "rb") as file:
            file.seek(start)
            offset = start
            for line in file:
                if not line.endswith(b"\n"):
                    return
                offset += len(line)
                yield offset, line
    except FileNotFoundError:
        return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _age(path: Path) -> tuple[int, str]:
    """Segments sort by the time in their names (hex nanoseconds), then by name."""
    parts = path.name.removesuffix(SUFFIX).split("-")
    try:
        return int(parts[-2], 16), path.name
    except (IndexError, ValueError):
        return 0, path.name


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:40] or "host"
