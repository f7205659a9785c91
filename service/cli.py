"""The `phoneline` command."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from service.api.cli import api_token_app
from service.lines.cli import hours_app, lines_app, register_flow_commands
from service.staff.cli import staff_app


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False)


app = _group("Second Opinion Line: voice menu, SMS line and staff dashboard.")
flows_app = _group("Flow files and each line's revisions: check, publish, roll back.")
db_app = _group("Database migrations.")
app.add_typer(flows_app, name="flows")
app.add_typer(db_app, name="db")
twilio_app = _group("Twilio: point a phone number at this service.")
app.add_typer(twilio_app, name="twilio")
app.add_typer(staff_app, name="staff")
app.add_typer(lines_app, name="lines")
app.add_typer(hours_app, name="hours")
app.add_typer(api_token_app, name="api-token")
register_flow_commands(flows_app)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Run the service (migrates the database first).

    The worker processes run under a supervisor that holds the listening socket, forked from a
    process that has imported the service once: `kill -HUP` of this process replaces them one
    by one (new code, settings from .env, the flow file), each replacement answering before the
    one it replaces stops, so no caller finds the line closed. A worker that dies is started
    again in a fraction of a second.
    """
    _use_multiprocess_metrics()  # before anything imports prometheus_client
    import functools

    import uvicorn

    from service.config import get_settings
    from service.logs import configure_logging
    from service.metrics import forget_process
    from service.serving import Supervisor

    settings = get_settings()
    log_config = configure_logging(settings.log_level)
    _require_writable(settings.var_dir)
    _migrate_unless_away()
    if workers > 1 and settings.database_url.startswith("sqlite") and settings.run_worker_in_server:
        typer.echo(
            "  SQLite with --workers > 1: queued texts are not sent by serve; "
            "run `phoneline worker` once beside it."
        )
    _print_addresses(host, port)
    config = uvicorn.Config(
        # Each worker reads the settings afresh (a `kill -HUP` takes a changed .env), told how
        # many processes serve beside it.
        functools.partial(_app_for_workers, workers),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,  # the app reads forwarded headers itself, from TRUSTED_PROXIES
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # A replacement worker starts (imports, migrations checked, the flow) before the one
        # it replaces stops: give it time on a busy machine.
        timeout_worker_healthcheck=WORKER_START_SECONDS,
    )
    with contextlib.suppress(KeyboardInterrupt):
        Supervisor(
            config,
            sockets=[config.bind_socket()],
            preload=["service.preload"],
            forget=forget_process,
        ).run()


def _app_for_workers(workers: int) -> object:
    """A worker's app. Imported here, in the worker: the supervisor never imports the service
    (a second of a processor at each start, for a process that only watches its workers)."""
    from service.main import create_app_for_workers

    return create_app_for_workers(workers)


GRACEFUL_SHUTDOWN_SECONDS = 20
WORKER_START_SECONDS = 30
"""How long a stopping worker lets calls in progress get their answers."""


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Send what is due now, then exit."),
    poll: float = typer.Option(2.0, help="Seconds between looks at the outbox."),
) -> None:
    """Send queued outbound texts and call-backs (also runs inside `serve` unless
    RUN_WORKER_IN_SERVER=false). Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."""
    import signal
    import threading

    from service import migrate
    from service.calls.reconcile import call_reconciler
    from service.config import get_settings
    from service.db import get_database
    from service.followups.sweep import run_sweep
    from service.lines.book import LineBook
    from service.logs import configure_logging
    from service.outbound import limits
    from service.outbound.worker import build_worker
    from service.spool.spool import Spool
    from service.stores import STORES
    from service.texts.opening import wait_for_opening
    from service.voicemail.fetch import voicemail_fetcher

    settings = get_settings()
    configure_logging(settings.log_level)
    _require_writable(settings.var_dir)
    _migrate_unless_away()
    limits.configure(limits.Limits.of(settings))  # the spool replays queued texts too
    spool = Spool(
        settings.spool_dir,
        stores=STORES,
        periodic=[run_sweep],
        ready=migrate.upgrade_if_reachable,
        periodic_every=settings.spool_periodic_seconds,
        fence_give_up=settings.fence_give_up_seconds,
    )
    chores = [call_reconciler(settings, spool), voicemail_fetcher(settings)]
    # The lines' flows and closures: a call-back is placed only while its contact is open.
    book = LineBook(get_database, settings.var_dir, settings.flows_dir, timezone=settings.timezone)
    sender = build_worker(
        settings,
        spool,
        [chore for chore in chores if chore is not None],
        wait_for_opening(book),
    )
    if sender is None:
        typer.echo("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set.", err=True)
        raise typer.Exit(1)
    try:
        book.open()
        if once:
            report = sender.run_once()
            typer.echo(
                f"sent {report.sent}, retrying {report.retried}, failed {report.failed}, "
                f"suppressed {report.suppressed}"
            )
            return
        spool.start()  # also replays what processes that are gone left in the spool
        book.start()  # (closures added at /staff/hours reach it within a second)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        typer.echo(f"outbox worker {sender.worker_id} running; Ctrl-C to stop")
        sender.run_forever(stop, poll_seconds=poll)
    finally:
        book.close()
        spool.close()


def _require_writable(var_dir: Path) -> None:
    """Refuse to start where the spool cannot keep what the line acknowledges: a process that
    could not would answer callers and texters with promises it then loses."""
    import os
    import secrets

    spool = var_dir / "spool"
    probe = spool / f".writable-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        spool.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as error:
        typer.echo(
            f"cannot write to {spool} ({error.strerror or error}): the line keeps what it "
            "acknowledges there until the database has it. Make VAR_DIR writable (and "
            "persistent, shared by every process of this host) and start again.",
            err=True,
        )
        raise typer.Exit(1) from error


def _migrate_unless_away() -> None:
    """Migrate the database; when it does not answer, start anyway (calls are answered from
    the menu on disk, and the spool writes nothing until the migrations have run)."""
    from service import migrate

    if not migrate.upgrade_if_reachable():
        typer.echo(
            "  the database does not answer: serving anyway; migrations run when it is back",
            err=True,
        )


def _use_multiprocess_metrics() -> None:
    """Point PROMETHEUS_MULTIPROC_DIR at a fresh directory (unless the operator set one), so
    that /metrics sums the values of every worker process. Directories left by earlier serve
    processes that are gone are removed.

    The directory is in memory (/dev/shm), not under var/: prometheus_client keeps its values
    in memory-mapped files, and a page of a mapped file that a full disk cannot back kills the
    process with SIGBUS, taking whatever it held with it."""
    import os
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    root = base / f"phoneline-metrics-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    for old in root.glob("serve-*"):
        pid = old.name.removeprefix("serve-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    fresh = root / f"serve-{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh)


def _print_addresses(host: str, port: int) -> None:
    from service.config import get_settings

    settings = get_settings()
    local = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0', '::') else host}:{port}"
    public = settings.public_base_url.rstrip("/") or local
    typer.echo("Second Opinion Line")
    typer.echo(f"  voice webhook (A call comes in):   POST {public}/twilio/voice")
    typer.echo(f"  voice status callback:             POST {public}/twilio/voice/status")
    typer.echo(f"  voice fallback URL:                POST {public}/twilio/fallback")
    typer.echo(f"  SMS webhook (A message comes in):  POST {public}/twilio/sms")
    typer.echo(f"  SMS status callback:               POST {public}/twilio/sms/status")
    typer.echo(f"  simulator (sign in as staff):      {local}/staff/simulator")
    typer.echo(f"  health:                            {local}/healthz")
    if not settings.twilio_auth_token:
        typer.echo("  TWILIO_AUTH_TOKEN is not set: Twilio webhooks will be refused (403).")
    typer.echo("  add a staff account: phoneline staff add NAME --role admin")


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Revision to upgrade to."),
) -> None:
    """Apply migrations to the database at DATABASE_URL."""
    from service import migrate

    migrate.upgrade(revision=revision)
    typer.echo(f"database at {migrate.current() or '(empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from service import migrate

    typer.echo(migrate.current() or "(empty)")


@app.command()
def purge(
    older_than: str = typer.Option(
        ..., "--older-than", help="Retention, in days or hours: 90d, 36h."
    ),
    batch_size: int = typer.Option(1000, help="Rows per transaction."),
) -> None:
    """Delete call and text records past retention, keeping daily counts."""
    from service import migrate
    from service.db import get_database
    from service.purge import parse_age
    from service.purge import purge as purge_records

    try:
        age = parse_age(older_than)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--older-than") from error
    migrate.upgrade()
    report = purge_records(get_database(), age, batch_size=batch_size)
    typer.echo(report.summary())


@flows_app.command("check")
def flows_check(
    paths: list[Path] = typer.Argument(None, help="Flow files or folders (default: FLOWS_DIR)."),
) -> None:
    """Validate flow files; print every problem as file:line: message; exit 1 on any. Warnings
    (an operator with no office hours) are printed and do not fail the check."""
    from service.config import get_settings
    from service.flowengine import check_paths
    from service.flowengine.validate import check_warnings

    targets = paths or [get_settings().flows_dir]
    problems = check_paths(targets)
    for problem in problems:
        typer.echo(str(problem))
    for warning in check_warnings(targets):
        typer.echo(str(warning))
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("ok: " + ", ".join(str(path) for path in targets))


@app.command()
def simulate(
    sms: bool = typer.Option(False, "--sms", help="Be a texter instead of a caller."),
    lang: str = typer.Option("", "--lang", help="Start in this language (en, es)."),
    flow_file: Path = typer.Option(None, "--flow", help="Flow file (default: the configured one)."),
    line: str = typer.Option(
        None, "--line", help="Play this line's published revision, from the database."
    ),
    revision: int = typer.Option(
        None, "--revision", help="With --line: this revision of it instead (a draft too)."
    ),
) -> None:
    """Play the flow in the terminal: type keys (or words; Enter alone is silence), or texts."""
    import sys

    from service.config import get_settings
    from service.flowengine import FlowError, load_flow
    from service.lines.cli import flow_of_line
    from service.simulator import Simulation, run_terminal

    if (line and flow_file) or (revision is not None and not line):
        typer.echo("choose a flow file (--flow) or a line (--line [--revision N])", err=True)
        raise typer.Exit(2)
    try:
        if line:
            flow = flow_of_line(line, revision)
        else:
            flow = load_flow(flow_file or get_settings().flow_path)
    except FlowError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    simulation = Simulation(flow, "sms" if sms else "voice", lang or None)
    if sys.stdin.isatty():
        typer.echo("(keys 0-9 * #, words, or Enter for silence; Ctrl-D to hang up)", err=True)
    run_terminal(simulation, sys.stdin, typer.echo)


@twilio_app.command("configure")
def twilio_configure(
    public_url: str = typer.Option(
        ..., "--public-url", help="The https:// address Twilio reaches this service at."
    ),
    number: str = typer.Option(None, "--number", help="The Twilio number, e.g. +18045550100."),
    line: str = typer.Option(None, "--line", help="Point every number of this line instead."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be set; send nothing."),
) -> None:
    """Set a number's (or every number of a line's) voice, fallback, call status and SMS
    webhook URLs (Twilio REST API)."""
    from service.channels.numbers import (
        ConfigureError,
        check_public_url,
        configure_number,
        webhook_settings,
    )
    from service.config import get_settings
    from service.phone import to_e164

    if (number is None) == (line is None):
        raise typer.BadParameter("give --number or --line (one of them)", param_hint="--number")
    if line is not None:
        numbers = _numbers_of_line(line)
    else:
        e164 = to_e164(number)
        if e164 is None:
            raise typer.BadParameter(f"{number!r} is not a phone number", param_hint="--number")
        numbers = [e164]
    try:
        check_public_url(public_url)
        for e164 in numbers:
            if dry_run:
                typer.echo(f"would set on {e164} (dry run, nothing sent to Twilio):")
                changes = webhook_settings(public_url)
            else:
                result = configure_number(get_settings(), e164, public_url)
                typer.echo(f"updated {result.phone_number} ({result.sid}):")
                changes = result.changes
                for cleared in result.cleared_applications:
                    typer.echo(f"  cleared {cleared} (its URLs would override these)")
            for name, value in changes.items():
                if value:
                    typer.echo(f"  {name:<24} {value}")
    except ConfigureError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def _numbers_of_line(slug: str) -> list[str]:
    """The numbers of a line (exit 1 when there is no such line, or it has none)."""
    from service.lines.cli import line_numbers

    numbers = line_numbers(slug)
    if not numbers:
        typer.echo(
            f"error: the line {slug!r} has no number (phoneline lines set {slug} --number +1…)",
            err=True,
        )
        raise typer.Exit(1)
    return numbers
