"""Reading what Twilio posts: a form field, and the outbox row named in a callback's URL."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request


def form_field(form: FormData, name: str) -> str:
    """A field of Twilio's form, stripped and at most 64 characters ("" when absent)."""
    value = form.get(name)
    return value.strip()[:64] if isinstance(value, str) else ""


def outbox_id_of(request: Request) -> int | None:
    """The outbox row a status callback or a dial action is about (`?outbox=N` in its URL,
    which the line wrote when it sent the text or placed the call), or None."""
    value = request.query_params.get("outbox", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
