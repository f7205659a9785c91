"""The public OpenAPI document lists the API for the clinic's IT (`/api/v1`) and nothing else:
not the staff pages, Twilio's webhooks or the operations routes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts

from service.main import API_PREFIX
from tests.support import AppClient


def test_the_openapi_document_lists_no_staff_twilio_or_operations_route(
    client: AppClient, app: FastAPI
) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert not [path for path in paths if path.startswith(("/staff", "/twilio"))]
    assert [path for path in paths if not path.startswith(API_PREFIX + "/")] == []
    # The app has those routes; the document leaves them out.
    routes = {route.path for route in iter_route_contexts(app.routes)}
    assert {"/staff/calls", "/staff/admin", "/twilio/voice", "/readyz", "/metrics"} <= routes


def test_a_router_included_under_the_api_prefix_is_published(
    client: AppClient, app: FastAPI
) -> None:
    """What is added under /api/v1 appears without any change to the document."""
    api = APIRouter(prefix=API_PREFIX)

    @api.get("/probe")
    def probe() -> list[str]:
        return ["second-opinion"]

    before = set(client.get("/openapi.json").json()["paths"])
    assert f"{API_PREFIX}/lines" in before  # the API's own routes
    app.include_router(api)
    app.openapi_schema = None  # built once per process, on the first request
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == before | {f"{API_PREFIX}/probe"}
    assert "get" in paths[f"{API_PREFIX}/probe"]


def test_there_are_no_interactive_docs(client: AppClient) -> None:
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 404
