"""Routes for the people and machines that run the service: readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from service.db import get_database
from service.metrics import exposition

router = APIRouter()


@router.get("/readyz", response_class=PlainTextResponse)
def readyz() -> Response:
    """200 when the database answers and holds the schema, 503 otherwise."""
    if get_database().is_ready():
        return PlainTextResponse("ready\n")
    return PlainTextResponse("database not ready\n", status_code=503)


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (summed over worker processes in multiprocess mode)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
