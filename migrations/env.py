"""Alembic environment: migrates the database named by the caller or the settings."""

from __future__ import annotations

import logging.config
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, text

from service.config import get_settings
from service.db import make_engine
from service.models import Base, UTCDateTime

config = context.config
MIGRATION_LOCK = 0x70686F6E  # any constant; this app's advisory lock for migrations
target_metadata = Base.metadata

# Only `alembic` run by hand configures logging; `phoneline db ...` keeps the app's.
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL in order: service.migrate's attribute, `-x url=...`, DATABASE_URL."""
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or get_settings().database_url)


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations stay free of app imports: UTCDateTime is written as its database type."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite can roll DDL back too: a failed migration leaves the schema as it was.
        transactional_ddl=True,
        compare_type=True,
        render_item=render_item,
    )
    if connection.dialect.name == "postgresql":
        # Several `phoneline serve` may start at once: one migrates, the others wait and then
        # find the schema at head. (SQLite's BEGIN IMMEDIATE serialises them the same way.)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=database_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    # Foreign keys off: SQLite batch migrations recreate tables, which must not cascade.
    engine = make_engine(database_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            run_with(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
