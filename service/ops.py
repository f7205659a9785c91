"""Routes for the people and machines that run the service: readiness and metrics."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from service.config import Settings
from service.db import get_database
from service.lines.book import LineBook
from service.metrics import exposition
from service.middleware import trusted_networks
from service.spool.spool import Spool

router = APIRouter()


@router.get("/readyz", response_class=PlainTextResponse)
def readyz(request: Request) -> Response:
    """200 when a valid menu is loaded, the database answers and holds the schema, and the
    spool can keep what the line acknowledges; 503 (saying which) otherwise."""
    problems = []
    book: LineBook | None = getattr(request.app.state, "book", None)
    if book is None or not book.lines:
        problems.append("no valid menu loaded (calls and texts get the fallback; see the log)")
    if not get_database().is_ready():
        problems.append("database not ready")
    spool: Spool | None = getattr(request.app.state, "spool", None)
    if spool is not None and not spool.healthy:
        problems.append("spool cannot write to disk (records held in memory)")
    if problems:
        return PlainTextResponse("\n".join(problems) + "\n", status_code=503)
    return PlainTextResponse("ready\n")


def may_read_metrics(request: Request, settings: Settings) -> bool:
    """Whether this request may read /metrics: METRICS_PUBLIC, or a client (the peer, or the
    address a trusted proxy forwarded) on loopback or in TRUSTED_PROXIES, or the bearer token."""
    if settings.metrics_public:
        return True
    address = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    networks = trusted_networks(settings.trusted_proxies)
    if ip is not None and (
        ip.is_loopback or networks is None or any(ip in network for network in networks)
    ):
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return (
        bool(settings.metrics_token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode("latin-1"), settings.metrics_token.encode())
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition (summed over worker processes in multiprocess mode), for
    those `may_read_metrics` lets in; a plain 404 for anyone else."""
    if not may_read_metrics(request, request.app.state.settings):
        return PlainTextResponse("Not Found\n", status_code=404)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
