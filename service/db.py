"""The database engine, the session boundary and the FastAPI session dependency.

Services take a `Session` and never commit; `Database.session()` (a request, a job, a CLI
command) is the one place that commits or rolls back.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from service.config import get_settings

DATABASE_ERRORS: tuple[type[BaseException], ...] = (exc.SQLAlchemyError, sqlite3.Error, OSError)
"""What a database (or the disk under SQLite) raises when it cannot do what was asked."""
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
    exc.PendingRollbackError,
    sqlite3.OperationalError,
    OSError,
)


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed: the database is away, busy, locked, out of disk
    or not what it should be (a missing table, a file that is not a database), as opposed to
    refusing this statement (a constraint, a bug)."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    original = getattr(error, "orig", None)
    if type(original) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
        return True
    return isinstance(error, TRANSIENT_ERRORS) or isinstance(original, TRANSIENT_ERRORS)


def describe_error(error: BaseException) -> str:
    """A one-line description of a database error without SQL parameters (they hold numbers
    and message bodies): the driver's exception class and the first line of its message."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).splitlines() or [""])[0][:200]
    return f"{type(original).__name__}: {first_line}"


SQLITE_BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_SECONDS = 3
POOL_TIMEOUT_SECONDS = 5

# Execution option that makes a SQLite transaction start with a plain (deferred) BEGIN instead
# of BEGIN IMMEDIATE; for read-only work such as the staff pages.
SQLITE_READ_ONLY = "phoneline_sqlite_read_only"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """The file's (device, inode), from `stat` alone.

    Never open the database file outside SQLite: closing any descriptor of a file drops every
    POSIX lock this process holds on it (SQLite's locks among them), and another process then
    believes it is alone and may delete the live WAL.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _configure_sqlite(engine: Engine, path: Path | None, foreign_keys: bool) -> None:
    @event.listens_for(engine, "do_connect")
    def before_connect(dialect: Any, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> None:
        if path is not None:
            record.info["file_identity_before"] = _file_identity(path)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy (the documented pysqlite recipe), so that
        # the "begin" hook below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()
        if path is not None:
            # The file this connection opened is the one `stat` saw before and after the open
            # (a file replaced while it was opened leaves no identity: never checked out).
            before, after = record.info.pop("file_identity_before", None), _file_identity(path)
            record.info["file_identity"] = after if before in (None, after) else None

    @event.listens_for(engine, "checkout")
    def on_checkout(
        dbapi_connection: sqlite3.Connection,
        record: ConnectionPoolEntry,
        proxy: PoolProxiedConnection,
    ) -> None:
        # A pooled connection keeps writing to a database file that was deleted or replaced
        # under it, and those writes would silently vanish. Drop such a connection; the
        # replacement then fails loudly (and is counted) instead. `stat` only: see
        # `_file_identity`.
        if path is None:
            return
        if record.info.get("file_identity") != _file_identity(path):
            raise exc.DisconnectionError(f"SQLite file {path} was removed or replaced")

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail
        # with SQLITE_BUSY without waiting for busy_timeout.
        if conn.get_execution_options().get(SQLITE_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """An engine tuned for this service.

    SQLite: the parent directory is created; WAL, synchronous=NORMAL, a busy timeout and
    foreign keys are set on every connection, and transactions start with BEGIN IMMEDIATE.
    PostgreSQL: connections are pinged before use.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, path, sqlite_foreign_keys)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Fail fast: a webhook that waits longer than Twilio's timeout is worse than one that
    # carries on without its record.
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} | kwargs.get(
            "connect_args", {}
        )
    return create_engine(parsed, **kwargs)


def one_of(column: Any, values: frozenset[int] | None) -> list[ColumnElement[bool]]:
    """The condition that `column` is one of `values`, as a list to spread into a `where`
    (empty, no condition, when `values` is None: e.g. the lines an account is limited to)."""
    return [] if values is None else [column.in_(sorted(values))]


def upsert(session: Session, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for `entity` (a model or table) in the session's dialect, so that
    `.on_conflict_do_nothing()` / `.on_conflict_do_update()` work on PostgreSQL and SQLite alike.
    """
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(entity)
    return sqlite.insert(entity)


class Database:
    """An engine and its session factory, with the one commit/rollback boundary."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.url = self.engine.url
        # Objects stay readable after the boundary commits (e.g. claimed outbox rows).
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_only_sessions = sessionmaker(
            self.engine.execution_options(**{SQLITE_READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises.

        `read_only=True` only changes how a SQLite transaction starts (a deferred BEGIN, so
        readers never wait on writers); it does not prevent writes.
        """
        session = self._read_only_sessions() if read_only else self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def is_ready(self) -> bool:
        """Whether the database answers and holds the schema (for `/readyz`); never raises."""
        try:
            reader = self.engine.execution_options(**{SQLITE_READ_ONLY: True})
            with reader.connect() as connection:
                connection.exec_driver_sql("SELECT 1 FROM alembic_version").all()
        except DATABASE_ERRORS:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


_database: Database | None = None


def get_database() -> Database:
    """The process's Database, built on first use from the settings."""
    global _database
    if _database is None:
        _database = Database(get_settings().database_url)
    return _database


def set_database(database: Database | None) -> Database | None:
    """Replace the process's Database (tests, the app factory); returns the previous one.

    The previous Database is not disposed; the caller owns it.
    """
    global _database
    previous, _database = _database, database
    return previous


def reset_database() -> None:
    """Dispose of the process's Database so that the next use builds a fresh one."""
    previous = set_database(None)
    if previous is not None:
        previous.dispose()
