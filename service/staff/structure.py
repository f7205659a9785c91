"""A line's menus and contacts, edited without YAML (`/staff/lines/{slug}/menus`): menu by
menu, each option in the order it is said (its key, its English label, where it leads), with
small forms to add, remove, move and re-key options, add and remove menus; each contact's office
hours (time zone, weekly spans, how they are said) and, for administrators, its numbers.

Each change edits the newest revision's YAML (`flow_edits`, comments kept) and is saved through
the editor's path (`editor.number_refusal`, `editor.save_as_draft`): a draft checked by the same
code as `phoneline flows check`, saved with its problems, which the page then shows at the
fields they are about. A form opened on an older revision is refused (409) and keeps what was
typed; only an administrator changes a number."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from service.flowengine import Flow
from service.flowengine.loader import DAYS
from service.flowengine.model import Option
from service.flowengine.render import spoken_digits
from service.flowengine.validate import check_text_paths
from service.models import Line
from service.sessions import ReadSessionDep, SessionDep
from service.staff.editor import (
    EditorStaff,
    changed_since,
    newest_flow,
    number_refusal,
    revisions_of,
    save_as_draft,
    staff_phone,
)
from service.staff.field_problems import place_problems
from service.staff.flow_edits import (
    Refused,
    Span,
    add_menu,
    add_option,
    change_key,
    move_option,
    remove_menu,
    remove_option,
    set_hours,
    set_numbers,
)
from service.staff.headlines import LANGUAGE_NAMES
from service.staff.lines import visible_line
from service.staff.names import FlowNames, flow_names
from service.staff.queries import parse_id
from service.staff.revision_changes import Change, number_changes, readable_flow
from service.staff.web import CheckedForm, PageError, pages_router, render

router = pages_router()

US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
DAY_NAMES = dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))
OPENS = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
CLOSES = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
DONE = {
    "option-added": "The option is added.",
    "option-removed": "The option is removed.",
    "option-moved": "The option is moved.",
    "key-changed": "The key is changed.",
    "menu-added": "The menu is added: give an option that leads to it, or callers never hear it.",
    "menu-removed": "The menu is removed.",
    "hours": "The office hours are changed.",
    "numbers": "The numbers are changed: each is shown below as a caller will hear it.",
}
Edit = Callable[[str, Flow], str]
"""A change of the newest revision's YAML (and the flow it describes), or `Refused`."""


@dataclass(frozen=True)
class OptionRow:
    index: int
    option: Option
    label: str
    leads: str


@dataclass(frozen=True)
class MenuView:
    id: str
    title: str
    is_start: bool
    rows: list[OptionRow]


@dataclass(frozen=True)
class SpanRow:
    days: frozenset[str]
    opens: str
    closes: str


@dataclass(frozen=True)
class NumberRow:
    number: str
    display: str
    spoken: str


@dataclass(frozen=True)
class ContactView:
    id: str
    title: str
    timezone: str
    spans: list[SpanRow]
    description: dict[str, str]
    numbers: list[NumberRow]


def _leads(option: Option, names: FlowNames) -> str:
    if option.goto is not None:
        return f"the menu {names.menu(option.goto)}"
    if option.connect is not None:
        return f"puts the caller through to {names.contact(option.connect)}"
    if option.text:
        return "texts the numbers of " + ", ".join(names.contact(each) for each in option.text)
    if option.language is not None:
        return f"changes the language to {LANGUAGE_NAMES.get(option.language, option.language)}"
    return "hangs up"


def _menus(flow: Flow, names: FlowNames) -> list[MenuView]:
    lang = flow.default_language
    return [
        MenuView(
            node.id,
            names.menu(node.id),
            node.id == flow.start,
            [
                OptionRow(index, option, option.label.get(lang, ""), _leads(option, names))
                for index, option in enumerate(node.options)
            ],
        )
        for node in flow.nodes.values()
    ]


def _contacts(flow: Flow, names: FlowNames) -> list[ContactView]:
    found = []
    for contact in flow.contacts.values():
        hours = contact.hours
        spans = [
            SpanRow(
                frozenset(DAYS[day] for day in span.days),
                span.opens.strftime("%H:%M"),
                "24:00" if span.closes.second == 59 else span.closes.strftime("%H:%M"),
            )
            for span in (hours.spans if hours is not None else ())
        ]
        numbers = [
            NumberRow(number, display, spoken_digits(number))
            for number, display in zip(contact.numbers, contact.display, strict=True)
        ]
        found.append(
            ContactView(
                contact.id,
                names.contact(contact.id),
                hours.timezone if hours is not None else US_ZONES[0],
                spans,
                dict(hours.description) if hours is not None else {},
                numbers,
            )
        )
    return found


def _anchors(flow: Flow) -> list[tuple[str | int, ...]]:
    """The YAML paths the page shows problems at, in page order."""
    found: list[tuple[str | int, ...]] = []
    for node in flow.nodes.values():
        found += [("nodes", node.id), ("nodes", node.id, "options")]
        for index in range(len(node.options)):
            option: tuple[str | int, ...] = ("nodes", node.id, "options", index)
            found += [option, (*option, "key")]
    for contact in flow.contacts.values():
        hours = ("contacts", contact.id, "hours")
        found += [("contacts", contact.id), hours, (*hours, "timezone")]
        for index in range(len(contact.numbers)):
            found.append(("contacts", contact.id, "numbers", index, "number"))
    return found


def _menus_page(
    request: Request,
    session: Session,
    line: Line,
    *,
    typed: tuple[str, Mapping[str, str]] = ("", {}),
    refused: Mapping[str, str] | None = None,
    base: int | None = None,
    error: str | None = None,
    stale: list[Change] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    newest, published, flow = newest_flow(session, line)
    names = flow_names(flow)
    published_flow = readable_flow(published.yaml, "published") if published is not None else None
    typed_form, typed_values = typed

    def value(form_id: str, field: str, shown: str) -> str:
        """What was typed in this form's field, when it was refused; else what the flow has."""
        return typed_values.get(field, "") if form_id == typed_form else shown

    leads = [(f"goto:{menu}", f"the menu {names.menu(menu)}") for menu in flow.nodes]
    leads += [
        (f"connect:{contact.id}", f"put through to {names.contact(contact.id)}")
        for contact in flow.contacts.values()
        if contact.numbers
    ]
    leads += [
        (f"text:{each}", f"text the numbers of {names.contact(each)}") for each in flow.contacts
    ]
    return render(
        request,
        "structure.html",
        status_code=status_code,
        line=line,
        base=newest.number if base is None else base,
        newest=newest,
        is_draft=newest is not published,
        menus=_menus(flow, names),
        contacts=_contacts(flow, names),
        problems=place_problems(check_text_paths(newest.yaml, f"{line.slug}.yaml"), _anchors(flow)),
        languages=[(lang, LANGUAGE_NAMES.get(lang, lang)) for lang in flow.languages],
        leads=leads,
        zones=US_ZONES,
        days=DAY_NAMES,
        moved=number_changes(published_flow, flow),
        spoken=spoken_digits,
        value=value,
        typed_form=typed_form,
        refused=refused or {},
        error=error,
        stale=stale,
        message=message,
    )


@router.get("/lines/{slug}/menus", response_class=HTMLResponse)
def menus_page(
    request: Request, slug: str, staff: EditorStaff, session: ReadSessionDep
) -> Response:
    line = visible_line(request, session, slug)
    done = DONE.get(request.query_params.get("done", ""))
    if done:
        done += " The draft is saved and checked; callers hear nothing of it until it is published."
    return _menus_page(request, session, line, message=done)


def _change(
    request: Request,
    session: Session,
    slug: str,
    staff: EditorStaff,
    form: Mapping[str, str],
    form_id: str,
    edit: Edit,
    done: str,
) -> Response:
    """Make `edit` on the newest revision, and save it as a draft the editor's way; refused
    (nothing saved, what was typed kept) when the page was opened on an older revision, when
    the change cannot be made, or when it moves a number and `staff` is not an administrator."""
    line = visible_line(request, session, slug)
    base = parse_id(form.get("base", "")) or 0
    newest, published = revisions_of(session, line)
    if newest is None:
        raise PageError(404, "No revision", "The line has no flow to edit.")
    typed = (form_id, form)
    if newest.number != base:
        return _menus_page(
            request, session, line, typed=typed, base=base, status_code=409,
            stale=changed_since(session, line, base, newest),
            error=f"Revision {newest.number} was saved by {newest.author} since you opened "
            "this page: nothing was saved. What you typed is below; reload to start again.",
        )  # fmt: skip
    flow = readable_flow(newest.yaml, "newest")
    if flow is None:
        raise PageError(400, "Use the YAML editor", "The newest revision cannot be read as a flow.")
    try:
        text = edit(newest.yaml, flow)
    except Refused as refused:
        at = {f"{form_id}.{refused.field}": refused.message} if refused.field else {}
        return _menus_page(
            request, session, line, typed=typed, refused=at, status_code=400,
            error="Nothing was saved: " + (refused.message if not at else "see the form below."),
        )  # fmt: skip
    if text == newest.yaml:
        return _menus_page(request, session, line, message="Nothing changed: nothing was saved.")
    refusal = number_refusal(staff, text, published)
    if refusal is not None:
        return _menus_page(request, session, line, typed=typed, status_code=403, error=refusal)
    save_as_draft(request, session, line, staff, text)
    return RedirectResponse(f"/staff/lines/{line.slug}/menus?done={done}", status_code=303)


def _by_language(form: Mapping[str, str], prefix: str, flow: Flow) -> dict[str, str]:
    return {lang: form.get(f"{prefix}-{lang}", "") for lang in flow.languages}


@router.post("/lines/{slug}/menus/add", response_class=HTMLResponse)
def add_a_menu(
    request: Request, slug: str, staff: EditorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    def edit(text: str, flow: Flow) -> str:
        title = " ".join(form.get("title", "").split())
        if not title:
            raise Refused("title", "Give the menu a name: its id in the flow is made from it.")
        return add_menu(text, title, _by_language(form, "say", flow))[0]

    return _change(request, session, slug, staff, form, "add-menu", edit, "menu-added")


@router.post("/lines/{slug}/menus/{node_id}/remove", response_class=HTMLResponse)
def remove_a_menu(
    request: Request,
    slug: str,
    node_id: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    def edit(text: str, flow: Flow) -> str:
        return remove_menu(text, flow, node_id)

    form_id = f"remove-menu-{node_id}"
    return _change(request, session, slug, staff, form, form_id, edit, "menu-removed")


@router.post("/lines/{slug}/menus/{node_id}/options", response_class=HTMLResponse)
def add_an_option(
    request: Request,
    slug: str,
    node_id: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    def edit(text: str, flow: Flow) -> str:
        label = _by_language(form, "label", flow)
        return add_option(text, node_id, form.get("key", ""), label, form.get("leads", ""))

    form_id = f"add-option-{node_id}"
    return _change(request, session, slug, staff, form, form_id, edit, "option-added")


@router.post("/lines/{slug}/menus/{node_id}/options/{raw_index}", response_class=HTMLResponse)
def change_an_option(
    request: Request,
    slug: str,
    node_id: str,
    raw_index: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """One option's form: its new key, or up, down, remove (the button pressed)."""
    index = int(raw_index) if raw_index.isascii() and raw_index.isdigit() else -1
    action = form.get("do", "")
    edits: dict[str, tuple[Edit, str]] = {
        "key": (lambda text, flow: change_key(text, node_id, index, form.get("key", "")),
                "key-changed"),
        "up": (lambda text, flow: move_option(text, node_id, index, -1), "option-moved"),
        "down": (lambda text, flow: move_option(text, node_id, index, 1), "option-moved"),
        "remove": (lambda text, flow: remove_option(text, node_id, index), "option-removed"),
    }  # fmt: skip
    if action not in edits:
        raise PageError(400, "Choose a change", "Press one of the option's buttons.")
    edit, done = edits[action]
    form_id = f"option-{node_id}-{index}"
    return _change(request, session, slug, staff, form, form_id, edit, done)


@router.post("/lines/{slug}/contacts/{contact_id}/hours", response_class=HTMLResponse)
def change_hours(
    request: Request,
    slug: str,
    contact_id: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """The whole hours form: the zone, each span kept (or ticked for removal), a new span when
    one is filled in, and how the hours are said."""

    def edit(text: str, flow: Flow) -> str:
        contact = flow.contacts.get(contact_id)
        if contact is None:
            raise Refused("", f"There is no contact {contact_id!r}: reload the page.")
        zone = form.get("other-timezone", "").strip() or form.get("timezone", "").strip()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Refused(
                "other-timezone",
                f"{zone[:60]!r} is not a time zone: choose one, or type one like America/New_York.",
            ) from None
        count = len(contact.hours.spans) if contact.hours is not None else 0
        spans = [
            span
            for prefix in [*(f"span-{index}" for index in range(count)), "span-new"]
            if (span := _span(form, prefix)) is not None
        ]
        return set_hours(text, contact_id, zone, spans, _by_language(form, "description", flow))

    form_id = f"hours-{contact_id}"
    return _change(request, session, slug, staff, form, form_id, edit, "hours")


def _span(form: Mapping[str, str], prefix: str) -> Span | None:
    """The span of the form's fields named `prefix`-…; None when it is ticked for removal, or
    is the blank new one."""
    days = tuple(day for day in DAYS if form.get(f"{prefix}-{day}"))
    opens = form.get(f"{prefix}-from", "").strip()
    closes = form.get(f"{prefix}-to", "").strip()
    if form.get(f"{prefix}-remove") or (prefix == "span-new" and not (days or opens or closes)):
        return None
    if not days:
        raise Refused(f"{prefix}-days", "Tick the days it is open.")
    if not OPENS.match(opens):
        raise Refused(f"{prefix}-from", "Write the time it opens like 08:00.")
    if not CLOSES.match(closes) or closes <= opens:
        raise Refused(f"{prefix}-to", "Write the time it closes like 16:30, after it opens.")
    return Span(days, opens, closes)


@router.post("/lines/{slug}/contacts/{contact_id}/numbers", response_class=HTMLResponse)
def change_numbers(
    request: Request,
    slug: str,
    contact_id: str,
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """An administrator's: the numbers a contact is put through to, in the order tried."""
    if not staff.is_admin:
        line = visible_line(request, session, slug)
        return _menus_page(
            request, session, line, status_code=403,
            error="Only an administrator changes numbers: ask an administrator.",
        )  # fmt: skip

    def edit(text: str, flow: Flow) -> str:
        contact = flow.contacts.get(contact_id)
        if contact is None:
            raise Refused("", f"There is no contact {contact_id!r}: reload the page.")
        rows = [
            (f"number-{index}", form.get(f"number-{index}", ""), form.get(f"display-{index}", ""))
            for index in range(len(contact.numbers))
            if not form.get(f"remove-{index}")
        ]
        if form.get("number-new", "").strip():
            rows.append(("number-new", form["number-new"], form.get("display-new", "")))
        numbers = []
        for field, raw, display in rows:
            number = staff_phone(raw)
            if number is None:
                raise Refused(
                    field,
                    f"{raw.strip()[:40]!r} is not a number a call can be put through to: "
                    "write it like (804) 555-0123, or +44 20 7946 0000.",
                )
            written = " ".join(display.split())[:80] or phonenumbers.format_number(
                phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL
            )
            numbers.append((number, written))
        return set_numbers(text, contact_id, numbers)

    form_id = f"numbers-{contact_id}"
    return _change(request, session, slug, staff, form, form_id, edit, "numbers")
