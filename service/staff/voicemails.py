"""`/staff/voicemails/{id}/audio`: a message a caller left, played on its follow-up's page.

Only for signed-in navigators and administrators who may see the message's line (anyone else
gets the same 404 as for a message that does not exist, and no audio bytes); every listen is
written to the audit log; the answer is never kept by the browser or a proxy (`no-store`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from service.audit import record_audit
from service.models import Voicemail, VoicemailAudio
from service.phone import mask
from service.sessions import SessionDep
from service.staff.auth import client_address
from service.staff.followups import navigator_staff
from service.staff.line_filter import visible
from service.staff.queries import parse_id
from service.staff.web import PageError, Staff, pages_router

router = pages_router()


@router.get("/voicemails/{raw_id}/audio")
def voicemail_audio(
    request: Request,
    raw_id: str,
    staff: Annotated[Staff, Depends(navigator_staff)],
    session: SessionDep,
) -> Response:
    ident = parse_id(raw_id)
    voicemail = session.get(Voicemail, ident) if ident is not None else None
    visible(request, voicemail, voicemail.line_id if voicemail else None, "Message")
    assert voicemail is not None
    audio = session.execute(
        select(VoicemailAudio.content, VoicemailAudio.content_type).where(
            VoicemailAudio.sha256 == voicemail.audio_sha256
        )
    ).first()
    if audio is None:
        raise PageError(
            404, "Message not here yet", "Its recording is still on its way from Twilio."
        )
    record_audit(
        session,
        staff.username,
        "listen",
        f"message {voicemail.id} of {mask(voicemail.phone or '')}",
        client_address=client_address(request),
    )
    return Response(
        content=audio.content,
        media_type=audio.content_type,
        headers={
            "Cache-Control": "no-store, private",
            "Content-Disposition": f'inline; filename="message-{voicemail.id}"',
        },
    )
