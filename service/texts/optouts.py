"""Who opted out of texts. Services take a session and never commit."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.config import get_settings
from service.db import Database, upsert
from service.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.phone import to_e164

log = logging.getLogger(__name__)


def _key(phone: str) -> str:
    return to_e164(phone) or phone[:20]


def is_opted_out(session: Session, phone: str) -> bool:
    """True when `phone` texted a stop keyword and has not texted START since."""
    opted_out = session.scalar(select(OptOut.opted_out).where(OptOut.phone == _key(phone)))
    return bool(opted_out)


def set_opt_out(
    session: Session,
    phone: str,
    opted_out: bool,
    keyword: str | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Record a STOP (opted_out=True) or START (False). An opt-out also suppresses the texts
    still waiting in the outbox for that number."""
    at = at or utcnow()
    phone = _key(phone)
    keyword = keyword[:32] if keyword else None
    insert = upsert(session, OptOut).values(
        phone=phone, opted_out=opted_out, keyword=keyword, changed_at=at
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["phone"],
            set_={"opted_out": opted_out, "keyword": keyword, "changed_at": at},
        )
    )
    if opted_out:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.to_number == phone,
                OutboxMessage.kind == OutboxKind.SMS.value,
                OutboxMessage.status == OutboxStatus.PENDING.value,
            )
            .values(status=OutboxStatus.SUPPRESSED.value, last_error="opted out")
        )


# -- the journal: an opt-out that arrives while the database is down is never lost ----------

JOURNAL_NAME = "opt-out-journal.jsonl"


def default_journal_path() -> Path:
    return get_settings().var_dir / JOURNAL_NAME


def journal_opt_out(
    path: Path, phone: str, opted_out: bool, keyword: str | None, at: datetime
) -> None:
    """Append one opt-out to the journal file (one JSON line, flushed to disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {"phone": _key(phone), "opted_out": opted_out, "keyword": keyword, "at": at.isoformat()}
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def replay_journal(database: Database, path: Path | None = None) -> int:
    """Apply journaled opt-outs to the database, oldest first, and remove the journal.

    An entry older than the change already stored for that number is skipped. Returns how many
    entries were read. Raises on database errors, leaving the entries to be replayed later.
    """
    path = path or default_journal_path()
    replaying = path.with_name(path.name + ".replaying")
    if path.exists():
        if replaying.exists():
            # A replay that failed earlier: keep its entries ahead of the newer ones.
            with open(replaying, "a", encoding="utf-8") as pending:
                pending.write(path.read_text(encoding="utf-8"))
            path.unlink()
        else:
            path.rename(replaying)
    if not replaying.exists():
        return 0
    entries = []
    for line in replaying.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            entries.append(
                (
                    datetime.fromisoformat(entry["at"]),
                    str(entry["phone"]),
                    bool(entry["opted_out"]),
                    entry.get("keyword"),
                )
            )
        except (ValueError, KeyError, TypeError):
            log.warning("skipping an unreadable line in the opt-out journal")
    entries.sort(key=lambda entry: entry[0])
    with database.session() as session:
        for at, phone, opted_out, keyword in entries:
            stored = session.scalar(select(OptOut.changed_at).where(OptOut.phone == phone))
            if stored is None or stored <= at:
                set_opt_out(session, phone, opted_out, keyword, at=at)
    replaying.unlink()
    if entries:
        log.info("applied %d journaled opt-out change(s)", len(entries))
    return len(entries)
