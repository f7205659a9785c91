"""Reading the opt-out journal (service/optouts.py writes and replays it) while the database is
down, so that a STOP that only reached the journal is still obeyed before anything is sent."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from service.db import Database
from service.phone import to_e164
from service.recording import DATABASE_ERRORS, describe_error
from service.texts.optouts import default_journal_path, replay_journal

log = logging.getLogger(__name__)


def _journal_files(path: Path) -> list[Path]:
    # A replay in progress (or one that failed) holds older entries in `.replaying`.
    return [path.with_name(path.name + ".replaying"), path]


def journal_pending(path: Path | None = None) -> bool:
    path = path or default_journal_path()
    return any(candidate.exists() for candidate in _journal_files(path))


def journaled_opt_out(phone: str, path: Path | None = None) -> bool | None:
    """The latest journaled change for `phone`: True (opted out), False (opted in again), or
    None when the journal says nothing about it."""
    path = path or default_journal_path()
    key = to_e164(phone) or phone[:20]
    latest: tuple[str, bool] | None = None
    for candidate in _journal_files(path):
        try:
            lines = candidate.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue
        except OSError as error:
            log.error("cannot read the opt-out journal: %s", describe_error(error))
            # Unreadable: the safe answer for a sender is "opted out".
            return True
        for line in lines:
            try:
                entry = json.loads(line)
                if entry["phone"] != key:
                    continue
                change = (str(entry["at"]), bool(entry["opted_out"]))
            except (ValueError, KeyError, TypeError):
                continue
            if latest is None or change[0] >= latest[0]:
                latest = change
    return None if latest is None else latest[1]


def replay_if_pending(database: Database, path: Path | None = None) -> bool:
    """Apply a pending journal to the database. Returns False when the database is still down
    (the journal stays for the next try); True when nothing is pending any more."""
    path = path or default_journal_path()
    if not journal_pending(path):
        return True
    try:
        replay_journal(database, path)
    except DATABASE_ERRORS as error:
        log.warning("opt-out journal not replayed yet: %s", describe_error(error))
        return False
    return True
