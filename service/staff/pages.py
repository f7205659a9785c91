"""What the staff pages share: the flow whose words name things, the query, the page cursor,
links, and audited CSV downloads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.flowengine import Flow
from service.lines.book import LineBook
from service.staff.auth import (
    client_address,
    clock_of,
)
from service.staff.export import file_name
from service.staff.line_filter import LineChoice
from service.staff.localtime import zone_of
from service.staff.queries import (
    Cursor,
    FilterError,
)
from service.staff.web import (
    PageError,
    Staff,
)


def flow_of(request: Request, choice: LineChoice | None = None) -> Flow | None:
    """The flow whose words name menus and contacts: the chosen line's, else the default's."""
    book: LineBook = request.app.state.book
    if choice is not None and choice.line is not None:
        return book.flow(choice.line) or book.default_flow()
    return book.default_flow()


def params_of(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def cursor_of(request: Request) -> Cursor | None:
    try:
        return Cursor.decode(request.query_params.get("after"))
    except FilterError as error:
        raise PageError(400, "Page link not valid", str(error)) from None


def link_to(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(params) if params else "")


def list_links(
    request: Request, path: str, params: dict[str, str], next_cursor: Cursor | None
) -> dict[str, Any]:
    """A paged list's links, with its filters: its first page (when this is not it), its next
    page (when there is one), and its CSV (`path`.csv)."""
    return {
        "first_page": link_to(path, params) if "after" in request.query_params else None,
        "next_page": (
            link_to(path, params | {"after": next_cursor.encode()}) if next_cursor else None
        ),
        "csv_link": link_to(f"{path}.csv", params),
    }


UTF8_BOM = "\ufeff"


def audited_csv(
    request: Request,
    staff: Staff,
    session: Session,
    name: str,
    filters: str,
    days: tuple[date | None, date | None],
    rows: Iterator[str],
) -> Response:
    """A streamed CSV download named for the days it covers (`export.file_name`), written to
    the audit log as an export. `?for=excel` starts it with a UTF-8 byte order mark, without
    which Excel reads the file as Windows-1252 and garbles every accented letter (the Spanish
    texts)."""
    excel = request.query_params.get("for") == "excel"
    record_audit(
        session,
        staff.username,
        "export",
        f"{name}.csv{' (for Excel)' if excel else ''}, filters: {filters}",
        client_address=client_address(request),
    )
    today = clock_of(request)().astimezone(zone_of(request)).date()
    download = file_name(name, *days, today)
    return StreamingResponse(
        itertools.chain([UTF8_BOM], rows) if excel else rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{download}"'},
    )
