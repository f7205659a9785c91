"""`/api/v1`: JSON for the clinic's IT, in the public OpenAPI document (and nothing else is).

Every request names a token (`Authorization: Bearer plt_…`); a missing, unknown or revoked one is
a 401, a viewer's change a 403. Every use is audited (actor `api:NAME`, the method and path).
A token limited to some lines sees only those lines and their records: another line is a 404, as
if it did not exist. Patients' numbers are always masked (`•••-•••-1234`); no route reveals one.
Lines and revisions go through the same code as `phoneline flows` (a revision that fails the
check is kept as a draft with its problems, and cannot be published). Lists are newest first
and cursor-paged: `next` is the `after` of the next page (null on the last)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.tokens import Client, client_of
from service.audit import record_audit
from service.config import zone_named
from service.db import one_of
from service.flowengine.loader import FlowError
from service.lines.revisions import (
    SLUG,
    LineError,
    create_revision,
    history,
    numbers_of,
    publish_revision,
    revision_of,
    rollback,
)
from service.models import Call, FlowRevision, FollowUp, Line
from service.phone import mask
from service.sessions import SessionDep
from service.staff.queries import (
    OUTCOMES,
    CallFilters,
    Cursor,
    FilterError,
    MessageFilters,
    list_calls,
    list_conversations,
)

API_PREFIX = "/api/v1"
PAGE = 50
MAX_FLOW_CHARS = 60_000
"""A flow's YAML, at most (the shipped one is 23,000; a request's body is at most
MAX_BODY_BYTES, 64 KiB by default)."""


def _refused(status: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail, headers=headers or None)


def api_client(request: Request, session: SessionDep) -> Client:
    """The token's client, its use audited; else a 401."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    client = client_of(session, presented.strip()) if scheme.lower() == "bearer" else None
    if client is None:
        raise _refused(
            401,
            "a valid API token is needed: Authorization: Bearer plt_…",
            **{"WWW-Authenticate": 'Bearer realm="phoneline"'},
        )
    query = f"?{request.url.query}" if request.url.query else ""
    where = request.client.host if request.client else None
    record_audit(
        session, client.actor, "api", f"{request.method} {request.url.path}{query}",
        client_address=where,
    )  # fmt: skip
    return client


ApiClient = Annotated[Client, Depends(api_client)]


def editor(client: ApiClient) -> Client:
    if not client.may_edit:
        raise _refused(403, "this token may read only (role viewer); changes need an editor")
    return client


EditorClient = Annotated[Client, Depends(editor)]

router = APIRouter(prefix=API_PREFIX, tags=["api"])


# -- what is answered ------------------------------------------------------------------------


class LineOut(BaseModel):
    slug: str
    title: str
    numbers: list[str]
    keyword: str | None
    default: bool
    published_revision: int | None


class RevisionOut(BaseModel):
    number: int
    author: str
    created_at: datetime
    message: str
    published: bool = Field(description="Whether this is the line's published revision now.")
    published_at: datetime | None
    published_by: str | None
    copied_from: int | None
    problems: list[str] = Field(description="What the flow check found (none: publishable).")


class RevisionText(RevisionOut):
    yaml: str


class NewRevision(BaseModel):
    yaml: str = Field(max_length=MAX_FLOW_CHARS, description="The flow, as a file would hold it.")
    message: str = Field("", max_length=500)


class Rollback(BaseModel):
    revision: int = Field(ge=1, description="The earlier revision to publish a copy of.")
    message: str = Field(min_length=1, max_length=500)


class Publish(BaseModel):
    message: str = Field("", max_length=500)


class CallOut(BaseModel):
    id: int
    call_sid: str
    line: str | None
    caller: str = Field(description="Masked: only the last four digits.")
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    language: str | None
    outcome: str
    transferred_contact: str | None
    dial_outcome: str | None
    revision: int | None = Field(description="The revision of the line's flow the caller heard.")


class ConversationOut(BaseModel):
    id: int
    line: str | None
    phone: str = Field(description="Masked: only the last four digits.")
    language: str | None
    started_at: datetime
    last_activity_at: datetime
    opted_out: bool
    messages: int


class FollowUpOut(BaseModel):
    id: int
    line: str | None
    phone: str = Field(description="Masked: only the last four digits.")
    reason: str
    urgent: bool
    language: str | None
    opened_at: datetime
    last_attempt_at: datetime
    claimed_by: str | None
    closed_at: datetime | None
    outcome: str | None


class CallPage(BaseModel):
    items: list[CallOut]
    next: str | None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next: str | None


class FollowUpPage(BaseModel):
    items: list[FollowUpOut]
    next: str | None


# -- lines and revisions ------------------------------------------------------------------------


def _slugs(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Line.id, Line.slug)).all())


def _line(session: Session, client: Client, slug: str) -> Line:
    # Only what could be a line's name is looked up (PostgreSQL refuses text with NUL in it).
    found = SLUG.fullmatch(slug) is not None
    line = session.scalars(select(Line).where(Line.slug == slug)).one_or_none() if found else None
    if line is None or not client.may_see(line.id):
        raise _refused(404, f"there is no line {slug[:40]!r}")
    return line


Out = TypeVar("Out", bound=BaseModel)


def _out(model: type[Out], record: object, **computed: object) -> Out:
    """`model` of `record`'s fields by name, and the `computed` ones (a line's slug, a number
    masked: never the record's own)."""
    fields = {name: getattr(record, name) for name in model.model_fields if name not in computed}
    return model(**fields, **computed)


def _revision_as(model: type[Out], line: Line, revision: FlowRevision) -> Out:
    published = line.published_revision_id == revision.id
    return _out(model, revision, published=published, problems=list(revision.problems or []))


def _revision(session: Session, line: Line, number: int) -> FlowRevision:
    try:
        return revision_of(session, line, number)
    except LineError as error:
        raise _refused(404, str(error)) from None


@router.get("/lines")
def lines(client: ApiClient, session: SessionDep) -> list[LineOut]:
    """Every line the token may see, with its numbers and published revision."""
    published = dict(session.execute(select(FlowRevision.id, FlowRevision.number)).all())
    return [
        LineOut(
            slug=line.slug,
            title=line.title,
            numbers=numbers_of(session, line),
            keyword=line.keyword,
            default=line.is_default,
            published_revision=published.get(line.published_revision_id or -1),
        )
        for line in session.scalars(select(Line).order_by(Line.slug))
        if client.may_see(line.id)
    ]


@router.get("/lines/{slug}/revisions")
def revisions(slug: str, client: ApiClient, session: SessionDep) -> list[RevisionOut]:
    """The line's revisions, newest first."""
    line = _line(session, client, slug)
    return [_revision_as(RevisionOut, line, revision) for revision in history(session, line.slug)]


@router.post("/lines/{slug}/revisions", status_code=201)
def add_revision(
    slug: str, body: NewRevision, client: EditorClient, session: SessionDep
) -> RevisionOut:
    """A draft revision from YAML: checked as `phoneline flows check` checks a file, kept with
    its problems (an empty list: it may be published)."""
    line = _line(session, client, slug)
    revision = create_revision(
        session, line.slug, body.yaml, author=client.actor, message=body.message
    )
    return _revision_as(RevisionOut, line, revision)


@router.get("/lines/{slug}/revisions/{number}")
def show_revision(slug: str, number: int, client: ApiClient, session: SessionDep) -> RevisionText:
    """One revision, its YAML as it was written (comments and all)."""
    line = _line(session, client, slug)
    revision = _revision(session, line, number)
    return _revision_as(RevisionText, line, revision)


@router.post("/lines/{slug}/revisions/{number}/publish")
def publish(
    slug: str, number: int, client: EditorClient, session: SessionDep, body: Publish | None = None
) -> RevisionOut:
    """Publish a draft: every process serves it within seconds; a revision with problems is
    refused (422) and nothing changes."""
    line = _line(session, client, slug)
    _revision(session, line, number)
    try:
        revision = publish_revision(session, line.slug, number, author=client.actor)
    except LineError as error:
        raise _refused(422, str(error)) from None
    return _revision_as(RevisionOut, line, revision)


@router.post("/lines/{slug}/rollback")
def roll_back(slug: str, body: Rollback, client: EditorClient, session: SessionDep) -> RevisionOut:
    """Publish a copy of an earlier revision as the line's next one."""
    line = _line(session, client, slug)
    _revision(session, line, body.revision)
    try:
        revision = rollback(
            session, line.slug, body.revision, author=client.actor, message=body.message
        )
    except FlowError as error:
        raise _refused(422, "; ".join(str(problem) for problem in error.problems)) from None
    return _revision_as(RevisionOut, line, revision)


# -- records ----------------------------------------------------------------------------------


def _line_ids(session: Session, client: Client, slug: str | None) -> frozenset[int] | None:
    if slug:
        return frozenset({_line(session, client, slug).id})
    return client.line_ids


def _cursor(after: str | None) -> Cursor | None:
    """The cursor a `next` names (URL-safe base64 of the dashboard's cursor)."""
    if not after:
        return None
    try:
        return Cursor.decode(base64.urlsafe_b64decode(after.encode("ascii")).decode("ascii"))
    except (FilterError, ValueError, UnicodeError):
        raise _refused(400, "after is not a `next` this API gave") from None


def _next(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(cursor.encode().encode("ascii")).decode("ascii")


Day = Annotated[date | None, Query(description="A day (YYYY-MM-DD, the clinic's time zone).")]
LineQuery = Annotated[str | None, Query(description="One line's slug (default: every line).")]
After = Annotated[str | None, Query(description="The `next` of the page before.")]


@router.get("/calls")
def calls(
    request: Request,
    client: ApiClient,
    session: SessionDep,
    line: LineQuery = None,
    since: Day = None,
    until: Day = None,
    outcome: str | None = None,
    after: After = None,
) -> CallPage:
    """Calls, newest first (the dashboard's call list)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise _refused(400, f"outcome is one of {', '.join(OUTCOMES)}")
    if since and until and since > until:
        raise _refused(400, "since is after until")
    zone = zone_named(request.app.state.settings.timezone)
    filters = CallFilters(
        date_from=since, date_to=until, outcome=outcome, zone=zone,
        line=line or "", line_ids=_line_ids(session, client, line),
    )  # fmt: skip
    found, cursor = list_calls(session, filters, _cursor(after), PAGE)
    slugs, numbers = _slugs(session), _revision_numbers(session, found)
    return CallPage(
        items=[
            _out(
                CallOut,
                call,
                line=slugs.get(call.line_id or -1),
                caller=mask(call.caller),
                revision=numbers.get(call.revision_id or -1),
            )
            for call in found
        ],
        next=_next(cursor),
    )


def _revision_numbers(session: Session, found: Sequence[Call]) -> dict[int, int]:
    ids = {call.revision_id for call in found if call.revision_id is not None}
    if not ids:
        return {}
    query = select(FlowRevision.id, FlowRevision.number).where(FlowRevision.id.in_(ids))
    return dict(session.execute(query).all())


@router.get("/conversations")
def conversations(
    request: Request,
    client: ApiClient,
    session: SessionDep,
    line: LineQuery = None,
    since: Day = None,
    until: Day = None,
    after: After = None,
) -> ConversationPage:
    """Text conversations, most recently active first (the dashboard's messages list)."""
    zone = zone_named(request.app.state.settings.timezone)
    filters = MessageFilters(
        date_from=since, date_to=until, zone=zone,
        line=line or "", line_ids=_line_ids(session, client, line),
    )  # fmt: skip
    found, cursor = list_conversations(session, filters, _cursor(after), PAGE)
    slugs = _slugs(session)
    return ConversationPage(
        items=[
            _out(ConversationOut, row, line=slugs.get(row.line_id or -1), phone=mask(row.phone))
            for row in found
        ],
        next=_next(cursor),
    )


@router.get("/follow-ups")
def follow_ups(
    client: ApiClient,
    session: SessionDep,
    line: LineQuery = None,
    state: Annotated[str, Query(pattern="^(open|closed)$")] = "open",
    after: Annotated[int | None, Query(ge=1, description="The `next` of the page before.")] = None,
) -> FollowUpPage:
    """Follow-ups (the worklist), newest first: open ones, or closed ones."""
    query = (
        select(FollowUp)
        .where(
            FollowUp.closed_at.is_(None) if state == "open" else FollowUp.closed_at.is_not(None),
            *one_of(FollowUp.line_id, _line_ids(session, client, line)),
        )
        .order_by(FollowUp.id.desc())
        .limit(PAGE + 1)
    )
    if after is not None:
        query = query.where(FollowUp.id < after)
    found = session.scalars(query).all()
    slugs = _slugs(session)
    page = found[:PAGE]
    return FollowUpPage(
        items=[
            _out(FollowUpOut, item, line=slugs.get(item.line_id or -1), phone=mask(item.phone))
            for item in page
        ],
        next=str(page[-1].id) if len(found) > PAGE else None,
    )
