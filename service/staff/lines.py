"""The lines, read by staff: each line with its numbers and its published revision (who,
when, why, how many calls it took), a line's revisions, and one revision rendered as a caller
and a texter meet it (what each menu says, each option, where it leads), never as YAML. A
call's page links to the revision its caller heard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.flowengine import Flow, FlowError
from service.flowengine.model import Node, Option
from service.flowengine.validate import flow_of_text
from service.lines.revisions import SLUG
from service.models import Call, FlowRevision, Line, LineNumber
from service.sessions import ReadSessionDep
from service.staff.line_filter import visible
from service.staff.names import FlowNames, flow_names
from service.staff.queries import parse_id
from service.staff.revision_changes import changes, readable_flow
from service.staff.web import CurrentStaff, PageError, pages_router, render

router = pages_router()

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


@dataclass(frozen=True)
class LineRow:
    line: Line
    numbers: Sequence[str]
    published: FlowRevision | None
    drafts: int
    """Revisions newer than the published one, never published."""
    calls: int
    """Calls that heard the published revision."""


def line_rows(session: Session) -> list[LineRow]:
    lines = session.scalars(select(Line).order_by(Line.title, Line.slug)).all()
    numbers: dict[int, list[str]] = {}
    for line_id, number in session.execute(
        select(LineNumber.line_id, LineNumber.number).order_by(LineNumber.number)
    ):
        numbers.setdefault(line_id, []).append(number)
    published = {
        revision.id: revision
        for revision in session.scalars(
            select(FlowRevision).where(
                FlowRevision.id.in_([line.published_revision_id or -1 for line in lines])
            )
        )
    }
    calls = Counter(
        dict(
            session.execute(
                select(Call.revision_id, func.count())
                .where(Call.revision_id.in_(list(published)))
                .group_by(Call.revision_id)
            ).all()
        )
    )
    never_published = session.execute(
        select(FlowRevision.line_id, FlowRevision.number).where(FlowRevision.published_at.is_(None))
    ).all()
    rows = []
    for line in lines:
        current = published.get(line.published_revision_id or -1)
        newer_than = current.number if current else 0
        drafts = sum(1 for of, n in never_published if of == line.id and n > newer_than)
        rows.append(
            LineRow(
                line,
                numbers.get(line.id, []),
                current,
                drafts,
                calls[current.id] if current else 0,
            )
        )
    return rows


def visible_line(request: Request, session: Session, slug: str) -> Line:
    # Only what could be a line's name is looked up (PostgreSQL refuses text with NUL in it).
    found = SLUG.fullmatch(slug) is not None
    line = session.scalars(select(Line).where(Line.slug == slug)).one_or_none() if found else None
    return visible(request, line, line.id if line else None, "Line")


@dataclass(frozen=True)
class Step:
    """One option of a menu as staff read it."""

    key: str
    label: str
    leads_to: str


def _leads_to(option: Option, flow: Flow, names: FlowNames, lang: str) -> str:
    if option.connect:
        return f"puts the caller through to {names.contact(option.connect)}"
    if option.text:
        texted = ", ".join(names.contact(contact) for contact in option.text)
        return f"texts the caller the number of {texted}"
    if option.language:
        return f"goes on in {LANGUAGE_NAMES.get(option.language, option.language)}"
    if option.hangup:
        return "ends the call"
    if option.goto:
        return f"goes to {names.menu(option.goto)}"
    return ""


def _menus(flow: Flow, names: FlowNames, lang: str) -> list[tuple[Node, str, list[Step]]]:
    """Every menu, the main one first, then in the order a caller reaches them."""
    order, seen = [flow.start], {flow.start}
    for node_id in order:
        for option in flow.nodes[node_id].options:
            if option.goto and option.goto in flow.nodes and option.goto not in seen:
                seen.add(option.goto)
                order.append(option.goto)
    order += [node for node in flow.nodes if node not in seen]
    menus = []
    for node_id in order:
        node = flow.nodes[node_id]
        steps = [
            Step(option.key, option.label.get(lang, ""), _leads_to(option, flow, names, lang))
            for option in node.options
        ]
        menus.append((node, node.say.get(lang, ""), steps))
    return menus


@router.get("/lines", response_class=HTMLResponse)
def lines_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    rows = [row for row in line_rows(session) if staff.may_see(row.line.id)]
    return render(request, "lines.html", rows=rows)


@router.get("/lines/{slug}", response_class=HTMLResponse)
def line_page(
    request: Request, slug: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    line = visible_line(request, session, slug)
    revisions = session.scalars(
        select(FlowRevision)
        .where(FlowRevision.line_id == line.id)
        .order_by(FlowRevision.number.desc())
    ).all()
    return render(request, "line.html", line=line, revisions=revisions)


@router.get("/lines/{slug}/revisions/{raw_number}", response_class=HTMLResponse)
def revision_page(
    request: Request, slug: str, raw_number: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    line = visible_line(request, session, slug)
    number = parse_id(raw_number)
    revision = (
        session.scalars(
            select(FlowRevision).where(
                FlowRevision.line_id == line.id, FlowRevision.number == number
            )
        ).one_or_none()
        if number is not None
        else None
    )
    if revision is None:
        raise PageError(404, "Revision not found", f"The line {line.title} has no such revision.")
    try:
        flow: Flow | None = flow_of_text(revision.yaml, f"{slug}, revision {revision.number}")
    except FlowError:
        flow = None  # a draft that fails the check: its problems are listed instead
    names = flow_names(flow)
    previous = session.scalars(
        select(FlowRevision).where(
            FlowRevision.line_id == line.id, FlowRevision.number == revision.number - 1
        )
    ).first()
    changed = (
        changes(readable_flow(previous.yaml, "previous"), readable_flow(revision.yaml, "this"))
        if previous is not None
        else None
    )
    return render(
        request,
        "revision.html",
        line=line,
        revision=revision,
        changed=changed,
        flow=flow,
        names=names,
        languages=[(lang, LANGUAGE_NAMES.get(lang, lang)) for lang in flow.languages]
        if flow is not None
        else [],
        menus=(lambda lang: _menus(flow, names, lang)) if flow is not None else None,
    )


def test_calls(session: Session, calls: Sequence[Call]) -> set[int]:
    """Which of these calls heard a draft (a line's test numbers' calls): their revision was not
    published yet when they began."""
    revisions = {call.revision_id for call in calls if call.revision_id}
    if not revisions:
        return set()
    published: dict[int, datetime | None] = {
        revision_id: at
        for revision_id, at in session.execute(
            select(FlowRevision.id, FlowRevision.published_at).where(
                FlowRevision.id.in_(sorted(revisions))
            )
        )
    }

    def a_draft_then(call: Call) -> bool:
        if call.revision_id not in published:
            return False
        at = published[call.revision_id]
        return at is None or at > call.started_at

    return {call.id for call in calls if a_draft_then(call)}


def revision_heard(
    session: Session, revision_id: int | None, at: datetime | None = None
) -> tuple[str, int, str, bool] | None:
    """(line slug, revision number, line title, a draft then) of the revision a call heard
    (`at`: when it began): a draft is what only the line's test numbers hear."""
    if revision_id is None:
        return None
    found = session.execute(
        select(Line.slug, FlowRevision.number, Line.title, FlowRevision.published_at)
        .join(Line, Line.id == FlowRevision.line_id)
        .where(FlowRevision.id == revision_id)
    ).one_or_none()
    if found is None:
        return None
    published = found[3]
    draft = published is None or (at is not None and published > at)
    return (found[0], found[1], found[2], draft)
