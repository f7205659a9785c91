"""The application factory: routers, middleware and lifespan; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from fastapi.routing import iter_route_contexts

from service import migrate
from service.api.routes import API_PREFIX
from service.api.routes import router as api_router
from service.calls.call_backs import WEBHOOKS as call_back_webhooks
from service.calls.jobs import end_forgotten_calls, settle_quiet_calls
from service.calls.reconcile import call_reconciler
from service.calls.router import WEBHOOKS as voice_webhooks
from service.calls.voice_call import spooled_text_queue
from service.config import Settings, get_settings
from service.db import get_database
from service.flowengine.language import warm_up
from service.followups.sweep import run_sweep
from service.lines.book import LineBook
from service.logs import RequestLog
from service.middleware import LimitBodySize, TrustedProxies
from service.ops import router as ops_router
from service.outbound import limits
from service.outbound.worker import background_sender
from service.prompts.routes import router as prompts_router
from service.serving import KeepsConnection, drain_before_shutdown
from service.spool.spool import Spool
from service.staff import recordings
from service.staff.auth import prepare_sign_in
from service.staff.rollup import periodic_roll_up
from service.staff.routes import router as staff_router
from service.stores import STORES
from service.texts.opening import wait_for_opening
from service.texts.router import WEBHOOKS as sms_webhooks
from service.voicemail.fetch import voicemail_fetcher

log = logging.getLogger(__name__)


class PhoneLineApp(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document at /openapi.json, which anyone may read: the routes under
        API_PREFIX and nothing else. The staff pages, Twilio's webhooks and the operations
        routes are not an API anyone should build on, and listing them maps the dashboard for
        a stranger."""
        if self.openapi_schema is None:
            self.openapi_schema = get_openapi(
                title=self.title,
                version=self.version,
                openapi_version=self.openapi_version,
                # Included routers' routes too, each under its full path.
                routes=[
                    route
                    for route in iter_route_contexts(self.routes)
                    if (route.path or "").startswith(API_PREFIX + "/")
                ],
            )
        return self.openapi_schema


def create_app_for_workers(workers: int) -> FastAPI:
    """The app of one of `phoneline serve`'s `workers` processes. On SQLite only one process
    may send from the outbox: with several, the in-process sender is off (`phoneline worker`
    runs beside them); on PostgreSQL every process sends (FOR UPDATE SKIP LOCKED keeps them
    from sending the same row)."""
    settings = Settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        settings = settings.model_copy(update={"run_worker_in_server": False})
    return create_app(settings)


def freeze_what_lives_for_good() -> None:
    """Everything a process loaded before its app first serves lives as long as the process:
    keep it out of the garbage collector's full passes, which would otherwise walk it all (tens
    of milliseconds, a pause every caller on this process would hear). Once (nothing frozen
    yet): a process that builds more apps (the tests) would otherwise freeze each earlier one's
    garbage for good. A `serve` worker was forked with its imports frozen already
    (service/preload.py): what its app adds stays with the collector."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    drain_before_shutdown()
    limits.configure(limits.Limits.of(settings))
    if settings.twilio_auth_token and not settings.public_base_url:
        log.warning(
            "TWILIO_AUTH_TOKEN is set but PUBLIC_BASE_URL is not: webhook signatures are "
            "checked against the URL this service sees, which behind a proxy or tunnel is not "
            "the URL Twilio signed (every webhook would get 403). Set PUBLIC_BASE_URL to the "
            "https:// address Twilio is configured with."
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        book: LineBook = app.state.book
        # `phoneline serve`'s supervisor restarts its workers on SIGHUP (new code, settings);
        # a worker sent one itself reads the lines again at once. Not in the main thread
        # (tests), or no signals on this platform: no handler.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: threading.Thread(target=book.refresh).start()
            )
        # Read at once (what was published while the app was built), then every
        # REFRESH_SECONDS; never holding up the start when the database hangs.
        book.start()
        # The language-identification model (about 0.7 s), now rather than on the first
        # text that needs it (loaded already in a `serve` worker: service/preload.py); before
        # the freeze below, since it lives as long as the process.
        await anyio.to_thread.run_sync(warm_up)
        await anyio.to_thread.run_sync(prepare_sign_in)
        freeze_what_lives_for_good()
        app.state.spool.start()  # replays what processes that are gone left in the spool
        try:
            settings = app.state.settings
            chores = [call_reconciler(settings, app.state.spool), voicemail_fetcher(settings)]
            with background_sender(
                settings,
                app.state.spool,
                [c for c in chores if c is not None],
                wait_for_opening(app.state.book),
            ):
                yield
        finally:
            book.close()
            # Shutting down: what the spool holds goes to the database before the end (or
            # stays on disk for the next start, when the database is away).
            await anyio.to_thread.run_sync(app.state.spool.close)

    app = PhoneLineApp(
        title="Second Opinion Line", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.spool = Spool(
        settings.spool_dir,
        stores=STORES,
        periodic=[
            end_forgotten_calls(),
            settle_quiet_calls(timedelta(seconds=settings.call_settle_seconds)),
            run_sweep,
            periodic_roll_up(settings.timezone),
        ],
        ready=lambda: migrate.upgrade_if_reachable(get_database().url),
        periodic_every=settings.spool_periodic_seconds,
        fence_give_up=settings.fence_give_up_seconds,
    )
    app.state.text_queue = spooled_text_queue(get_database, lambda: app.state.spool)
    # The lines and their published flows: from the database (seeded from FLOWS_DIR on a
    # first start), else the copy kept under var/, else the files.
    app.state.book = LineBook(
        get_database, settings.var_dir, settings.flows_dir, timezone=settings.timezone
    )
    app.state.book.open()
    app.add_middleware(
        LimitBodySize,
        max_bytes=settings.max_body_bytes,
        larger=[(recordings.UPLOAD_PATH, recordings.UPLOAD_MAX_BODY)],  # a recorded prompt
    )
    app.add_middleware(RequestLog)  # logs and times every answer, 413s included
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxies)
    app.add_middleware(KeepsConnection)  # outermost: it needs uvicorn's own receive
    # Twilio's webhooks take the raw form and answer TwiML: plain routes (a Request in, a
    # Response out), each domain's WEBHOOKS, first in the route table.
    for path, endpoint in {**voice_webhooks, **sms_webhooks, **call_back_webhooks}.items():
        app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
    # Each router's routes themselves, built once a process when its module was imported, each
    # with its whole path. Not `include_router`: FastAPI builds every included route's handler
    # again for each app that includes it (its dependencies analysed anew: about 0.1 s of a
    # processor at the app's first request). A serve worker builds one app, the tests
    # thousands.
    for router in (ops_router, staff_router, api_router, prompts_router):
        app.router.routes.extend(router.routes)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    return app
