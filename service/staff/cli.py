"""`phoneline staff add|list|lines|disable|enable`: staff accounts for the dashboard."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.models import StaffUser

staff_app = typer.Typer(
    help="Staff accounts for the dashboard.", no_args_is_help=True, pretty_exceptions_enable=False
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password (12 or more characters)", hide_input=True)
    again: str = typer.prompt("The same password again", hide_input=True)
    if password != again:
        typer.echo("The two passwords differ; nothing was changed.", err=True)
        raise typer.Exit(1)
    return password


@staff_app.command("add")
def add(
    name: str = typer.Argument(..., help="Username (lower-cased)."),
    role: str = typer.Option(
        "viewer", help="viewer, navigator (the follow-ups), editor (the lines' words) or admin."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    lines: list[str] = typer.Option(
        [], "--line", help="A line the account sees (repeat for more; none: every line)."
    ),
) -> None:
    """Create a staff account (asks for the password twice unless --password-stdin)."""
    from service import migrate
    from service.db import get_database
    from service.models import StaffRole
    from service.staff.auth import AccountError, add_staff, check_password_rules, limit_to_lines

    if role not in tuple(StaffRole):
        raise typer.BadParameter("viewer, navigator, editor or admin", param_hint="--role")
    password = _read_password(password_stdin)
    try:
        check_password_rules(password)
        migrate.upgrade()
        with get_database().session() as session:
            user = add_staff(session, name, password, role)
            limit_to_lines(session, user.username, lines)
            username = user.username
    except AccountError as error:
        typer.echo(f"Not added: {error}.", err=True)
        raise typer.Exit(1) from None
    seen = f", sees {', '.join(sorted(lines))}" if lines else ""
    typer.echo(f"Added {role} {username}{seen}. Sign in at /staff/login.")


@staff_app.command("list")
def list_accounts() -> None:
    """List staff accounts: username, role, state, last sign-in."""
    from service import migrate
    from service.db import get_database
    from service.staff.auth import line_slugs_of, list_staff

    migrate.upgrade()
    with get_database().session(read_only=True) as session:
        users = list_staff(session)
        if not users:
            typer.echo("No staff accounts yet: phoneline staff add NAME --role admin")
        for user in users:
            last = f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "never"
            state = "disabled" if user.disabled else "active"
            lines = ", ".join(line_slugs_of(session, user)) or "every line"
            typer.echo(f"{user.username}\t{user.role}\t{state}\tlast sign-in {last}\t{lines}")


@staff_app.command("lines")
def lines_of(
    name: str = typer.Argument(..., help="Username."),
    lines: list[str] = typer.Option(
        [], "--line", help="A line the account sees (repeat for more; none: every line)."
    ),
) -> None:
    """Limit an account to some lines (its calls, texts and follow-ups only), or with no
    --line let it see every line again."""
    from service.staff.auth import limit_to_lines

    chosen = ", ".join(sorted(lines)) or "every line"
    _change_account(
        name,
        lambda session, username: limit_to_lines(session, username, lines),
        "limit-lines",
        f"Lines ({chosen}) set for",
        detail=chosen,
    )


@staff_app.command("disable")
def disable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Disable a staff account: it can no longer sign in, and its sessions end at once (never
    the last active admin)."""
    from service.staff.auth import disable_staff

    _change_account(name, disable_staff, "disable-staff", "Disabled")


@staff_app.command("enable")
def enable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Let a disabled staff account sign in again (its sessions from before stay ended)."""
    from service.models import utcnow
    from service.staff.auth import enable_staff

    _change_account(
        name,
        lambda session, username: enable_staff(session, username, utcnow()),
        "enable-staff",
        "Enabled",
    )


def _change_account(
    name: str,
    change: Callable[[Session, str], StaffUser],
    action: str,
    done: str,
    detail: str = "",
) -> None:
    """Change one account and audit it as the system's doing, or say why not (exit 1)."""
    from service import migrate
    from service.audit import SYSTEM_ACTOR, record_audit
    from service.db import get_database
    from service.staff.auth import AccountError

    migrate.upgrade()
    try:
        with get_database().session() as session:
            user = change(session, name)
            said = f"{user.username}: {detail}" if detail else user.username
            record_audit(session, SYSTEM_ACTOR, action, said)
            username = user.username
    except AccountError as error:
        typer.echo(f"Not changed: {error}.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{done} {username}.")


@staff_app.command("rollup")
def rollup() -> None:
    """Roll up the overview's counts of every day over (in TIMEZONE) now; the server keeps
    them current by itself, a month of days at a time."""
    from service import migrate
    from service.config import get_settings, zone_named
    from service.db import get_database
    from service.staff.rollup import roll_up

    migrate.upgrade()
    zone = zone_named(get_settings().timezone)
    recounted = added = 0
    while True:
        with get_database().session() as session:
            report = roll_up(session, zone, wait=True)
        recounted, added = recounted + report.recounted, added + report.added
        if not report.to_add:
            break
    today = ""
    if report.part_until is not None:
        today = f" Today up to {report.part_until.astimezone(zone):%H:%M}."
    typer.echo(
        f"Overview rollup ({zone.key}): {added} days added, {recounted} counted again.{today}"
    )
