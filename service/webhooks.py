"""The Twilio webhooks' short path: `POST /twilio/*` goes from the server straight to its handler.

A webhook takes a raw form and answers TwiML; FastAPI's dependency injection, validation and
telemetry have nothing to do for it, and its middleware stack (the error and exception
middlewares, telemetry, a body limit, an exit stack, the router's scan of every route) cost a
voice webhook about as much as its own work (bench/README.md). So `PhoneLineApp` hands a POST to
a webhook's path to `WebhookStack`: the app's own middlewares, as on every other request
(forwarded headers from TRUSTED_PROXIES, the request log, the body cap), around the handler, and
the answers FastAPI would give to an `HTTPException` (JSON `{"detail": ...}`) or to anything
unexpected (500).

The webhooks stay registered as routes of the app too, so its route table lists them and other
methods get FastAPI's 405; only their POSTs take the short path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.middleware import BodyTooLarge

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class WebhookStack:
    """ASGI: the webhook whose path the request names, inside the app's own middlewares (those
    added with `add_middleware` before it is made: TrustedProxies, RequestLog, LimitBodySize),
    in the same order as on the rest of the app."""

    def __init__(self, app: FastAPI, routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)
        stack: ASGIApp = self._answer
        for middleware in reversed(app.user_middleware):
            stack = middleware.cls(stack, *middleware.args, **middleware.kwargs)
        self._stack = stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # what `request.app` is in a handler
        scope["endpoint"] = self.routes[scope["path"]]  # the request log's route
        await self._stack(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await scope["endpoint"](request)
        except HTTPException as error:
            response = JSONResponse(
                {"detail": error.detail}, error.status_code, headers=error.headers
            )
        except BodyTooLarge:
            raise  # LimitBodySize answers 413
        except Exception:
            log.exception("a Twilio webhook on %s failed", scope["path"])
            response = PlainTextResponse("Internal Server Error", 500)
        await response(scope, receive, send)


class PhoneLineApp(FastAPI):
    """The FastAPI app, with the webhooks' POSTs answered by `twilio_webhooks` when it is set."""

    twilio_webhooks: WebhookStack | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhooks = self.twilio_webhooks
        if (
            webhooks is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in webhooks.routes
        ):
            await webhooks(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def short_path(app: PhoneLineApp, routes: Mapping[str, Endpoint]) -> None:
    """Register `routes` (path -> handler) on `app` and answer their POSTs by the short path,
    through the middlewares the app has been given so far."""
    for path, endpoint in routes.items():
        app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
    app.twilio_webhooks = WebhookStack(app, routes)
