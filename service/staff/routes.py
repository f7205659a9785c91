"""The staff dashboard (SPEC section 6): every page group is a module of its own with its own
router under /staff (`pages_router`), gathered here in one list; then the stylesheet, the icon,
and the page for any other address."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import Response

from service.staff import (
    admin,
    calls,
    editor,
    followups,
    hours,
    lines,
    numbers,
    outbound,
    overview,
    recordings,
    signin,
    simulator,
    structure,
    texts,
    voicemails,
)
from service.staff.web import PageError, pages_router

router = pages_router()
for pages in (
    signin,
    overview,
    calls,
    texts,
    followups,
    voicemails,
    outbound,
    numbers,
    lines,
    editor,
    structure,
    recordings,
    hours,
    simulator,
    admin,
):
    router.routes.extend(pages.router.routes)  # not include_router: see service/main.py


# -- the stylesheet ----------------------------------------------------------------------------

STYLESHEET = (Path(__file__).parent / "static" / "staff.css").read_text()


@router.get("/staff.css")
def stylesheet() -> Response:
    """The pages' one stylesheet (the Content-Security-Policy allows no inline style)."""
    return Response(
        STYLESHEET,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_text()


@router.get("/favicon.svg")
def favicon() -> Response:
    """The tab's icon: a white handset on the header's navy."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


# Last, so that it only answers what no route above does: an HTML page, with the staff headers.
@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def not_found(path: str) -> Response:
    raise PageError(404, "Page not found", "There is no staff page at this address.")
