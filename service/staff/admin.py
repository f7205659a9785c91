"""`/staff/admin`, for administrators: the staff accounts (disable one) and purging old
records. Each action asks first, on a page that says what will happen, and is audited."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from service.audit import record_audit
from service.db import ReadSessionDep, SessionDep, get_database
from service.purge import parse_age, purge
from service.staff.auth import (
    AccountError,
    NoSuchAccount,
    client_address,
    clock_of,
    disable_staff,
    list_staff,
)
from service.staff.localtime import format_local, zone_of
from service.staff.web import AdminStaff, CheckedForm, PageError, StaffRoute, render

router = APIRouter(route_class=StaffRoute)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, staff: AdminStaff, session: ReadSessionDep) -> Response:
    return render(request, "admin.html", users=list_staff(session), message=None)


@router.post("/admin/staff/{username}/disable", response_class=HTMLResponse)
def disable_account(
    request: Request, username: str, staff: AdminStaff, form: CheckedForm, session: SessionDep
) -> Response:
    if form.get("confirm") != "yes":
        return render(
            request,
            "confirm.html",
            heading=f"Disable {username}?",
            consequence=(
                f"{username} is signed out everywhere at once and cannot sign in again until "
                "an administrator runs `phoneline staff enable`."
            ),
            action=f"/staff/admin/staff/{username}/disable",
            fields={},
            button=f"Yes, disable {username}",
        )
    try:
        user = disable_staff(session, username, by=staff.username)
    except NoSuchAccount as error:
        raise PageError(404, "No such account", str(error)) from None
    except AccountError as error:
        raise PageError(409, "Not disabled", f"Not changed: {error}.") from None
    record_audit(
        session,
        staff.username,
        "disable-staff",
        user.username,
        client_address=client_address(request),
    )
    session.flush()
    return render(
        request, "admin.html", users=list_staff(session), message=f"{user.username} is disabled."
    )


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
        users = list_staff(session)
    return render(request, "admin.html", users=users, message=report.summary().capitalize())
