"""`phoneline lines add|list|set` and `phoneline flows publish|history|show|export|rollback`:
lines and their revisions from the shell, beside a running service (every process serves a
change within seconds)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.flowengine import Flow

lines_app = typer.Typer(
    help="Lines: a program's numbers and its flow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def flow_of_line(slug: str, number: int | None = None) -> Flow:
    """Revision `number` of a line (its published one by default), from the database, as the
    service would serve it; exits 1 saying why when there is no such line or revision."""
    from service.flowengine.validate import flow_of_text
    from service.lines.revisions import line_named, revision_of

    with _session() as session:
        revision = revision_of(session, line_named(session, slug), number)
        return flow_of_text(revision.yaml, f"{slug}, revision {revision.number}")


def author() -> str:
    """Who made a change from the shell (the account running the command)."""
    try:
        return f"shell:{getpass.getuser()}"
    except (KeyError, OSError):
        return "shell"


@contextmanager
def _session() -> Iterator[Session]:
    """A committed session; a refused change exits 1 with what was wrong, nothing changed.
    The database is migrated first and, if it has no line yet, seeded from the flow files as a
    first start of the service would (so that a line added before that start is not the only
    one)."""
    from service import migrate
    from service.config import get_settings
    from service.db import get_database
    from service.flowengine import FlowError
    from service.lines.revisions import LineError, seed_from_files

    database = get_database()
    migrate.upgrade(database.url)
    with database.session() as session:
        seed_from_files(session, get_settings().flows_dir)
    try:
        with database.session() as session:
            yield session
    except FlowError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s): nothing was changed", err=True)
        raise typer.Exit(1) from None
    except LineError as error:
        typer.echo(f"error: {error}; nothing was changed", err=True)
        raise typer.Exit(1) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        typer.echo(f"cannot read {path}: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None


@lines_app.command("add")
def lines_add(
    slug: str = typer.Argument(..., help="The line's name, e.g. clinical-trials."),
    flow: Path = typer.Option(..., "--flow", help="Its flow file (published as revision 1)."),
    number: list[str] = typer.Option([], "--number", help="A Twilio number of the line (+1…)."),
    title: str = typer.Option("", "--title", help="Its title (default: the flow's)."),
    keyword: str = typer.Option("", "--keyword", help="A first text that starts its menu."),
    default: bool = typer.Option(False, "--default", help="Unassigned numbers reach it."),
) -> None:
    """Add a line: its numbers and its flow, published as revision 1."""
    from service.lines.revisions import add_line

    text = _read(flow)
    with _session() as session:
        line, revision = add_line(
            session, slug, text, author=author(), numbers=number, title=title or None,
            keyword=keyword or None, default=default, source=str(flow),
        )  # fmt: skip
        typer.echo(f"added {line.slug} ({line.title}), revision {revision.number} published")


@lines_app.command("list")
def lines_list() -> None:
    """Every line: its numbers, keyword and published revision."""
    from sqlalchemy import select

    from service.lines.revisions import numbers_of, revision_of
    from service.models import Line

    with _session() as session:
        for line in session.scalars(select(Line).order_by(Line.id)):
            published = revision_of(session, line) if line.published_revision_id else None
            numbers = ", ".join(numbers_of(session, line)) or "(no number)"
            flags = " (default)" if line.is_default else ""
            keyword = f", keyword {line.keyword}" if line.keyword else ""
            revision = f"revision {published.number}" if published else "nothing published"
            typer.echo(f"{line.slug}{flags}: {line.title}; {numbers}{keyword}; {revision}")


@lines_app.command("set")
def lines_set(
    slug: str = typer.Argument(...),
    number: list[str] = typer.Option([], "--number", help="A number to add to the line."),
    remove_number: list[str] = typer.Option([], "--remove-number", help="A number to take off."),
    default: bool = typer.Option(False, "--default", help="Make it the default line."),
    keyword: str = typer.Option(None, "--keyword", help="Its keyword ('' to remove it)."),
    title: str = typer.Option(None, "--title", help="Its title."),
) -> None:
    """Change a line: add or remove numbers, its keyword, its title, make it the default."""
    from service.lines import revisions

    with _session() as session:
        line = revisions.line_named(session, slug)
        for added in number:
            revisions.assign_number(session, line, added)
        for removed in remove_number:
            revisions.remove_number(session, line, removed)
        if keyword is not None:
            revisions.set_keyword(session, line, keyword or None)
        if title:
            line.title = title[:120]
            revisions.bump(session)
        if default:
            revisions.make_default(session, line)
        typer.echo(f"{line.slug} changed")


def line_numbers(slug: str) -> list[str]:
    """The numbers of the line `slug` (exit 1 when there is no such line)."""
    from service.lines.revisions import line_named, numbers_of

    with _session() as session:
        return numbers_of(session, line_named(session, slug))


def register_flow_commands(flows_app: typer.Typer) -> None:
    """Add publish, history, show, export and rollback to `phoneline flows`."""

    @flows_app.command("publish")
    def flows_publish(
        slug: str = typer.Argument(..., help="The line."),
        path: Path = typer.Argument(..., help="The flow file."),
        message: str = typer.Option(..., "-m", "--message", help="What changed, and why."),
    ) -> None:
        """Check the file and publish it as the line's next revision (exit 1 with every
        problem, nothing changed, when the check fails); live in every process within 5 s."""
        from service.lines.revisions import publish_text

        text = _read(path)
        with _session() as session:
            revision = publish_text(
                session, slug, text, author=author(), message=message, source=str(path)
            )
            typer.echo(f"{slug}: revision {revision.number} published")

    @flows_app.command("history")
    def flows_history(slug: str = typer.Argument(...)) -> None:
        """The line's revisions: number, published, author, time, message."""
        from service.lines.revisions import history, line_named

        with _session() as session:
            published = line_named(session, slug).published_revision_id
            for revision in history(session, slug):
                mark = "*" if revision.id == published else " "
                state = (
                    f"published {revision.published_at:%Y-%m-%d %H:%M}Z"
                    if revision.published_at
                    else "draft"
                )
                copied = f" (copy of {revision.copied_from})" if revision.copied_from else ""
                typer.echo(
                    f"{mark} {revision.number:>4}  {state:<28} {revision.author:<20} "
                    f"{revision.created_at:%Y-%m-%d %H:%M}Z  {revision.message}{copied}"
                )

    @flows_app.command("show")
    def flows_show(
        slug: str = typer.Argument(...),
        number: int = typer.Argument(None, help="The revision (default: the published one)."),
    ) -> None:
        """One revision's YAML, exactly as it was written."""
        from service.lines.revisions import line_named, revision_of

        with _session() as session:
            revision = revision_of(session, line_named(session, slug), number)
            typer.echo(revision.yaml, nl=False)

    @flows_app.command("export")
    def flows_export(slug: str = typer.Argument(...), path: Path = typer.Argument(...)) -> None:
        """Write the published revision's YAML to a file (for version control)."""
        from service.lines.revisions import line_named, revision_of

        with _session() as session:
            revision = revision_of(session, line_named(session, slug))
            text, number = revision.yaml, revision.number
        path.write_text(text, encoding="utf-8")
        typer.echo(f"{slug}: revision {number} written to {path}")

    @flows_app.command("rollback")
    def flows_rollback(
        slug: str = typer.Argument(...),
        number: int = typer.Argument(..., help="The earlier revision to publish again."),
        message: str = typer.Option(..., "-m", "--message", help="Why."),
    ) -> None:
        """Publish a copy of an earlier revision as the line's next one."""
        from service.lines.revisions import rollback

        with _session() as session:
            copy = rollback(session, slug, number, author=author(), message=message)
            typer.echo(f"{slug}: revision {copy.number} (a copy of {number}) published")


hours_app = typer.Typer(
    help="Closures of a line's contacts: a holiday, an early closing, a snow day.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _line_or_default(session: Session, slug: str) -> str:
    """`slug`, or the default line's (the first, or the one made default)."""
    from sqlalchemy import select

    from service.lines.revisions import LineError
    from service.models import Line

    if slug:
        return slug
    default = session.scalars(select(Line).order_by(Line.is_default.desc(), Line.id)).first()
    if default is None:
        raise LineError("there is no line yet")
    return default.slug


@hours_app.command("close")
def hours_close(
    contact: str = typer.Argument(..., help="The contact's id in the flow, e.g. coordinator."),
    on: str = typer.Option(
        ..., "--on", help="2026-12-24, or every year: 12-25, '4th thu of nov', 'last mon of may'."
    ),
    closes_at: str = typer.Option("", "--from", help="Closed from this time (HH:MM) on."),
    line: str = typer.Option("", "--line", help="The line (default: the default line)."),
    message_en: str = typer.Option("", "--message-en", help="What callers are told of it."),
    message_es: str = typer.Option("", "--message-es", help="The same, in Spanish."),
) -> None:
    """Close a contact on a day (or from a time that day): callers hear that it is closed and
    when it opens again; at once in every process, without publishing."""
    from service.audit import record_audit
    from service.lines.closures import add_closure, when_of

    with _session() as session:
        slug = _line_or_default(session, line)
        closure = add_closure(
            session, slug, contact, on, by=author(), closes_at=closes_at or None,
            message_en=message_en, message_es=message_es,
        )  # fmt: skip
        said = f"{slug}: {contact} closed {when_of(closure).describe()}" + (
            f" from {closure.closes_at}" if closure.closes_at else ""
        )
        record_audit(session, author(), "closure", said)
        typer.echo(f"closure {closure.id}: {said}")


@hours_app.command("list")
def hours_list() -> None:
    """Every closure: its id, line, contact, day and message."""
    from service.lines.closures import list_closures, when_of
    from service.models import Line

    with _session() as session:
        slugs = {line.id: line.slug for line in session.query(Line)}
        closures = list_closures(session)
        if not closures:
            typer.echo("No closures: phoneline hours close CONTACT --on 2026-12-24")
        for row in closures:
            since = f" from {row.closes_at}" if row.closes_at else ""
            message = f"\t{row.message_en}" if row.message_en else ""
            typer.echo(
                f"{row.id}\t{slugs.get(row.line_id, '?')}\t{row.contact}\t"
                f"{when_of(row).describe()}{since}{message}"
            )


@hours_app.command("reopen")
def hours_reopen(
    closure_id: int = typer.Argument(..., help="The closure's id (hours list)."),
) -> None:
    """Remove a closure: the contact keeps its usual hours that day again."""
    from service.audit import record_audit
    from service.lines.closures import remove_closure, when_of

    with _session() as session:
        closure = remove_closure(session, closure_id)
        said = f"{closure.contact} {when_of(closure).describe()}"
        record_audit(session, author(), "closure-removed", said)
        typer.echo(f"removed closure {closure_id}: {said}")
