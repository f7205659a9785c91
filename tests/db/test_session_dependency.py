"""`SessionDep`: one session per request, committed when the request's work succeeds."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry
from service.sessions import ReadSessionDep, SessionDep
from tests.support import app_client


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/ok")
    def ok(session: SessionDep) -> dict[str, int]:
        session.add(AuditEntry(actor="system", action="test", detail="kept"))
        session.flush()
        return {"written": 1}

    @app.post("/fails")
    def fails(session: SessionDep) -> None:
        session.add(AuditEntry(actor="system", action="test", detail="dropped"))
        session.flush()
        raise RuntimeError("boom")

    @app.get("/count")
    def count(session: ReadSessionDep) -> dict[str, int]:
        return {"entries": len(session.scalars(select(AuditEntry)).all())}

    return app


def test_a_request_commits_its_work_and_a_failed_one_rolls_back(database: Database) -> None:
    with app_client(make_app()) as client:
        assert client.post("/ok").json() == {"written": 1}
        try:
            response = client.post("/fails")
        except RuntimeError:
            pass  # ASGITransport re-raises app errors by default
        else:
            assert response.status_code == 500
        assert client.get("/count").json() == {"entries": 1}

    with database.session() as session:
        assert session.scalars(select(AuditEntry.detail)).all() == ["kept"]
