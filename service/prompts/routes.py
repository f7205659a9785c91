"""`GET /prompts/{sha256}.{format}`: a recorded prompt, for Twilio's `<Play>` (and the editor's
player). No sign-in: Twilio cannot sign in, and the 64 hex digits of the name are not
guessable. The name is the content's digest, so what it answers never changes: cached for a
year as immutable (Twilio caches `<Play>` audio by these headers; a new recording is a new
URL)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from service.audio import MIME_TYPES
from service.prompts import PROMPTS_PATH
from service.prompts.store import prompt_audio
from service.sessions import ReadSessionDep

router = APIRouter()
FOREVER = "public, max-age=31536000, immutable"


@router.get(PROMPTS_PATH + "/{name}", include_in_schema=False)
def prompt(name: str, session: ReadSessionDep) -> Response:
    audio = prompt_audio(session, name)
    if audio is None:
        return PlainTextResponse("no such recording", status_code=404)
    return Response(
        content=audio.content,
        media_type=MIME_TYPES[audio.format],
        headers={"Cache-Control": FOREVER, "ETag": f'"{audio.sha256}"'},
    )
