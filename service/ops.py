"""Routes for the people and machines that run the service: readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from service.db import get_database
from service.metrics import exposition
from service.spool.spool import Spool

router = APIRouter()


@router.get("/readyz", response_class=PlainTextResponse)
def readyz(request: Request) -> Response:
    """200 when the database answers and holds the schema and the spool can keep what the line
    acknowledges; 503 (saying which) otherwise."""
    problems = []
    if not get_database().is_ready():
        problems.append("database not ready")
    spool: Spool | None = getattr(request.app.state, "spool", None)
    if spool is not None and not spool.healthy:
        problems.append("spool cannot write to disk (records held in memory)")
    if problems:
        return PlainTextResponse("\n".join(problems) + "\n", status_code=503)
    return PlainTextResponse("ready\n")


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (summed over worker processes in multiprocess mode)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
