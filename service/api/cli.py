"""`phoneline api-token create|list|revoke`: tokens of the API for the clinic's IT."""

from __future__ import annotations

import typer

api_token_app = typer.Typer(
    help="Tokens of the API (/api/v1) for the clinic's IT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@api_token_app.command("create")
def create(
    name: str = typer.Argument(..., help="What the token is for, e.g. crm-export."),
    role: str = typer.Option("viewer", help="viewer (reads) or editor (also publishes)."),
    lines: list[str] = typer.Option(
        [], "--line", help="A line the token sees (repeat for more; none: every line)."
    ),
) -> None:
    """Make a token and print it once (only its hash is kept): give it to the clinic's IT."""
    from service import migrate
    from service.api.tokens import TokenError, create_token
    from service.audit import SYSTEM_ACTOR, record_audit
    from service.db import get_database

    migrate.upgrade()
    try:
        with get_database().session() as session:
            token, secret = create_token(session, name, role, by=SYSTEM_ACTOR, lines=lines)
            seen = ", ".join(sorted(lines)) or "every line"
            record_audit(session, SYSTEM_ACTOR, "api-token", f"{token.name} ({token.role}, {seen})")
            said = f"Token {token.name} ({token.role}, {seen}); shown once, keep it safe:"
    except TokenError as error:
        typer.echo(f"Not created: {error}.", err=True)
        raise typer.Exit(1) from None
    typer.echo(said)
    typer.echo(secret)


@api_token_app.command("list")
def list_all() -> None:
    """Every token: name, role, lines, state, last use (never the token)."""
    from service import migrate
    from service.api.tokens import list_tokens
    from service.db import get_database

    migrate.upgrade()
    with get_database().session(read_only=True) as session:
        tokens = list_tokens(session)
        if not tokens:
            typer.echo("No API tokens yet: phoneline api-token create NAME --role viewer")
        for token, slugs in tokens:
            state = "revoked" if token.revoked_at else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M} UTC" if token.last_used_at else "never"
            seen = ", ".join(slugs) or "every line"
            typer.echo(f"{token.name}\t{token.role}\t{seen}\t{state}\tlast used {used}")


@api_token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: it is refused (401) from its next request on."""
    from service import migrate
    from service.api.tokens import TokenError, revoke_token
    from service.audit import SYSTEM_ACTOR, record_audit
    from service.db import get_database

    migrate.upgrade()
    try:
        with get_database().session() as session:
            token = revoke_token(session, name)
            record_audit(session, SYSTEM_ACTOR, "api-token-revoke", token.name)
            revoked = token.name
    except TokenError as error:
        typer.echo(f"Not revoked: {error}.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Revoked {revoked}.")
