"""The fence: no process replies to or texts a number while an opt-out acknowledged on another
host may still be missing from the database.

On one host every process reads the same spool directory, so an opt-out acknowledged there is
seen by all of them before the database has it. Hosts (or containers) that do not share a disk
cannot see each other's spool, so each spool directory keeps a row in `spool_fences`: a live
process of the directory beats it every `BEAT_SECONDS`, saying whether the directory's durable
stream (opt-outs, sent marks) is written to the database (`clear`). Beats are stamped with the
database's own clock, so the hosts' clocks need not agree.

A directory whose row is not clear, or has not been beaten for `FRESH_SECONDS` (its processes
cannot reach the database, are stopped, or are gone), holds every other directory's replies
and texts (`Fence.holding`). After a database outage every row is stale until its processes
have written what they spooled during it, so nothing is sent before the opt-outs of the outage
are in the database. A directory that stays silent for `give_up` seconds (a host taken away for
good) is let go of: its row is deleted, and the error is logged and counted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Float, bindparam, cast, delete, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.db import upsert
from service.metrics import FENCE_GIVEN_UP
from service.models import SpoolFence

log = logging.getLogger(__name__)

BEAT_SECONDS = 1.0
FRESH_SECONDS = 3.0
"""A row beaten longer ago than this (three missed beats) says nothing about what its
directory acknowledged since."""
GIVE_UP_SECONDS = 120.0
ID_FILE = "ID"
OTHERS_FILE = "OTHER-HOSTS"
"""Present while other directories share the database (kept for a process that starts while
the database is away)."""


def directory_id(path: Path) -> str:
    """The spool directory's id, made once and kept in the directory (so every process that
    shares the directory, in any container, has the same one)."""
    id_file = path / ID_FILE
    with contextlib.suppress(FileNotFoundError):
        return id_file.read_text().strip()
    path.mkdir(parents=True, exist_ok=True)
    temporary = path / f"{ID_FILE}.{os.getpid()}.{secrets.token_hex(3)}.tmp"
    temporary.write_text(secrets.token_hex(8) + "\n")
    try:
        os.link(temporary, id_file)  # fails if another process made it first
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return id_file.read_text().strip()


def _database_now(session: Session) -> ColumnElement[object]:
    if session.get_bind().dialect.name == "postgresql":
        return func.clock_timestamp()
    return func.strftime("%Y-%m-%d %H:%M:%f", "now")


def _age_seconds(session: Session) -> ColumnElement[float]:
    """Seconds since the row's beat, by the database's clock."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp() - SpoolFence.beat_at), Float)
    return cast(
        (func.julianday("now") - func.julianday(SpoolFence.beat_at)) * literal_column("86400.0"),
        Float,
    )


def beat(session: Session, directory: str, clear: bool) -> None:
    """Say that `directory` is alive and whether its durable stream is in the database."""
    now = _database_now(session)
    host = socket.gethostname()[:64]
    insert = upsert(session, SpoolFence).values(
        directory=directory, host=host, clear=clear, beat_at=now
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["directory"],
            set_={"host": host, "clear": clear, "beat_at": now},
        )
    )


@dataclass(frozen=True)
class Holder:
    directory: str
    host: str
    clear: bool
    age: float


class Fence:
    """What a process of the spool directory at `path` asks before it replies or sends."""

    def __init__(self, path: Path, give_up: float = GIVE_UP_SECONDS) -> None:
        self.path = path
        self.directory = directory_id(path)
        self.give_up = give_up
        self._holding_since: dict[str, float] = {}
        self._others: bool | None = None

    @property
    def others(self) -> bool:
        """Whether other directories shared the database at the last look (several hosts):
        while the database is away, their opt-outs cannot be known."""
        if self._others is None:
            self._others = (self.path / OTHERS_FILE).exists()
        return self._others

    def _saw_others(self, others: bool) -> None:
        if others == self._others:
            return
        self._others = others
        marker = self.path / OTHERS_FILE
        with contextlib.suppress(OSError):
            if others:
                marker.write_text("other hosts share the database: see service/spool/fence.py\n")
            else:
                marker.unlink(missing_ok=True)

    def holding(self, session: Session) -> list[Holder]:
        """The other directories that hold replies and texts now (empty: go ahead)."""
        rows = session.execute(
            select(
                SpoolFence.directory, SpoolFence.host, SpoolFence.clear, _age_seconds(session)
            ).where(SpoolFence.directory != self.directory)
        ).all()
        self._saw_others(bool(rows))
        now = time.monotonic()
        holders = []
        for directory, host, clear, age in rows:
            if clear and age <= FRESH_SECONDS:
                continue
            holder = Holder(directory, host, bool(clear), float(age))
            since = self._holding_since.setdefault(directory, now)
            if age > FRESH_SECONDS and now - since >= self.give_up:
                self._let_go(session, holder)
                continue
            holders.append(holder)
        waiting = {holder.directory for holder in holders}
        for directory in list(self._holding_since):
            if directory not in waiting:
                del self._holding_since[directory]
        return holders

    def _let_go(self, session: Session, holder: Holder) -> None:
        """A directory silent for `give_up` seconds: whatever its spool holds is out of reach."""
        FENCE_GIVEN_UP.inc()
        log.error(
            "spool directory %s on host %s has not reported for %.0f s: no longer waiting for "
            "it (any opt-out its spool holds is applied when a process of that directory "
            "starts again)",
            holder.directory,
            holder.host,
            holder.age,
        )
        session.execute(
            delete(SpoolFence).where(
                SpoolFence.directory == holder.directory,
                _age_seconds(session) > bindparam("fresh", FRESH_SECONDS),
            )
        )
        self._holding_since.pop(holder.directory, None)
