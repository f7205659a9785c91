"""The PostgreSQL schemas the tests reuse (`tests.conftest.SchemaPool`) come back as a newly
loaded one would be: no rows, sequences at 1, the shape of head; one whose shape a test changed
is dropped, not handed to the next test."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service import migrate
from tests.conftest import SchemaPool, schema_url

pytestmark = pytest.mark.postgres


def run(url: str, *statements: str) -> list[object]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            results = [connection.execute(text(sql)) for sql in statements]
            return [result.scalar() if result.returns_rows else None for result in results]
    finally:
        engine.dispose()


def test_a_schema_given_back_is_empty_with_its_sequences_at_one(postgres_pool: SchemaPool) -> None:
    pool = SchemaPool(postgres_pool.server, postgres_pool.template)
    try:
        schema = pool.take()
        url = schema_url(pool.server, schema)
        first = run(url, "INSERT INTO lines (slug, title, is_default, created_at) VALUES "
                         "('a', 'A', false, now()) RETURNING id")  # fmt: skip
        run(
            url,
            "INSERT INTO lines (slug, title, is_default, created_at) "
            "VALUES ('b', 'B', false, now())",
        )
        pool.give_back(schema)
        assert pool.take() == schema
        assert run(url, "SELECT count(*) FROM lines") == [0]
        again = run(url, "INSERT INTO lines (slug, title, is_default, created_at) VALUES "
                         "('c', 'C', false, now()) RETURNING id")  # fmt: skip
        assert again == first == [1]
        assert migrate.current(url) == migrate.head()
    finally:
        pool.close()


def test_a_schema_whose_shape_changed_is_dropped_not_reused(postgres_pool: SchemaPool) -> None:
    pool = SchemaPool(postgres_pool.server, postgres_pool.template)
    try:
        schema = pool.take()
        run(schema_url(pool.server, schema), "DROP INDEX ix_calls_outcome_started_at_id")
        pool.give_back(schema)
        assert pool.free == []
        assert pool.take() != schema
        gone = run(pool.server, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")
        assert gone == [0]
    finally:
        pool.close()
