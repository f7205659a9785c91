"""Shared fixtures.

Database fixtures: every test that uses `database_url`, `database` or `recorder` runs twice,
on SQLite (a temporary file) and, marked `postgres`, on the PostgreSQL at TEST_DATABASE_URL in a
schema of its own. Without a reachable PostgreSQL those runs skip, unless REQUIRE_POSTGRES=1,
when they fail. The schema is built by the Alembic migrations, once per session: a template
schema is migrated and dumped (`pg_dump`), and a test's schema is loaded from that dump (about
0.15 s with its CREATE and DROP, against 0.25 s for the migrations; without `pg_dump` each one
migrates); each test process then reuses its schemas, emptied between tests (`SchemaPool`:
about 5 ms). An empty schema (`database_url`, for migration tests) is made for its test and
dropped after it. Test connections commit without waiting for the WAL flush
(`synchronous_commit=off`: a crash of the test server may lose the last commits, nothing else).
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service import migrate
from service.db import Database, set_database
from tests.recorder import Recorder

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """TEST_DATABASE_URL once it answers; skips (or fails under REQUIRE_POSTGRES=1) if not."""
    url = postgres_base_url()
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect means "no Postgres here"
        reason = (
            f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} "
            f"is not reachable ({type(error).__name__}); set TEST_DATABASE_URL"
        )
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


def schema_url(server: str, schema: str) -> str:
    """A URL whose connections see only `schema`."""
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    return (
        make_url(server)
        .update_query_dict({"options": options})
        .render_as_string(hide_password=False)
    )


def schema_of(url: str) -> str:
    options = str(make_url(url).query["options"])
    return options.split()[0].removeprefix("-csearch_path=")


@pytest.fixture
def postgres_schema_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema (dropped after the test)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_server, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield schema_url(postgres_server, schema)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


TEMPLATE_PREFIX = "phoneline_template_"


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str | None]:
    """The schema at head as SQL, its name `TEMPLATE_PREFIX` + a hex tag (None without
    `pg_dump`: each test migrates then)."""
    if shutil.which("pg_dump") is None:
        yield None
        return
    schema = f"{TEMPLATE_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_server, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        migrate.upgrade(schema_url(postgres_server, schema))
        url = make_url(postgres_server)
        dump = subprocess.run(
            [
                "pg_dump",
                *("--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)),
                *("--username", url.username or "postgres", "--dbname", url.database or ""),
                *("--schema", schema, "--no-owner", "--no-privileges", "--inserts"),
            ],
            env={**os.environ, "PGPASSWORD": url.password or ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # psql's own commands (\restrict) are not SQL; the test's schema exists already.
        yield "\n".join(
            line
            for line in dump.splitlines()
            if not line.startswith("\\") and not line.startswith("CREATE SCHEMA ")
        ).replace(schema, "{schema}")
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def load_template(url: str, template: str) -> None:
    """Builds the test's schema from the session's dump of a migrated one."""
    plain = make_url(url).set(drivername="postgresql").difference_update_query(["options"])
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(template.replace("{schema}", schema_of(url)).encode())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every time is slower)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" or "postgres": every database test runs on each."""
    backend: str = request.param
    return backend


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'phoneline.db'}"


@pytest.fixture
def database_url(database_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables) on each backend, for migration tests."""
    if database_backend == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def migrated_url(
    database_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A database migrated to head on each backend: a copy of the session's migrated SQLite
    file, or a PostgreSQL schema of this process's pool (`SchemaPool`)."""
    if database_backend == "sqlite":
        url = _sqlite_url(tmp_path)
        path = Path(make_url(url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield url
        return
    pool: SchemaPool = request.getfixturevalue("postgres_pool")
    schema = pool.take()
    yield schema_url(pool.server, schema)
    pool.give_back(schema)


FINGERPRINT = """
SELECT md5(string_agg(part, ';' ORDER BY part)) FROM (
  SELECT c.relname || ':' || c.relkind::text || ':' || a.attname || ':'
         || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull::text AS part
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE n.nspname = %(schema)s
  UNION ALL
  SELECT con.conname || ':' || pg_get_constraintdef(con.oid) FROM pg_constraint con
  JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = %(schema)s
) parts
"""
"""The shape of a schema: its tables, indexes and sequences with their columns, and its
constraints (a test that drops an index changes it)."""
EMPTIED = """
DO $$ DECLARE t text; BEGIN
  SET LOCAL session_replication_role = replica;
  FOR t IN SELECT tablename FROM pg_tables
           WHERE schemaname = '{schema}' AND tablename <> 'alembic_version' LOOP
    EXECUTE format('DELETE FROM %I.%I', '{schema}', t);
  END LOOP;
  PERFORM setval(format('%I.%I', schemaname, sequencename), 1, false)
    FROM pg_sequences WHERE schemaname = '{schema}';
END $$
"""
"""Every row of the schema's tables deleted (foreign keys not checked: the order does not
matter) and every sequence back at 1, as a newly loaded schema has them."""


class SchemaPool:
    """Migrated PostgreSQL schemas one test process reuses. A test takes one (a new one is
    loaded from the session's dump of a migrated schema, about 0.15 s with its CREATE SCHEMA and
    DROP); when it is done its rows are deleted and its sequences reset (about 5 ms), and it is
    used again, unless its shape or its Alembic revision is no longer the one it was loaded
    with, or it cannot be emptied within 5 s (a connection left holding a lock): then it is
    dropped. Every schema is dropped when the session ends."""

    def __init__(self, server: str, template: str | None) -> None:
        self.server = server
        self.template = template
        self.free: list[str] = []
        self.shapes: dict[str, tuple[str, str]] = {}
        plain = make_url(server).set(drivername="postgresql")
        self.connection = psycopg.connect(
            plain.render_as_string(hide_password=False), autocommit=True
        )

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        schema = f"t_{uuid.uuid4().hex[:16]}"
        self.connection.execute(f'CREATE SCHEMA "{schema}"'.encode())
        url = schema_url(self.server, schema)
        if self.template is None:
            migrate.upgrade(url)
        else:
            load_template(url, self.template)
        self.shapes[schema] = self._shape(schema)
        return schema

    def give_back(self, schema: str) -> None:
        try:
            with self.connection.transaction():
                self.connection.execute(b"SET LOCAL lock_timeout = '5s'")
                self.connection.execute(EMPTIED.replace("{schema}", schema).encode())
            if self._shape(schema) == self.shapes[schema]:
                self.free.append(schema)
                return
        except psycopg.Error:
            pass
        self._drop(schema)

    def close(self) -> None:
        for schema in list(self.shapes):
            self._drop(schema)
        self.connection.close()

    def _shape(self, schema: str) -> tuple[str, str]:
        shape = self.connection.execute(FINGERPRINT.encode(), {"schema": schema}).fetchone()
        version = self.connection.execute(
            f"SELECT string_agg(version_num, ',') FROM \"{schema}\".alembic_version".encode()
        ).fetchone()
        return (str(shape[0] if shape else ""), str(version[0] if version else ""))

    def _drop(self, schema: str) -> None:
        self.shapes.pop(schema, None)
        try:
            self.connection.execute(b"SET lock_timeout = '10s'")
            self.connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
        except psycopg.Error:
            pass  # left for the server's owner; the name says it was a test's


@pytest.fixture(scope="session")
def postgres_pool(postgres_server: str, postgres_template: str | None) -> Iterator[SchemaPool]:
    pool = SchemaPool(postgres_server, postgres_template)
    try:
        yield pool
    finally:
        pool.close()


KEPT: dict[str, Database] = {}
"""The Database of each pooled PostgreSQL schema this process has tested on: the schema comes
back in later tests under its URL, and the engine with it, whose compiled statements are then
not compiled again (SQLAlchemy keeps them per engine). Its connections are closed after each
test. A SQLite test file is new in each test, and so is its Database: keeping one SQLite path
for every test of a process once crashed a test process (SIGBUS in SQLite's shared memory)."""


@pytest.fixture
def database(migrated_url: str) -> Iterator[Database]:
    """A migrated Database on each backend, installed as the app's (`get_database()`)."""
    with installed(migrated_url) as db:
        yield db


@contextmanager
def installed(url: str) -> Iterator[Database]:
    """The Database of `url` (`KEPT`), installed as the app's for the test."""
    db = KEPT.get(url) or Database(url)
    if db.engine.dialect.name == "postgresql":
        KEPT[url] = db
    listening = listeners(db)
    previous = set_database(db)
    try:
        yield db
    finally:
        set_database(previous)
        db.dispose()
        if listeners(db) != listening:
            KEPT.pop(url, None)  # the test listened to its engine: the next one gets a new one


def listeners(db: Database) -> tuple[int, ...]:
    """How many listeners each event of the engine and of its pool has."""
    return tuple(
        len(getattr(dispatch, name))
        for dispatch in (db.engine.dispatch, db.engine.pool.dispatch)
        for name in dispatch._event_names
    )


@pytest.fixture
def recorder(database: Database) -> Recorder:
    return Recorder(database)


STARTED_FIRST = (
    "ops/test_multiprocess.py",
    "lines/test_serve.py",
    "ops/test_start.py",
    "staff/test_rollup.py",
    "lines/test_two_lines.py",
    "spool/test_fence.py",
    "db/test_concurrency.py",
)
"""Modules of long tests (real processes, big loads), started before the rest."""
SCENARIOS_FIRST = (
    "test_kill_hup_replaces_the_workers_and_refuses_no_caller",  # 36-66 s in `make test`
    "test_postgres_down_at_start_then_back",  # 11-14 s
    "test_the_cli_and_a_sqlite3_reader_beside_serve",  # 24-86 s (13 CLI commands in a row)
    "test_duplicate_and_early_status_callbacks_across_two_writers",  # 14-20 s
    "test_messages_survive_twilio_500_a_stalled_download_and_a_killed_worker",  # 30-43 s
    "test_steady_load",  # 17-22 s
    "test_postgres_stopped_under_load",  # 30-37 s
    "test_kill_9_of_a_serve_worker_three_times",  # 20-26 s
    "test_twilio_fails_then_hangs_then_a_worker_is_killed_mid_send",  # 29-37 s
    "test_kill_9_of_a_worker_twice_keeps_every_webhook_under_3_seconds",  # 20-25 s
    "test_a_redeploy_during_an_outage_loses_nothing",  # 32-39 s
    "test_two_hosts_sharing_the_database_not_var_are_fenced",  # 22-35 s
    "test_sigterm_and_restart_loses_nothing",  # 22-30 s
)
"""The fault scenarios that start first, in this order: pytest-xdist gives each process two
at a time (its `load` scheduling), so each of the five longest goes with one of the five
shortest; then the next longest go, one by one, to whichever process is done with its first."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under pytest-xdist the browser tests of one module run one after another in one process
    # (one Chromium a module); everything else goes wherever a process is free. The fault
    # scenarios, which `make test` runs after the rest, go each to a free process too.
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group(f"browser-{item.path.stem}"))
    # The longest first (the browser modules, then the modules that start real processes), so
    # that no process is left with one of them when the rest are done; the fault scenarios in
    # the order of SCENARIOS_FIRST.
    scenarios = {name: rank for rank, name in enumerate(SCENARIOS_FIRST)}

    def started(item: pytest.Item) -> tuple[int, int]:
        kind = 0 if item.get_closest_marker("browser") else 1 if any(
            item.path.match(pattern) for pattern in STARTED_FIRST) else 2  # fmt: skip
        return kind, scenarios.get(getattr(item, "originalname", ""), len(scenarios))

    items.sort(key=started)
    # Tag each database test with its backend, for the per-backend counts below.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "database_backend" in callspec.params:
            item.user_properties.append(("database", callspec.params["database_backend"]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is alive once the tests are collected (the service, its libraries, the tests)
    lives to the end: the garbage collector's full passes leave it out (`gc.freeze`), so they
    only look at what tests make. With it in, they took a fifth of a process's time."""
    gc.collect()
    gc.freeze()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many database tests ran on each backend (CI shows both counts)."""
    outcomes: dict[str, dict[str, str]] = {"sqlite": {}, "postgres": {}}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = dict(getattr(report, "user_properties", [])).get("database")
            if backend in outcomes:
                # A failure in any phase wins over a pass in another.
                outcomes[backend].setdefault(report.nodeid, outcome)
    if not any(outcomes.values()):
        return
    parts = []
    for backend, results in outcomes.items():
        tally = {
            name: list(results.values()).count(name)
            for name in ("passed", "failed", "error", "skipped")
        }
        parts.append(f"{backend}: " + ", ".join(f"{n} {name}" for name, n in tally.items() if n))
    terminalreporter.write_line("database tests, " + "; ".join(parts))


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes() -> Iterator[None]:
    """Passwords hashed and checked in this process use argon2id's cheapest parameters (a tenth
    of a millisecond, against 0.15 s a hash or a check, three times that on a loaded machine:
    the staff tests sign in thousands of times). Processes the tests start keep the shipped
    parameters, and `tests/staff/test_cli.py` checks them in one."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST

    from service.staff import auth

    shipped = auth._hasher
    auth._hasher = PasswordHasher.from_parameters(CHEAPEST)
    auth._dummy_hash.cache_clear()
    yield
    auth._hasher = shipped
    auth._dummy_hash.cache_clear()


@pytest.fixture(autouse=True)
def default_outbound_limits() -> Iterator[None]:
    """Each test starts with the outbound policy's defaults (an app a test built configures
    the process's limits from its settings)."""
    from service.outbound import limits

    limits.configure(limits.Limits())
    yield
    limits.configure(limits.Limits())


@pytest.fixture
def unlimited_outbound() -> None:
    """No caps (destinations still checked): for tests that queue many texts to one number."""
    from service.outbound import limits

    many = 1_000_000
    limits.configure(limits.Limits(texts_per_number=many, calls_per_number=many,
                                   texts_per_hour=many, calls_per_hour=many))  # fmt: skip


@pytest.fixture(autouse=True)
def no_spool_outlives_its_test() -> Iterator[None]:
    """A spool or outbox-worker thread left running would write to (or send from) whatever
    database the next test installs."""
    import threading

    names = ("spool", "outbox-worker")
    before = {thread for thread in threading.enumerate() if thread.name in names}
    yield
    left = [
        thread.name
        for thread in threading.enumerate()
        if thread.name in names and thread not in before and thread.is_alive()
    ]
    assert not left, f"threads not closed by the test: {left}"
