"""The staff pages' plumbing: templates, the signed-in staff member, CSRF, and error pages.

Every staff route uses `StaffRoute`, which turns "not signed in" into a 303 to the sign-in page
(and "signed in with a temporary password" into a 303 to the choose-password page), a refused
role or a bad form into an HTML error page (never a 500), keeps the session cookie fresh (idle
expiry counts from the last request), marks every answer `no-store` (but the stylesheet) and
sends the security headers (`CONTENT_SECURITY_POLICY`, nosniff, no framing, HSTS over https).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from service.config import Settings
from service.db import DATABASE_ERRORS, get_database
from service.followups import worklist
from service.models import StaffRole, StaffUser
from service.staff.auth import (
    CSRF_FIELD,
    StaffSession,
    account_lines,
    bound_csrf_token,
    clock_of,
    csrf_matches,
    decode_session,
    encode_session,
    new_csrf_cookie,
    read_csrf_cookie,
    staff_cookies,
)
from service.staff.localtime import local_filter, zone_label
from service.staff.outcomes import outcome_label, outcome_text
from service.staff.queries import redact_numbers

log = logging.getLogger(__name__)

MAY_WORK_FOLLOW_UPS = (StaffRole.NAVIGATOR.value, StaffRole.ADMIN.value)
MAY_EDIT_LINES = (StaffRole.EDITOR.value, StaffRole.ADMIN.value)


def may_edit_lines(staff: Staff | None) -> bool:
    return staff is not None and staff.role in MAY_EDIT_LINES


def may_work_follow_ups(staff: Staff | None) -> bool:
    return staff is not None and staff.role in MAY_WORK_FOLLOW_UPS


def open_follow_ups() -> int | None:
    """The count in the navigation (None, and no count shown, when the database is away)."""
    try:
        with get_database().session(read_only=True) as session:
            return worklist.open_count(session)
    except DATABASE_ERRORS:
        return None


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# What every page may use (the navigation's count, times in the clinic's zone, masked numbers).
TEMPLATES.globals.update(
    open_follow_ups=open_follow_ups,
    may_work_follow_ups=may_work_follow_ups,
    may_edit_lines=may_edit_lines,
    zone_label=zone_label,
    outcome_text=outcome_text,
    outcome_label=outcome_label,
)
TEMPLATES.filters.update(local=local_filter, redact=redact_numbers)


# The pages load nothing but /staff/staff.css: no scripts, no inline styles (charts are inline
# SVG with presentation attributes, which CSP does not govern), forms post to this site only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


class SignInRequired(Exception):
    pass


class PasswordChangeRequired(Exception):
    """Signed in with a temporary password: every page but choosing one's own is refused."""


PASSWORD_PAGE = "/staff/password"


LINE_COOKIE = "staff_line"
"""The line a member of staff chose to see, for the browser session (`line_filter`)."""


class PageError(Exception):
    """Answer with an error page: `status`, a title and a sentence saying what to do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    role: str
    must_change_password: bool = False
    line_ids: frozenset[int] | None = None
    """The lines this account is limited to (None: every line; administrators always)."""

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN.value

    def may_see(self, line_id: int | None) -> bool:
        """Whether a record of this line (None: of no line) is this account's to see."""
        return self.line_ids is None or line_id in self.line_ids


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def csrf_token(request: Request) -> str:
    """The CSRF token for this page's forms: bound to this browser's CSRF secret (a new one,
    set as a cookie with the answer, if it has none) and to the session the answer leaves it
    with (one this request issued, refreshed or ended, else the one it came with)."""
    settings = settings_of(request)
    cookies = staff_cookies(request, settings)
    secret: str | None = getattr(request.state, "csrf_secret", None)
    if secret is None:
        secret = read_csrf_cookie(settings, request.cookies.get(cookies.csrf))
    if secret is None:
        secret, request.state.csrf_cookie = new_csrf_cookie(settings)
    request.state.csrf_secret = secret
    session_cookie: str | None = getattr(request.state, "session_cookie", None)
    if session_cookie is None:
        session_cookie = request.cookies.get(cookies.session)
    return bound_csrf_token(settings, secret, decode_session(settings, session_cookie))


def rotate_csrf(request: Request) -> None:
    """A new CSRF secret for this browser (signing in and out)."""
    request.state.csrf_secret, request.state.csrf_cookie = new_csrf_cookie(settings_of(request))


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    staff: Staff | None = getattr(request.state, "staff", None)
    html = TEMPLATES.get_template(template).render(
        request=request, staff=staff, csrf_token=csrf_token(request), **context
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, title=title, message=message)


def _redirect_returning_here(request: Request, page: str) -> RedirectResponse:
    """A 303 to `page` (sign-in, choosing a password), which comes back here once it is done."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/staff/"  # a form posted, not accepted: nothing to go back to
    return RedirectResponse(f"{page}?next={quote(target, safe='')}", status_code=303)


def _finish(request: Request, response: Response) -> None:
    cookies = staff_cookies(request, settings_of(request))
    session_cookie = getattr(request.state, "session_cookie", None)
    if session_cookie == "":
        response.delete_cookie(cookies.session, **cookies.options)
    elif session_cookie:
        response.set_cookie(cookies.session, session_cookie, **cookies.options)
    csrf_cookie = getattr(request.state, "csrf_cookie", None)
    if csrf_cookie:
        response.set_cookie(cookies.csrf, csrf_cookie, **cookies.options)
    line_cookie = getattr(request.state, "line_cookie", None)  # service.staff.line_filter
    if line_cookie == "":
        response.delete_cookie(LINE_COOKIE, **cookies.options)
    elif line_cookie:
        response.set_cookie(LINE_COOKIE, line_cookie, **cookies.options)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.url.scheme == "https":  # a trusted proxy's X-Forwarded-Proto counts
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


class StaffRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def staff_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = _redirect_returning_here(request, "/staff/login")
            except PasswordChangeRequired:
                response = _redirect_returning_here(request, PASSWORD_PAGE)
            except PageError as error:
                response = error_page(request, error.status, error.title, error.message)
            _finish(request, response)
            return response

        return staff_handler


def pages_router() -> APIRouter:
    """The router of a page group (a module of service/staff): its routes under /staff, each a
    `StaffRoute`. Each route carries its whole path, so that an app takes the routes as they
    were built here, once a process (service/staff/routes.py, service/main.py)."""
    return APIRouter(prefix="/staff", route_class=StaffRoute)


# -- dependencies ----------------------------------------------------------------------------


def signed_in_staff(request: Request) -> Staff:
    """The signed-in staff member, a temporary password or not; otherwise SignInRequired (a 303
    to the sign-in page). Only signing out and choosing a password take this one."""
    settings = settings_of(request)
    now = clock_of(request)()
    cookie = request.cookies.get(staff_cookies(request, settings).session)
    staff_session = decode_session(settings, cookie)
    if staff_session is None or staff_session.expired(now):
        if staff_session is not None:
            request.state.session_cookie = ""
        raise SignInRequired
    with get_database().session(read_only=True) as session:
        user = session.scalars(
            select(StaffUser).where(StaffUser.id == staff_session.user_id)
        ).one_or_none()
        ended = (
            user is not None
            and user.sessions_valid_after is not None
            and staff_session.issued < user.sessions_valid_after.timestamp()
        )
        staff = (
            None
            if user is None or user.disabled or ended
            else Staff(
                user.id,
                user.username,
                user.role,
                user.must_change_password,
                account_lines(session, user),
            )
        )
    if staff is None:
        request.state.session_cookie = ""
        raise SignInRequired
    refreshed = StaffSession(staff_session.user_id, staff_session.issued, now.timestamp())
    request.state.session_cookie = encode_session(settings, refreshed)
    request.state.staff = staff
    return staff


def current_staff(staff: Annotated[Staff, Depends(signed_in_staff)]) -> Staff:
    """The signed-in staff member who has chosen their own password; one still holding a
    temporary password gets PasswordChangeRequired (a 303 to the choose-password page)."""
    if staff.must_change_password:
        raise PasswordChangeRequired
    return staff


def admin_staff(staff: Annotated[Staff, Depends(current_staff)], request: Request) -> Staff:
    if not staff.is_admin:
        raise PageError(
            403,
            "Not allowed",
            "This page is for administrators. Ask an administrator if you need it.",
        )
    return staff


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is the one made for the cookies this request
    carries (this browser's CSRF secret and its session, or none); else a 403 page."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    await form.close()  # any file posted with it (an upload reads its own first: `uploaded`)
    settings = settings_of(request)
    cookies = staff_cookies(request, settings)
    secret = read_csrf_cookie(settings, request.cookies.get(cookies.csrf))
    staff_session = decode_session(settings, request.cookies.get(cookies.session))
    expected = None if secret is None else bound_csrf_token(settings, secret, staff_session)
    if not csrf_matches(expected, fields.get(CSRF_FIELD)):
        raise PageError(
            403,
            "Form expired",
            "This form could not be accepted: its security token is missing, out of date or "
            "from another sign-in. Go back, reload the page and try again.",
        )
    return fields


SignedInStaff = Annotated[Staff, Depends(signed_in_staff)]
CurrentStaff = Annotated[Staff, Depends(current_staff)]
AdminStaff = Annotated[Staff, Depends(admin_staff)]
CheckedForm = Annotated[dict[str, str], Depends(checked_form)]
