"""The audit log of staff (and system) actions. Services take a session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.models import AuditEntry, utcnow

SYSTEM_ACTOR = "system"


def record_audit(
    session: Session,
    actor: str,
    action: str,
    detail: str | None = None,
    *,
    client_address: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add an audit entry (actor: a staff username or 'system'; action: sign-in, reveal,
    export, purge, ...). Never put a full phone number or a message body in `detail`."""
    entry = AuditEntry(
        at=at or utcnow(),
        actor=actor[:64],
        action=action[:32],
        detail=detail[:500] if detail else None,
        client_address=client_address[:64] if client_address else None,
    )
    session.add(entry)
    return entry
