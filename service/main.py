"""The application factory: routers, middleware and lifespan; nothing else."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from service.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Second Opinion Line", docs_url=None, redoc_url=None)
    app.state.settings = settings

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    return app
