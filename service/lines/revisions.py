"""Lines and their flow revisions in the database: add a line, set its numbers, publish a
revision, roll back, read the history. Services take a session and never commit; each change
moves the line book's version, so every process serves it within seconds (`book`).

A revision keeps the YAML exactly as written. Publishing checks it with the same code as
`phoneline flows check` and refuses it (nothing changes) when the check finds a problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.flowengine import FlowError
from service.flowengine.loader import Problem, parse
from service.flowengine.phrases import CARRIER_KEYWORDS
from service.flowengine.validate import check_document, flow_files
from service.models import FlowRevision, Line, LineBookVersion, LineNumber, utcnow
from service.phone import to_e164
from service.prompts.store import stored_prompts

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$")
KEYWORD = re.compile(r"^[A-Z0-9]{2,20}$")
SEED_AUTHOR = "flows/"
SERVICE_KEYWORDS = frozenset(
    {"HOLA", "ESPANOL", "MENU", "HI", "HELLO", "INICIO", "CALL", "LLAMAME", "LLAMENME", "LLAMEME"}
)
"""Words the SMS line answers itself, whatever the line (`service.texts.keywords`; a test
keeps the two the same): no line's keyword may be one of them, nor a carrier's."""
RESERVED_KEYWORDS = frozenset().union(*CARRIER_KEYWORDS.values(), SERVICE_KEYWORDS)


class LineError(ValueError):
    """A change that cannot be made, said for the person who asked."""


@dataclass(frozen=True)
class Checked:
    """A flow text as `phoneline flows check` sees it."""

    text: str
    content_hash: str
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@lru_cache(maxsize=32)
def check_text(text: str, name: str) -> Checked:
    """Check a flow's YAML (the same rules as `phoneline flows check`); `name` names it in
    the problems (`name:line: message`). Remembered: a seed file is checked by every process
    that starts."""
    try:
        document = parse(text, name)
    except FlowError as error:
        return Checked(text, "", error.problems)
    return Checked(text, document.content_hash, tuple(check_document(document)))


def bump(session: Session) -> None:
    """Move the line book's version (every process reloads lines and flows when it moves)."""
    insert = upsert(session, LineBookVersion).values(id=1, version=1, changed_at=utcnow())
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["id"],
            set_={"version": LineBookVersion.__table__.c.version + 1, "changed_at": utcnow()},
        )
    )


def line_named(session: Session, slug: str) -> Line:
    line = session.scalars(select(Line).where(Line.slug == slug)).one_or_none()
    if line is None:
        raise LineError(f"there is no line {slug!r} (phoneline lines list)")
    return line


def line_ids_named(session: Session, slugs: Sequence[str]) -> dict[str, int]:
    """Slug -> id of each line named (blank names left out); LineError for a name no line has
    (an account or a token limited to lines)."""
    wanted = sorted({slug.strip() for slug in slugs if slug.strip()})
    found = dict(session.execute(select(Line.slug, Line.id).where(Line.slug.in_(wanted))).all())
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        raise LineError(f"there is no line named {unknown[0][:40]!r}")
    return {slug: found[slug] for slug in wanted}


def normalized_number(number: str) -> str:
    e164 = to_e164(number)
    if e164 is None:
        raise LineError(f"{number!r} is not a phone number (write it as +1…)")
    return e164


def add_line(
    session: Session,
    slug: str,
    flow_text: str,
    *,
    author: str,
    numbers: Sequence[str] = (),
    title: str | None = None,
    keyword: str | None = None,
    default: bool = False,
    source: str = "flow",
) -> tuple[Line, FlowRevision]:
    """A new line with its numbers and its flow published as revision 1. LineError when the
    slug, a number or the keyword is taken or malformed; FlowError when the flow fails the
    check (nothing is added)."""
    if not SLUG.match(slug):
        raise LineError(f"{slug!r}: a line's name is 2-40 lower-case letters, digits and dashes")
    if session.scalars(select(Line.id).where(Line.slug == slug)).first() is not None:
        raise LineError(f"there is a line {slug!r} already")
    checked = check_text(flow_text, source)
    if not checked.ok:
        raise FlowError(checked.problems)
    first = session.scalar(select(func.count()).select_from(Line)) == 0
    line = Line(slug=slug, title=title or _title_of(flow_text) or slug, is_default=first)
    session.add(line)
    session.flush()
    if default and not first:
        make_default(session, line)
    if keyword:
        set_keyword(session, line, keyword)
    for number in numbers:
        assign_number(session, line, number)
    revision = _new_revision(session, line, checked, author, "first revision")
    _publish(session, line, revision, author)
    return line, revision


def assign_number(session: Session, line: Line, number: str) -> None:
    e164 = normalized_number(number)
    owner = session.scalar(select(LineNumber.line_id).where(LineNumber.number == e164))
    if owner is not None and owner != line.id:
        other = session.get(Line, owner)
        raise LineError(f"{e164} reaches the line {other.slug if other else owner!r} already")
    if owner is None:
        session.add(LineNumber(number=e164, line_id=line.id))
    bump(session)


def remove_number(session: Session, line: Line, number: str) -> None:
    e164 = normalized_number(number)
    found = session.get(LineNumber, e164)
    if found is None or found.line_id != line.id:
        raise LineError(f"{e164} is not a number of the line {line.slug!r}")
    session.delete(found)
    bump(session)


def set_keyword(session: Session, line: Line, keyword: str | None) -> None:
    if keyword is not None:
        keyword = keyword.strip().upper()
        if not KEYWORD.match(keyword):
            raise LineError(f"{keyword!r}: a keyword is 2-20 letters or digits")
        if keyword in RESERVED_KEYWORDS or keyword.isdigit():
            raise LineError(f"{keyword} is a word every line answers; choose another keyword")
        taken = session.scalars(
            select(Line.slug).where(Line.keyword == keyword, Line.id != line.id)
        ).first()
        if taken is not None:
            raise LineError(f"the keyword {keyword} starts the line {taken!r} already")
    line.keyword = keyword
    bump(session)


def make_default(session: Session, line: Line) -> None:
    session.execute(update(Line).where(Line.id != line.id).values(is_default=False))
    line.is_default = True
    bump(session)


def create_revision(
    session: Session, slug: str, flow_text: str, *, author: str, message: str = ""
) -> FlowRevision:
    """A draft revision (checked, not published): the API's "create", the editor's save. The
    line book moves, so the line's test numbers hear it at once (when its check passed)."""
    line = line_named(session, slug)
    revision = _new_revision(session, line, check_text(flow_text, f"{slug}.yaml"), author, message)
    bump(session)
    return revision


def publish_text(
    session: Session,
    slug: str,
    flow_text: str,
    *,
    author: str,
    message: str,
    source: str | None = None,
) -> FlowRevision:
    """Check `flow_text` and publish it as the line's next revision; FlowError (nothing
    changed) when the check finds a problem (each named `source:line`, default `SLUG.yaml`)."""
    line = line_named(session, slug)
    checked = check_text(flow_text, source or f"{slug}.yaml")
    if not checked.ok:
        raise FlowError(checked.problems)
    revision = _new_revision(session, line, checked, author, message)
    _publish(session, line, revision, author)
    return revision


def publish_revision(session: Session, slug: str, number: int, *, author: str) -> FlowRevision:
    """Publish a draft revision as it is (refused when its check found problems)."""
    line = line_named(session, slug)
    revision = revision_of(session, line, number)
    if revision.problems:
        raise LineError(f"revision {number} has problems and cannot be published")
    _publish(session, line, revision, author)
    return revision


def rollback(
    session: Session, slug: str, number: int, *, author: str, message: str
) -> FlowRevision:
    """Publish a copy of an earlier revision as the line's next one."""
    line = line_named(session, slug)
    earlier = revision_of(session, line, number)
    checked = check_text(earlier.yaml, f"{slug}.yaml")
    if not checked.ok:
        raise FlowError(checked.problems)
    copy = _new_revision(session, line, checked, author, message, copied_from=earlier.number)
    _publish(session, line, copy, author)
    return copy


def revision_of(session: Session, line: Line, number: int | None = None) -> FlowRevision:
    """Revision `number` of the line, or its published one."""
    if number is None:
        found = session.get(FlowRevision, line.published_revision_id or -1)
    else:
        found = session.scalars(
            select(FlowRevision).where(
                FlowRevision.line_id == line.id, FlowRevision.number == number
            )
        ).one_or_none()
    if found is None:
        raise LineError(f"the line {line.slug!r} has no revision {number}")
    return found


def history(session: Session, slug: str) -> list[FlowRevision]:
    line = line_named(session, slug)
    return list(
        session.scalars(
            select(FlowRevision)
            .where(FlowRevision.line_id == line.id)
            .order_by(FlowRevision.number.desc())
        )
    )


def numbers_of(session: Session, line: Line) -> list[str]:
    return list(
        session.scalars(
            select(LineNumber.number)
            .where(LineNumber.line_id == line.id)
            .order_by(LineNumber.number)
        )
    )


def seed_from_files(session: Session, flows_dir: Path) -> list[Line]:
    """On a first start (no line yet): each flow file under `flows_dir` becomes a line, its
    file published as revision 1 (the first is the default line). Nothing when lines exist."""
    if session.scalar(select(func.count()).select_from(Line)):
        return []
    added = []
    for path in flow_files(flows_dir):
        text = path.read_text(encoding="utf-8")
        checked = check_text(text, str(path))
        if not checked.ok:
            continue  # a broken seed file is not a line; `phoneline flows check` names it
        slug = _slug_of(text) or path.stem
        line, _ = add_line(session, slug, text, author=SEED_AUTHOR, source=str(path))
        added.append(line)
    return added


def _new_revision(
    session: Session,
    line: Line,
    checked: Checked,
    author: str,
    message: str,
    copied_from: int | None = None,
) -> FlowRevision:
    number = (
        session.scalar(select(func.max(FlowRevision.number)).where(FlowRevision.line_id == line.id))
        or 0
    ) + 1
    revision = FlowRevision(
        line_id=line.id,
        number=number,
        yaml=checked.text,
        content_hash=checked.content_hash,
        author=author[:64],
        message=message,
        problems=[str(problem) for problem in checked.problems],
        copied_from=copied_from,
    )
    session.add(revision)
    session.flush()
    return revision


def _publish(session: Session, line: Line, revision: FlowRevision, author: str) -> None:
    missing = _missing_recordings(session, revision.yaml)
    if missing:
        raise LineError(
            f"revision {revision.number} plays a recording the line does not keep "
            f"({missing[0][:16]}…): upload it again in the editor"
        )
    revision.published_at = utcnow()
    revision.published_by = author[:64]
    line.published_revision_id = revision.id
    session.flush()
    bump(session)


@lru_cache(maxsize=32)
def _data_of(text: str) -> object:
    try:
        return parse(text, "flow").data
    except FlowError:
        return None


def _missing_recordings(session: Session, text: str) -> list[str]:
    """The recordings the flow names (`recordings:`) that the line does not keep."""
    data = _data_of(text)
    recordings = data.get("recordings") if isinstance(data, Mapping) else None
    if not isinstance(recordings, Mapping):
        return []
    names = [
        str(recording.get("audio"))
        for by_language in recordings.values()
        if isinstance(by_language, Mapping)
        for recording in by_language.values()
        if isinstance(recording, Mapping)
    ]
    kept = stored_prompts(session, names)
    return [name for name in names if name not in kept]


def _title_of(text: str) -> str | None:
    data = _data_of(text)
    title = data.get("title") if isinstance(data, Mapping) else None
    if isinstance(title, Mapping):
        value = title.get("en") or next(iter(title.values()), None)
        return str(value) if value else None
    return None


def _slug_of(text: str) -> str | None:
    data = _data_of(text)
    name = str(data.get("name", "")) if isinstance(data, Mapping) else ""
    return name if SLUG.match(name) else None
