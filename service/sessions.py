"""The request's database session, for FastAPI routes: `SessionDep` (commits when the
endpoint's work ends) and `ReadSessionDep` (only reads). Here, not in `service.db`, so that what
only needs the database (the CLI, `phoneline worker`, the supervisor of `serve`) does not import
the web framework."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from service.db import get_database


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed when the request's work ends."""
    with get_database().session() as session:
        yield session


def get_read_session() -> Iterator[Session]:
    """FastAPI dependency for pages that only read (on SQLite they never wait for writers)."""
    with get_database().session(read_only=True) as session:
        yield session


# scope="function": the session commits and closes when the endpoint returns, before the
# response is sent, so a failed commit is a 500 rather than a write lost after a 200, and no
# transaction (on SQLite, the write lock) stays open while a response streams. A streamed
# response (CSV) opens its own `get_database().session(read_only=True)` in its generator.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
