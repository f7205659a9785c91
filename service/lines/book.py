"""The line book: this process's view of the lines (numbers, keywords, the default) and their
flows, kept current by a thread that reads one counter (`line_book_version`) every second and
reloads when it moves, so a publish is live in every process within seconds, with no restart.

A call keeps the revision it began with (its id travels in the signed action URL): the book
keeps the flows of revisions it has served (and loads an older one from the database when asked
for it), and a revision it cannot find is answered with the line's published one.

The webhooks never wait for the database here: they read the book in memory. The book that was
last loaded is kept under var/ (`lines/book.json`), so a process that starts while the
database is away serves the last published revisions; with neither, the flow files under
`FLOWS_DIR` (what a fresh `make run` seeds the database with).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.config import DEFAULT_TIMEZONE
from service.db import DATABASE_ERRORS, Database, describe_error
from service.flowengine import Flow, FlowError
from service.flowengine.hours import Closure
from service.flowengine.validate import flow_files, flow_of_text
from service.lines.closures import engine_closures, list_closures
from service.lines.revisions import seed_from_files
from service.metrics import FLOW_LOADED
from service.models import FlowRevision, Line, LineBookVersion, LineNumber, LineTestNumber
from service.phone import to_e164

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
OLD_REVISIONS_KEPT = 64
SNAPSHOT = Path("lines") / "book.json"


@dataclass(frozen=True)
class LineView:
    """A line as the webhooks need it."""

    id: int
    slug: str
    title: str
    keyword: str | None
    is_default: bool
    numbers: tuple[str, ...]
    revision_id: int
    """Its published revision (0: a flow file read because nothing else could be)."""
    revision_number: int
    test_numbers: tuple[str, ...] = ()
    """Staff phones that hear the draft (`draft_revision_id`) when they call or text."""
    draft_revision_id: int = 0
    """Its newest revision, when newer than the published one and its check passed (0: none)."""


@dataclass(frozen=True)
class Snapshot:
    version: int
    lines: tuple[LineView, ...]
    flows: dict[int, Flow] = field(default_factory=dict)
    """Published revision id -> its flow."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "by_number", {n: line for line in self.lines for n in line.numbers}
        )
        object.__setattr__(self, "by_slug", {line.slug: line for line in self.lines})
        object.__setattr__(
            self, "by_keyword", {line.keyword: line for line in self.lines if line.keyword}
        )
        default = next((line for line in self.lines if line.is_default), None)
        object.__setattr__(self, "default", default or (self.lines[0] if self.lines else None))

    by_number: dict[str, LineView] = field(init=False)
    by_slug: dict[str, LineView] = field(init=False)
    by_keyword: dict[str, LineView] = field(init=False)
    default: LineView | None = field(init=False)


EMPTY = Snapshot(-1, ())


class LineBook:
    """See the module's text."""

    def __init__(
        self,
        database: Callable[[], Database],
        var_dir: Path,
        flows_dir: Path,
        *,
        refresh_every: float = REFRESH_SECONDS,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        self._database = database
        self.timezone = timezone
        """The clinic's time zone, the closures' (`service.lines.closures`)."""
        self.snapshot_path = var_dir / SNAPSHOT
        self.flows_dir = flows_dir
        self.refresh_every = refresh_every
        self.snapshot: Snapshot = EMPTY
        self._older: OrderedDict[int, Flow] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_at: float | None = None
        """When the database's book was last read (None: never, in this process)."""

    # -- what the webhooks ask ---------------------------------------------------------------

    def line_for(self, number: str | None) -> LineView | None:
        """The line a Twilio number reaches: its own, else the default line."""
        snapshot = self.snapshot
        key = to_e164(number or "") or (number or "")
        return snapshot.by_number.get(key) or snapshot.default

    def by_keyword(self, word: str) -> LineView | None:
        return self.snapshot.by_keyword.get(word.upper())

    def by_slug(self, slug: str) -> LineView | None:
        return self.snapshot.by_slug.get(slug)

    @property
    def lines(self) -> tuple[LineView, ...]:
        return self.snapshot.lines

    def by_id(self, line_id: int | None) -> LineView | None:
        if line_id is None:
            return None
        return next((line for line in self.snapshot.lines if line.id == line_id), None)

    @property
    def default(self) -> LineView | None:
        return self.snapshot.default

    def flow(self, line: LineView | None, revision_id: int | None = None) -> Flow | None:
        """The flow of `revision_id` if this process knows it (a call in progress keeps the
        revision it began with), else the line's published one."""
        served = self.served(line, revision_id)
        return served[0] if served is not None else None

    def served(
        self, line: LineView | None, revision_id: int | None = None, caller: str | None = None
    ) -> tuple[Flow, int] | None:
        """The flow to answer with and its revision id: `revision_id`'s if this process knows
        it, else the line's draft for one of its test numbers (`caller`), else the line's
        published one (None: no line, or nothing to serve at all)."""
        if line is None:
            return None
        if revision_id is None and line.draft_revision_id and caller in line.test_numbers:
            revision_id = line.draft_revision_id
        snapshot = self.snapshot
        if revision_id and revision_id != line.revision_id:
            known = snapshot.flows.get(revision_id)
            if known is None:
                with self._lock:
                    known = self._older.get(revision_id)
            if known is not None:
                return known, revision_id
        flow = snapshot.flows.get(line.revision_id)
        return (flow, line.revision_id) if flow is not None else None

    def default_flow(self) -> Flow | None:
        """The default line's flow (the staff pages name menus and contacts by it)."""
        return self.flow(self.snapshot.default)

    def knows(self, revision_id: int) -> bool:
        """Whether this process can serve `revision_id` without asking the database."""
        with self._lock:
            return revision_id in self.snapshot.flows or revision_id in self._older

    def load_revision(self, revision_id: int) -> bool:
        """Fetch an older revision from the database (a call that began before a publish, in a
        process that never served it). Blocking: run it off the event loop."""
        try:
            with self._database().session(read_only=True) as session:
                revision = session.get(FlowRevision, revision_id)
                text = revision.yaml if revision is not None else None
        except DATABASE_ERRORS as error:
            log.warning("could not read revision %d: %s", revision_id, describe_error(error))
            return False
        flow = _flow_of(text, f"revision {revision_id}") if text else None
        if flow is None:
            return False
        self._keep_older(revision_id, flow)
        return True

    # -- keeping it current ------------------------------------------------------------------

    def open(self) -> None:
        """Load the book (seeding the database from the flow files on a first start), or,
        with the database away, the copy kept under var/, or the flow files themselves."""
        if not self.refresh(seed=True):
            if self._load_snapshot_file():
                log.warning("the database is away: serving the lines kept under var/")
            else:
                self.snapshot = self._from_files()
                if self.snapshot.lines:
                    log.warning("the database is away, nothing is kept under var/: serving flows/")
        FLOW_LOADED.set(1 if self.snapshot.lines else 0)
        if not self.snapshot.lines:
            log.error(
                "no menu loaded: every call and text gets the fallback (the coordinator's "
                "number) and /readyz answers 503 until a line's flow loads: no line in the "
                "database (or it is away), nothing kept under var/, and FLOWS_DIR %s (from %s) "
                "has no flow file that passes the check (phoneline flows check)",
                self.flows_dir,
                Path.cwd(),
            )

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="line-book", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:  # the thread must outlive a bug in one reload
                log.exception("the line book could not be refreshed")
            if self._stop.wait(self.refresh_every):
                return

    def refresh(self, *, seed: bool = False) -> bool:
        """Reload when the database's version moved; True when the database answered. Until
        this process has read the database once, it seeds it first (a first start)."""
        seed = seed or self.loaded_at is None
        try:
            with self._database().session(read_only=not seed) as session:
                if seed:
                    seed_from_files(session, self.flows_dir)
                version = session.scalar(select(LineBookVersion.version)) or 0
                if version != self.snapshot.version or self.loaded_at is None:
                    self._install(self._read(session, version))
        except DATABASE_ERRORS as error:
            log.debug("the line book could not be read: %s", describe_error(error))
            return False
        self.loaded_at = time.monotonic()
        return True

    def _read(self, session: Session, version: int) -> Snapshot:
        numbers: dict[int, list[str]] = {}
        for number, line_id in session.execute(select(LineNumber.number, LineNumber.line_id)):
            numbers.setdefault(line_id, []).append(number)
        rows = session.execute(
            select(Line, FlowRevision.number, FlowRevision.yaml)
            .join(FlowRevision, FlowRevision.id == Line.published_revision_id)
            .order_by(Line.id)
        ).all()
        lines = []
        flows: dict[int, Flow] = {}
        closures = engine_closures(list_closures(session), self.timezone)
        testers: dict[int, list[str]] = {}
        for number, line_id in session.execute(
            select(LineTestNumber.number, LineTestNumber.line_id)
        ):
            testers.setdefault(line_id, []).append(number)
        drafts = self._drafts(session, testers)
        for line, revision_number, text in rows:
            revision_id = int(line.published_revision_id or 0)
            flow = self.snapshot.flows.get(revision_id) or _flow_of(text, line.slug)
            if flow is None:
                continue
            flows[revision_id] = _closed_on(flow, closures.get(line.id, {}))
            draft_id = 0
            draft = drafts.get(line.id)
            if draft is not None and draft[0] != revision_id:
                draft_flow = self.snapshot.flows.get(draft[0]) or _flow_of(draft[1], line.slug)
                if draft_flow is not None:
                    draft_id = draft[0]
                    flows[draft_id] = _closed_on(draft_flow, closures.get(line.id, {}))
            lines.append(
                LineView(
                    line.id,
                    line.slug,
                    line.title,
                    line.keyword,
                    line.is_default,
                    tuple(sorted(numbers.get(line.id, ()))),
                    revision_id,
                    revision_number,
                    tuple(sorted(testers.get(line.id, ()))),
                    draft_id,
                )
            )
        self._save_snapshot_file(version, lines, {r.revision_id: t for r, t in _texts(lines, rows)})
        return Snapshot(version, tuple(lines), flows)

    @staticmethod
    def _drafts(session: Session, testers: dict[int, list[str]]) -> dict[int, tuple[int, str]]:
        """The newest revision (id, YAML) of each line that has test numbers, when it was
        never published and its check passed."""
        if not testers:
            return {}
        newest = (
            select(FlowRevision.line_id, func.max(FlowRevision.number).label("number"))
            .where(FlowRevision.line_id.in_(sorted(testers)))
            .group_by(FlowRevision.line_id)
            .subquery()
        )
        found = {}
        for revision in session.scalars(
            select(FlowRevision).join(
                newest,
                (FlowRevision.line_id == newest.c.line_id)
                & (FlowRevision.number == newest.c.number),
            )
        ):
            if revision.published_at is None and not revision.problems:
                found[revision.line_id] = (revision.id, revision.yaml)
        return found

    def _install(self, snapshot: Snapshot) -> None:
        with self._lock:
            for revision_id, flow in self.snapshot.flows.items():
                if revision_id not in snapshot.flows:
                    self._keep_older_locked(revision_id, flow)
            self.snapshot = snapshot
        FLOW_LOADED.set(1 if snapshot.lines else 0)
        log.info(
            "lines loaded (version %d): %s",
            snapshot.version,
            ", ".join(f"{line.slug} r{line.revision_number}" for line in snapshot.lines),
        )

    def _keep_older(self, revision_id: int, flow: Flow) -> None:
        with self._lock:
            self._keep_older_locked(revision_id, flow)

    def _keep_older_locked(self, revision_id: int, flow: Flow) -> None:
        self._older[revision_id] = flow
        self._older.move_to_end(revision_id)
        while len(self._older) > OLD_REVISIONS_KEPT:
            self._older.popitem(last=False)

    # -- the copy under var/, and the files -------------------------------------------------

    def _save_snapshot_file(
        self, version: int, lines: Iterable[LineView], texts: dict[int, str]
    ) -> None:
        data = {
            "version": version,
            "lines": [line.__dict__ for line in lines],
            "revisions": {str(k): v for k, v in texts.items()},
        }
        path = self.snapshot_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            temporary.replace(path)
        except OSError as error:
            log.warning("could not keep the lines under var/: %s", error)

    def _load_snapshot_file(self) -> bool:
        try:
            data: dict[str, Any] = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        lines = []
        flows: dict[int, Flow] = {}
        for raw in data.get("lines", []):
            line = LineView(**{**raw, "numbers": tuple(raw.get("numbers", ()))})
            flow = _flow_of(data["revisions"].get(str(line.revision_id), ""), line.slug)
            if flow is not None:
                lines.append(line)
                flows[line.revision_id] = flow
        if not lines:
            return False
        self.snapshot = Snapshot(-1, tuple(lines), flows)  # -1: reloaded once the database answers
        return True

    def _from_files(self) -> Snapshot:
        lines = []
        flows: dict[int, Flow] = {}
        paths = flow_files(self.flows_dir)
        for index, path in enumerate(paths, start=1):
            with contextlib.suppress(OSError):
                flow = _flow_of(path.read_text(encoding="utf-8"), str(path))
                if flow is not None:
                    revision_id = -index  # not a revision of the database
                    flows[revision_id] = flow
                    title = flow.title.get(flow.default_language, flow.name)
                    lines.append(
                        LineView(-index, flow.name, title, None, index == 1, (), revision_id, 0)
                    )
        return Snapshot(-1, tuple(lines), flows)


def _closed_on(flow: Flow, closures: dict[str, tuple[Closure, ...]]) -> Flow:
    """The flow with its contacts' closures as they are now (a contact with none has none,
    whatever the flow it came from had)."""
    if not closures and not any(contact.closures for contact in flow.contacts.values()):
        return flow
    contacts = {
        contact_id: replace(contact, closures=closures.get(contact_id, ()))
        for contact_id, contact in flow.contacts.items()
    }
    return replace(flow, contacts=contacts)


FLOW_NAME = "flow"
"""The one name the book reads every flow text under (`flow_of_text` remembers each text by its
name too): a text read ahead is then found read."""


def read_ahead(flows_dir: Path) -> None:
    """Read and check the flow files now, as the book reads a published revision: a line whose
    revision is still its seed file's text is then found read in every `serve` worker forked
    after this (`service/preload.py`), which starts about 0.3 s of a processor sooner, a
    replacement after `kill -9` included. Files that cannot be read or do not pass are left to
    the book (and `phoneline flows check`) to report."""
    for path in flow_files(flows_dir):
        with contextlib.suppress(OSError, FlowError):
            flow_of_text(path.read_text(encoding="utf-8"), FLOW_NAME)


def _flow_of(text: str, name: str) -> Flow | None:
    """The flow of a YAML text that passes the check (each text read once per process:
    `flow_of_text`), or None, logged."""
    try:
        return flow_of_text(text, FLOW_NAME)
    except FlowError:
        log.error("%s cannot be read or does not pass the flow check: not served", name)
        return None


def _texts(lines: list[LineView], rows: Iterable[Any]) -> list[tuple[LineView, str]]:
    by_id = {line.id: line for line in lines}
    return [(by_id[row[0].id], row[2]) for row in rows if row[0].id in by_id]
