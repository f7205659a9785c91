"""Signing in and out, and choosing a password."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import update

from service.audit import record_audit
from service.models import StaffUser
from service.sessions import SessionDep
from service.staff.auth import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_CHANGED,
    SIGN_OUT,
    AccountError,
    PasswordThrottled,
    StaffSession,
    change_password,
    client_address,
    clock_of,
    encode_session,
    sign_in,
)
from service.staff.web import (
    PASSWORD_PAGE,
    CheckedForm,
    SignedInStaff,
    pages_router,
    render,
    rotate_csrf,
)

log = logging.getLogger(__name__)

router = pages_router()


def _safe_next(target: str | None) -> str:
    """Only a path on the dashboard itself (never another site)."""
    if target and target.startswith("/staff") and not target.startswith("//"):
        return target
    return "/staff/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/staff/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: CheckedForm, session: SessionDep) -> Response:
    username = form.get("username", "")
    target = _safe_next(form.get("next"))
    now = clock_of(request)()
    result = sign_in(session, username, form.get("password", ""), client_address(request), now)
    if result.throttle is not None:
        throttle = result.throttle
        log.warning(
            "staff sign-in throttled (limit %s%s)",
            throttle.limit,
            ", during a flood of failed sign-ins" if throttle.flood else "",
        )
        minutes = throttle.minutes_left(now)
        page = render(
            request,
            "login.html",
            status_code=429,
            next=target,
            username=username,
            error=f"Too many failed sign-ins from here. Wait {minutes} "
            f"minute{'s' if minutes != 1 else ''}, then try again, or ask an administrator "
            "to check your account.",
        )
        page.headers["Retry-After"] = str(throttle.seconds_left(now))
        return page
    if result.user is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=target,
            username=username,
            error="Wrong username or password.",
        )
    _start_session(request, result.user.id)
    if result.user.must_change_password:
        target = f"{PASSWORD_PAGE}?next={quote(target, safe='')}"
    return RedirectResponse(target, status_code=303)


def _start_session(request: Request, user_id: int) -> None:
    """A new session cookie (and CSRF token) for this browser, issued now."""
    stamp = clock_of(request)().timestamp()
    settings = request.app.state.settings
    request.state.session_cookie = encode_session(settings, StaffSession(user_id, stamp, stamp))
    rotate_csrf(request)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, staff: SignedInStaff, next: str = "/staff/") -> Response:
    return _password_page(request, _safe_next(next))


def _password_page(
    request: Request, next: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "password.html",
        status_code=status_code,
        next=next,
        error=error,
        min_password_length=MIN_PASSWORD_LENGTH,
    )


@router.post("/password", response_class=HTMLResponse)
def choose_password(
    request: Request, staff: SignedInStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """The account's own password, in place of a temporary one (or of its old one): every other
    session of the account ends; this browser's goes on with a new cookie."""
    target = _safe_next(form.get("next"))
    now = clock_of(request)()
    try:
        change_password(
            session,
            staff.id,
            form.get("current_password", ""),
            form.get("new_password", ""),
            form.get("new_password_again", ""),
            now,
            client_address(request),
        )
    except PasswordThrottled as refused:
        minutes = refused.throttle.minutes_left(now)
        page = _password_page(
            request,
            target,
            f"Too many wrong passwords from here. Wait {minutes} "
            f"minute{'s' if minutes != 1 else ''}, then try again.",
            429,
        )
        page.headers["Retry-After"] = str(refused.throttle.seconds_left(now))
        return page
    except AccountError as error:
        message = str(error)
        return _password_page(request, target, message[:1].upper() + message[1:] + ".", 400)
    record_audit(session, staff.username, PASSWORD_CHANGED, client_address=client_address(request))
    _start_session(request, staff.id)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(
    request: Request, staff: SignedInStaff, form: CheckedForm, session: SessionDep
) -> Response:
    record_audit(session, staff.username, SIGN_OUT, client_address=client_address(request))
    # Every cookie issued until now stops working, not only this browser's.
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id)
        .values(sessions_valid_after=clock_of(request)())
    )
    request.state.session_cookie = ""
    rotate_csrf(request)
    return RedirectResponse("/staff/login", status_code=303)
