"""Editing a line in the browser (`/staff/lines/{slug}/edit`): its flow as YAML, saved as a
draft revision and checked by the same code as `phoneline flows check` (each problem with its
line), what changed against the published revision (by menu and language, old and new words
side by side), published with a message, and any earlier revision rolled back to (it asks
first, and publishes a copy). Editors and admins only; only an admin changes a contact's number,
typing each new one again before it is published. Two people saving on the same revision: the
second is refused, shown what changed, and keeps what they typed. Every save, publish and
rollback is in the audit log."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.flowengine import Flow, FlowError
from service.flowengine.render import spoken_digits
from service.flowengine.validate import check_text_paths, flow_of_text
from service.lines.revisions import (
    LineError,
    bump,
    create_revision,
    publish_revision,
    rollback,
)
from service.models import FlowRevision, Line, LineTestNumber
from service.phone import e164_of
from service.sessions import ReadSessionDep, SessionDep
from service.staff.auth import client_address
from service.staff.field_problems import place_problems
from service.staff.headlines import LANGUAGE_NAMES
from service.staff.lines import visible_line
from service.staff.names import flow_names
from service.staff.queries import parse_id
from service.staff.revision_changes import Change, changes, number_changes, readable_flow
from service.staff.simulator import simulator_page, simulator_step
from service.staff.web import (
    CheckedForm,
    CurrentStaff,
    PageError,
    Staff,
    may_edit_lines,
    pages_router,
    render,
)
from service.staff.words import groups, measures, with_words

router = pages_router()
MAX_FLOW_CHARS = 200_000


def staff_phone(raw: str) -> str | None:
    """A staff phone as written ("(804) 555-0123", "+44 20 …"), in E.164; None if it is not a
    valid number (a number without +country is read as the clinic's, the US)."""
    try:
        parsed = phonenumbers.parse(raw.strip()[:40], "US")
    except phonenumbers.NumberParseException:
        return None
    return e164_of(parsed) if phonenumbers.is_valid_number(parsed) else None


def editor_staff(staff: CurrentStaff) -> Staff:
    if not may_edit_lines(staff):
        raise PageError(
            403,
            "Not allowed",
            "Editing the lines is for editors and administrators; you can read every revision.",
        )
    return staff


EditorStaff = Annotated[Staff, Depends(editor_staff)]


def changed_since(session: Session, line: Line, base: int, newest: FlowRevision) -> list[Change]:
    """What changed from revision `base` (the one a page was opened on) to the newest."""
    theirs = session.scalars(
        select(FlowRevision).where(FlowRevision.line_id == line.id, FlowRevision.number == base)
    ).first()
    return changes(
        readable_flow(theirs.yaml, "base") if theirs is not None else None,
        readable_flow(newest.yaml, "newest"),
    )


def revisions_of(session: Session, line: Line) -> tuple[FlowRevision | None, FlowRevision | None]:
    """(the newest revision, the published one)."""
    newest = session.scalars(
        select(FlowRevision)
        .where(FlowRevision.line_id == line.id)
        .order_by(FlowRevision.number.desc())
        .limit(1)
    ).first()
    published = session.get(FlowRevision, line.published_revision_id or -1)
    return newest, published


def newest_flow(session: Session, line: Line) -> tuple[FlowRevision, FlowRevision | None, Flow]:
    """The line's newest revision, its published one, and the newest's flow, for a page that
    edits it without YAML; a page sending to the YAML editor when it cannot be read as one."""
    newest, published = revisions_of(session, line)
    flow = readable_flow(newest.yaml, "newest") if newest is not None else None
    if newest is None or flow is None:
        raise PageError(400, "Use the YAML editor", "The newest revision cannot be read as a flow.")
    return newest, published, flow


def _editor_page(
    request: Request,
    session: Session,
    line: Line,
    *,
    text: str | None = None,
    base: int | None = None,
    error: str | None = None,
    stale: list[Change] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    newest, published = revisions_of(session, line)
    draft = newest if newest is not None and newest is not published else None
    published_flow = readable_flow(published.yaml, "published") if published is not None else None
    draft_flow = readable_flow(draft.yaml, "draft") if draft is not None else None
    shown = newest.yaml if newest is not None else ""
    return render(
        request,
        "editor.html",
        status_code=status_code,
        line=line,
        text=shown if text is None else text,
        base=(newest.number if newest is not None else 0) if base is None else base,
        draft=draft,
        published=published,
        changed=changes(published_flow, draft_flow),
        numbers=number_changes(published_flow, draft_flow),
        spoken=spoken_digits,
        stale=stale,
        error=error,
        message=message,
        testers=session.scalars(
            select(LineTestNumber)
            .where(LineTestNumber.line_id == line.id)
            .order_by(LineTestNumber.number)
        ).all(),
    )


@router.post("/lines/{slug}/test-numbers", response_class=HTMLResponse)
def add_test_number(
    request: Request, slug: str, staff: EditorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """A staff phone that hears the draft when it calls or texts the line."""
    line = visible_line(request, session, slug)
    number = staff_phone(form.get("number", ""))
    if number is None:
        return _editor_page(
            request,
            session,
            line,
            status_code=400,
            error="That is not a phone number: write it like (804) 555-0123.",
        )
    known = select(LineTestNumber.id).where(
        LineTestNumber.line_id == line.id, LineTestNumber.number == number
    )
    if session.scalar(known) is None:
        session.add(LineTestNumber(line_id=line.id, number=number, added_by=staff.username))
        bump(session)
        record_audit(
            session,
            staff.username,
            "test-number-added",
            f"{line.slug}: {number}",
            client_address=client_address(request),
        )
    return RedirectResponse(f"/staff/lines/{line.slug}/edit?done=tester", status_code=303)


@router.post("/lines/{slug}/test-numbers/{raw_id}/remove", response_class=HTMLResponse)
def remove_test_number(
    request: Request,
    slug: str,
    raw_id: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    line = visible_line(request, session, slug)
    tester = session.get(LineTestNumber, parse_id(raw_id) or 0)
    if tester is None or tester.line_id != line.id:
        raise PageError(404, "Not found", "The line has no such test number.")
    session.delete(tester)
    bump(session)
    record_audit(
        session,
        staff.username,
        "test-number-removed",
        f"{line.slug}: {tester.number}",
        client_address=client_address(request),
    )
    return RedirectResponse(f"/staff/lines/{line.slug}/edit?done=tester-removed", status_code=303)


@router.get("/lines/{slug}/edit", response_class=HTMLResponse)
def edit_page(request: Request, slug: str, staff: EditorStaff, session: ReadSessionDep) -> Response:
    line = visible_line(request, session, slug)
    done = {
        "saved": "The draft is saved and checked.",
        "published": "Published: new calls and texts hear it within a few seconds.",
        "tester": "The test number is added: its calls and texts hear the draft within seconds.",
        "tester-removed": "The test number is removed: it hears the live revision again.",
    }.get(request.query_params.get("done", ""))
    return _editor_page(request, session, line, message=done)


@router.post("/lines/{slug}/edit", response_class=HTMLResponse)
def save_draft(
    request: Request, slug: str, staff: EditorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    line = visible_line(request, session, slug)
    text = form.get("flow", "").replace("\r\n", "\n")
    base = parse_id(form.get("base", "")) or 0
    if not text.strip() or len(text) > MAX_FLOW_CHARS:
        return _editor_page(
            request,
            session,
            line,
            text=text,
            base=base,
            status_code=400,
            error="The flow is empty, or too long.",
        )
    newest, published = revisions_of(session, line)
    if newest is not None and newest.number != base:
        # Someone saved or published since this page was opened: nothing is saved, what they
        # changed is shown, and what this person typed stays in the box.
        since = changed_since(session, line, base, newest)
        return _editor_page(
            request,
            session,
            line,
            text=text,
            base=base,
            stale=since,
            status_code=409,
            error=f"Revision {newest.number} was saved by {newest.author} since you opened "
            "this page: nothing was saved. Copy your changes, reload, and make them again.",
        )
    return _save(request, session, line, staff, text, published, base=base)


def _save(
    request: Request,
    session: Session,
    line: Line,
    staff: Staff,
    text: str,
    published: FlowRevision | None,
    *,
    base: int | None = None,
) -> Response:
    """Save `text` as a draft (not when an editor changed a number), audited; then the editor
    page, with its check and what changed."""
    refusal = number_refusal(staff, text, published)
    if refusal is not None:
        return _editor_page(
            request, session, line, text=text, base=base, status_code=403, error=refusal
        )
    save_as_draft(request, session, line, staff, text)
    return RedirectResponse(f"/staff/lines/{line.slug}/edit?done=saved", status_code=303)


def number_refusal(staff: Staff, text: str, published: FlowRevision | None) -> str | None:
    """Why `staff` may not save `text` as a draft: it changes a number, and they are not an
    administrator. None when they may."""
    published_flow = readable_flow(published.yaml, "published") if published is not None else None
    moved = number_changes(published_flow, readable_flow(text, "draft"))
    if not moved or staff.role == "admin":
        return None
    contacts = ", ".join(change.contact for change in moved)
    return (
        f"Only an administrator changes numbers ({contacts}): "
        "change the words, and ask an administrator for the numbers."
    )


def save_as_draft(
    request: Request, session: Session, line: Line, staff: Staff, text: str
) -> FlowRevision:
    """`text` as the line's next revision, a draft checked as `flows check` checks (saved with
    its problems), in the audit log. Every page that edits a line saves through here, after
    `number_refusal`."""
    revision = create_revision(session, line.slug, text, author=staff.username)
    problems = len(revision.problems or [])
    record_audit(
        session, staff.username, "revision-saved",
        f"{line.slug} revision {revision.number} ({problems} problem(s))",
        client_address=client_address(request),
    )  # fmt: skip
    return revision


@router.post("/lines/{slug}/revisions/{raw_number}/publish", response_class=HTMLResponse)
def publish(
    request: Request,
    slug: str,
    raw_number: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    line = visible_line(request, session, slug)
    number = parse_id(raw_number) or 0
    why = " ".join(form.get("message", "").split())[:500]
    newest, published = revisions_of(session, line)
    if newest is None or newest.number != number or newest is published:
        return _editor_page(
            request,
            session,
            line,
            status_code=409,
            error="That draft is not the newest revision any more: reload.",
        )
    if not why:
        return _editor_page(
            request,
            session,
            line,
            status_code=400,
            error="Say why, in a few words: the message goes with the revision.",
        )
    published_flow = readable_flow(published.yaml, "published") if published is not None else None
    for change in number_changes(published_flow, readable_flow(newest.yaml, "draft")):
        if staff.role != "admin":
            return _editor_page(
                request,
                session,
                line,
                status_code=403,
                error="Only an administrator publishes a change of number.",
            )
        for index, new in enumerate(change.new):
            if form.get(f"again-{change.contact}-{index}", "").strip() != new:
                return _editor_page(
                    request,
                    session,
                    line,
                    status_code=400,
                    error=f"Type the new number of {change.contact} again, exactly: {new}.",
                )
    try:
        publish_revision(session, line.slug, number, author=staff.username)
    except LineError as error:
        return _editor_page(request, session, line, status_code=400, error=str(error))
    newest.message = why
    record_audit(
        session,
        staff.username,
        "revision-published",
        f"{line.slug} revision {number}: {why}",
        client_address=client_address(request),
    )
    return RedirectResponse(f"/staff/lines/{line.slug}/edit?done=published", status_code=303)


@router.get("/lines/{slug}/revisions/{raw_number}/rollback", response_class=HTMLResponse)
def rollback_page(
    request: Request, slug: str, raw_number: str, staff: EditorStaff, session: ReadSessionDep
) -> Response:
    line = visible_line(request, session, slug)
    number = parse_id(raw_number) or 0
    earlier = session.scalars(
        select(FlowRevision).where(FlowRevision.line_id == line.id, FlowRevision.number == number)
    ).first()
    if earlier is None:
        raise PageError(404, "Revision not found", f"The line {line.title} has no such revision.")
    _, published = revisions_of(session, line)
    return render(
        request,
        "rollback.html",
        line=line,
        revision=earlier,
        changed=changes(
            readable_flow(published.yaml, "published") if published is not None else None,
            readable_flow(earlier.yaml, "earlier"),
        ),
    )


@router.post("/lines/{slug}/revisions/{raw_number}/rollback")
def roll_back(
    request: Request,
    slug: str,
    raw_number: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    line = visible_line(request, session, slug)
    number = parse_id(raw_number) or 0
    count = session.scalar(
        select(func.count()).where(FlowRevision.line_id == line.id, FlowRevision.number == number)
    )
    if not count:
        raise PageError(404, "Revision not found", f"The line {line.title} has no such revision.")
    try:
        copy = rollback(
            session,
            line.slug,
            number,
            author=staff.username,
            message=f"Rolled back to revision {number}",
        )
    except (LineError, FlowError) as error:
        raise PageError(400, "Cannot roll back", str(error)) from None
    record_audit(
        session,
        staff.username,
        "revision-rolled-back",
        f"{line.slug} revision {copy.number}, a copy of revision {number}",
        client_address=client_address(request),
    )
    return RedirectResponse(f"/staff/lines/{line.slug}?done=rolled-back", status_code=303)


def _draftreadable_flow(request: Request, session: Session, slug: str, raw_number: str) -> Flow:
    line = visible_line(request, session, slug)
    number = parse_id(raw_number) or 0
    revision = session.scalars(
        select(FlowRevision).where(FlowRevision.line_id == line.id, FlowRevision.number == number)
    ).first()
    if revision is None:
        raise PageError(404, "Revision not found", f"The line {line.title} has no such revision.")
    try:
        return flow_of_text(revision.yaml, f"{slug}, revision {number}")
    except FlowError:
        raise PageError(
            400, "Fix the problems first", "A revision whose check found problems cannot be tried."
        ) from None


@router.get("/lines/{slug}/revisions/{raw_number}/simulator", response_class=HTMLResponse)
def preview_start(
    request: Request, slug: str, raw_number: str, staff: CurrentStaff, session: ReadSessionDep
) -> Response:
    """The simulator on a revision (a draft before it is published): voice and SMS, in each
    language, as the webhooks would answer, nothing recorded."""
    flow = _draftreadable_flow(request, session, slug, raw_number)
    action = f"/staff/lines/{slug}/revisions/{raw_number}/simulator"
    return simulator_page(request, flow, None, action=action, preview=f"revision {raw_number}")


@router.post("/lines/{slug}/revisions/{raw_number}/simulator", response_class=HTMLResponse)
def preview_step(
    request: Request,
    slug: str,
    raw_number: str,
    staff: CurrentStaff,
    form: CheckedForm,
    session: ReadSessionDep,
) -> Response:
    flow = _draftreadable_flow(request, session, slug, raw_number)
    action = f"/staff/lines/{slug}/revisions/{raw_number}/simulator"
    return simulator_step(request, flow, form, action=action, preview=f"revision {raw_number}")


def _words_page(
    request: Request,
    session: Session,
    line: Line,
    *,
    typed: dict[str, str] | None = None,
    base: int | None = None,
    error: str | None = None,
    stale: list[Change] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    newest, _, flow = newest_flow(session, line)
    sections = groups(flow, flow_names(flow).menus)
    anchors = [path for group in sections for path in (group.path, *group.paths)]
    return render(
        request,
        "words.html",
        status_code=status_code,
        line=line,
        base=(newest.number if newest is not None else 0) if base is None else base,
        groups=sections,
        problems=place_problems(check_text_paths(newest.yaml, f"{line.slug}.yaml"), anchors),
        measures=measures(flow, sections),
        languages=[(lang, LANGUAGE_NAMES.get(lang, lang)) for lang in flow.languages],
        typed=typed or {},
        error=error,
        stale=stale,
    )


@router.get("/lines/{slug}/words", response_class=HTMLResponse)
def words_page(
    request: Request, slug: str, staff: EditorStaff, session: ReadSessionDep
) -> Response:
    """Every text of the line's newest revision in plain fields: no YAML."""
    return _words_page(request, session, visible_line(request, session, slug))


@router.post("/lines/{slug}/words", response_class=HTMLResponse)
def save_words(
    request: Request, slug: str, staff: EditorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    line = visible_line(request, session, slug)
    base = parse_id(form.get("base", "")) or 0
    newest, published = revisions_of(session, line)
    if newest is None:
        raise PageError(404, "No revision", "The line has no flow to edit.")
    if newest.number != base:
        return _words_page(
            request, session, line, typed=dict(form), base=base, status_code=409,
            stale=changed_since(session, line, base, newest),
            error=f"Revision {newest.number} was saved by {newest.author} since you opened "
            "this page: nothing was saved. What you typed is below; reload to start again.",
        )  # fmt: skip
    flow = readable_flow(newest.yaml, "newest")
    if flow is None:
        raise PageError(400, "Use the YAML editor", "The newest revision cannot be read as a flow.")
    text = with_words(newest.yaml, flow, dict(form))
    if text == newest.yaml:
        return _words_page(request, session, line, error="Nothing changed: nothing was saved.")
    return _save(request, session, line, staff, text, published, base=base)
