"""`/staff/admin` and `/staff/audit`, for administrators: the staff accounts (add one,
disable, enable, set a temporary password), purging old records, and the audit log. Each
change to what exists asks first, on a page that says what will happen, and every action is
audited with the client's address (never a password). A temporary password is made here, shown
once on the answer to the POST (which no cache keeps: every staff answer is `no-store`), and
stored only as its hash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.tokens import TokenError, create_token, list_tokens, revoke_token
from service.audit import record_audit
from service.db import get_database
from service.models import ApiRole, AuditEntry, Line, StaffLine, StaffRole, StaffUser
from service.purge import parse_age, purge
from service.sessions import ReadSessionDep, SessionDep
from service.staff.auth import (
    AccountError,
    AccountExists,
    NoSuchAccount,
    account,
    add_staff,
    client_address,
    clock_of,
    disable_staff,
    enable_staff,
    limit_to_lines,
    line_slugs_of,
    list_staff,
    set_temporary_password,
    temporary_password,
)
from service.staff.localtime import format_local, zone_of
from service.staff.queries import parse_id
from service.staff.web import AdminStaff, CheckedForm, PageError, Staff, pages_router, render

router = pages_router()

ROLES = tuple(role.value for role in StaffRole)


def _admin_page(
    request: Request,
    session: Session,
    message: str | None = None,
    *,
    status_code: int = 200,
    add_error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The administration page; `add_error` and `form` when an account could not be added."""
    titles: dict[int, list[str]] = {}
    for user_id, title in session.execute(
        select(StaffLine.user_id, Line.title)
        .join(Line, Line.id == StaffLine.line_id)
        .order_by(Line.title)
    ):
        titles.setdefault(user_id, []).append(title)
    return render(
        request,
        "admin.html",
        status_code=status_code,
        users=list_staff(session),
        line_titles=titles,
        tokens=list_tokens(session),
        token_roles=tuple(role.value for role in ApiRole),
        all_lines=session.scalars(select(Line).order_by(Line.title, Line.slug)).all(),
        line_field=LINE_FIELD,
        message=message,
        roles=ROLES,
        add_error=add_error,
        form=form or {},
    )


def _audit(request: Request, staff: Staff, session: Session, action: str, detail: str) -> None:
    record_audit(session, staff.username, action, detail, client_address=client_address(request))


def _confirmation(
    request: Request, username: str, verb: str, question: str, consequence: str
) -> HTMLResponse:
    """The page that asks before `verb` (disable, enable, ...) is done to `username`'s account:
    "`question`?", what will happen, and a button "Yes, `question`"."""
    return render(
        request,
        "confirm.html",
        heading=f"{question[:1].upper()}{question[1:]}?",
        consequence=consequence,
        action=f"/staff/admin/staff/{quote(username, safe='')}/{verb}",
        fields={},
        button=f"Yes, {question}",
    )


@contextmanager
def _refused(title: str) -> Iterator[None]:
    """An AccountError as an error page: 404 for no such account, else 409 (`title`)."""
    try:
        yield
    except NoSuchAccount as error:
        raise PageError(404, "No such account", str(error)) from None
    except AccountError as error:
        raise PageError(409, title, f"Not changed: {error}.") from None


def _temporary_password_page(
    request: Request, heading: str, username: str, password: str
) -> HTMLResponse:
    return render(
        request,
        "temporary_password.html",
        heading=heading,
        username=username,
        password=password,
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, staff: AdminStaff, session: ReadSessionDep) -> Response:
    return _admin_page(request, session)


@router.post("/admin/staff", response_class=HTMLResponse)
def add_account(
    request: Request, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """A new account with a temporary password, shown once; it chooses its own at first sign-in."""
    password = temporary_password()
    try:
        user = add_staff(
            session, form.get("username", ""), password, form.get("role", ""), temporary=True
        )
    except AccountError as error:
        status = 409 if isinstance(error, AccountExists) else 400
        kept = {"username": form.get("username", "")[:64], "role": form.get("role", "")}
        return _admin_page(
            request, session, status_code=status, add_error=f"Not added: {error}.", form=kept
        )
    _audit(request, staff, session, "add-staff", f"{user.username} ({user.role})")
    return _temporary_password_page(
        request, f"{user.username} is added ({user.role})", user.username, password
    )


@dataclass(frozen=True)
class Switch:
    """Disabling or enabling an account: what the page asking first says, and what is done."""

    verb: str
    consequence: str  # `{username}` is the account's name
    refused: str
    audit_action: str
    done: str


DISABLE = Switch(
    verb="disable",
    consequence="{username} is signed out everywhere at once and cannot sign in again until an "
    "administrator enables the account.",
    refused="Not disabled",
    audit_action="disable-staff",
    done="{username} is disabled.",
)
ENABLE = Switch(
    verb="enable",
    consequence="{username} can sign in again with their password (sessions from before they "
    "were disabled stay ended).",
    refused="Not enabled",
    audit_action="enable-staff",
    done="{username} is enabled and can sign in again.",
)


def _switch(
    request: Request,
    staff: Staff,
    form: dict[str, str],
    session: Session,
    username: str,
    switch: Switch,
    change: Callable[[], StaffUser],
) -> HTMLResponse:
    """Ask first; once confirmed, `change` the account, audit it and say it is done."""
    if form.get("confirm") != "yes":
        consequence = switch.consequence.format(username=username)
        return _confirmation(
            request, username, switch.verb, f"{switch.verb} {username}", consequence
        )
    with _refused(switch.refused):
        user = change()
    _audit(request, staff, session, switch.audit_action, user.username)
    session.flush()
    return _admin_page(request, session, switch.done.format(username=user.username))


@router.post("/admin/staff/{username:path}/disable", response_class=HTMLResponse)
def disable_account(
    request: Request, username: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    def change() -> StaffUser:
        return disable_staff(session, username, by=staff.username)

    return _switch(request, staff, form, session, username, DISABLE, change)


@router.post("/admin/staff/{username:path}/enable", response_class=HTMLResponse)
def enable_account(
    request: Request, username: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    def change() -> StaffUser:
        return enable_staff(session, username, clock_of(request)())

    return _switch(request, staff, form, session, username, ENABLE, change)


@router.post("/admin/staff/{username:path}/temporary-password", response_class=HTMLResponse)
def reset_password(
    request: Request, username: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """For a forgotten password: a new temporary one, shown once; the account's sessions end."""
    if form.get("confirm") != "yes":
        return _confirmation(
            request,
            username,
            "temporary-password",
            f"set a temporary password for {username}",
            f"{username}'s password stops working and {username} is signed out everywhere at "
            "once. You see a new temporary password once, to give to them; they choose their own "
            "password when they next sign in.",
        )
    with _refused("Password not changed"):
        user, password = set_temporary_password(
            session, username, clock_of(request)(), by=staff.username
        )
    _audit(request, staff, session, "temporary-password", user.username)
    return _temporary_password_page(
        request, f"New temporary password for {user.username}", user.username, password
    )


LINE_FIELD = "line:"
"""A checkbox of a lines form is named `line:SLUG`."""


def _ticked_lines(form: dict[str, str]) -> list[str]:
    return [name.removeprefix(LINE_FIELD) for name in form if name.startswith(LINE_FIELD)]


def _account_lines_page(
    request: Request, session: Session, username: str, *, status_code: int = 200
) -> HTMLResponse:
    with _refused("Lines not changed"):
        user = account(session, username)
    chosen = set(line_slugs_of(session, user))
    lines = session.scalars(select(Line).order_by(Line.title, Line.slug)).all()
    return render(
        request,
        "account_lines.html",
        status_code=status_code,
        user=user,
        lines=[(line, line.slug in chosen) for line in lines],
        field=LINE_FIELD,
    )


@router.get("/admin/staff/{username:path}/lines", response_class=HTMLResponse)
def account_lines_page(
    request: Request, username: str, staff: AdminStaff, session: ReadSessionDep
) -> Response:
    """Which lines an account sees: every line (none ticked) or only those ticked."""
    return _account_lines_page(request, session, username)


@router.post("/admin/staff/{username:path}/lines", response_class=HTMLResponse)
def limit_account(
    request: Request, username: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    slugs = _ticked_lines(form)
    with _refused("Lines not changed"):
        user = limit_to_lines(session, username, slugs)
    chosen = ", ".join(sorted(slugs)) or "every line"
    _audit(request, staff, session, "limit-lines", f"{user.username}: {chosen}")
    session.flush()
    return _admin_page(request, session, f"{user.username} now sees {chosen}.")


@router.post("/admin/api-tokens", response_class=HTMLResponse)
def add_api_token(
    request: Request, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """A token for the clinic's IT, shown once on the answer (only its hash is kept)."""
    slugs = _ticked_lines(form)
    try:
        token, secret = create_token(
            session, form.get("name", ""), form.get("role", ""), by=staff.username, lines=slugs
        )
    except TokenError as error:
        raise PageError(400, "Token not made", f"Not made: {error}.") from None
    seen = ", ".join(sorted(slugs)) or "every line"
    _audit(request, staff, session, "api-token", f"{token.name} ({token.role}, {seen})")
    return render(request, "api_token.html", token=token, secret=secret, seen=seen)


@router.post("/admin/api-tokens/{name}/revoke", response_class=HTMLResponse)
def revoke_api_token(
    request: Request, name: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    if form.get("confirm") != "yes":
        return render(
            request,
            "confirm.html",
            heading=f"Revoke the API token {name}?",
            consequence=f"Every request with the token {name} is refused from now on; whatever "
            "uses it stops working until it is given a new token.",
            action=f"/staff/admin/api-tokens/{quote(name, safe='')}/revoke",
            fields={},
            button=f"Yes, revoke {name}",
        )
    try:
        token = revoke_token(session, name, clock_of(request)())
    except TokenError as error:
        raise PageError(404, "No such token", str(error)) from None
    _audit(request, staff, session, "api-token-revoke", token.name)
    session.flush()
    return _admin_page(request, session, f"The API token {token.name} is revoked.")


@router.post("/admin/purge", response_class=HTMLResponse)
def purge_records(request: Request, staff: AdminStaff, form: CheckedForm) -> Response:
    try:
        older_than = parse_age(form.get("older_than", ""))
    except ValueError as error:
        raise PageError(400, "Check the age", str(error)) from None
    if older_than < timedelta(days=1):
        raise PageError(400, "Check the age", "Purge keeps at least one day of records.")
    if form.get("confirm") != "yes":
        cutoff = clock_of(request)() - older_than
        return render(
            request,
            "confirm.html",
            heading="Purge old records?",
            consequence=(
                f"Every call and text from before "
                f"{format_local(cutoff, zone_of(request), '%Y-%m-%d %H:%M %Z')} is deleted for "
                "good; only the daily counts the charts draw are kept."
            ),
            action="/staff/admin/purge",
            fields={"older_than": form.get("older_than", "")},
            button="Yes, purge",
        )
    report = purge(
        get_database(),
        older_than,
        now=clock_of(request)(),
        actor=staff.username,
        zone=zone_of(request),
    )
    with get_database().session(read_only=True) as session:
        return _admin_page(request, session, report.summary().capitalize())


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, staff: AdminStaff, session: ReadSessionDep) -> Response:
    raw_before = request.query_params.get("before", "")
    before = parse_id(raw_before)
    if raw_before and before is None:
        raise PageError(400, "Page link not valid", "Start again from the newest entries.")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(101)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    entries = session.scalars(query).all()
    more = len(entries) > 100
    entries = entries[:100]
    return render(
        request,
        "audit.html",
        entries=entries,
        next_page=f"/staff/audit?before={entries[-1].id}" if more and entries else None,
    )
