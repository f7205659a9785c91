"""Recorded prompts in the browser (`/staff/lines/{slug}/recordings`): for each menu's spoken
words, per language, an editor uploads a recording (WAV or MP3, at most 60 s and 5 MB, checked
by what the bytes are), hears it, replaces or removes it. An upload is kept by the line
(`service.prompts.store`) and named in the newest revision's `recordings:`, saved as a draft by
the same path as every other edit: callers hear it once it is published. A recording whose words
changed after it was recorded is flagged: callers hear the new words said until it is recorded
again. Phone numbers and the menus' "press 1" lines are the line's own sentences, always said,
so they stay right."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from service.flowengine import Flow
from service.models import Line
from service.prompts import PROMPTS_PATH
from service.prompts.store import MAX_PROMPT_BYTES, MAX_PROMPT_SECONDS, PromptRefused, keep_prompt
from service.sessions import ReadSessionDep, SessionDep
from service.staff.editor import EditorStaff, changed_since, newest_flow, save_as_draft
from service.staff.flow_yaml import dumped, loaded
from service.staff.headlines import LANGUAGE_NAMES
from service.staff.lines import visible_line
from service.staff.names import flow_names
from service.staff.queries import parse_id
from service.staff.revision_changes import Change
from service.staff.web import CheckedForm, PageError, Staff, pages_router, render

router = pages_router()
UPLOAD_PATH = re.compile(r"/staff/lines/[^/]+/recordings")
UPLOAD_MAX_BODY = 2 * MAX_PROMPT_BYTES + 64 * 1024
"""The body an upload may send (twice the largest recording kept, so a file a little too big
is answered with why, not a bare 413)."""


@dataclass(frozen=True)
class Prompt:
    """One menu's spoken words in one language, and their recording."""

    node: str
    lang: str
    language: str
    words: str
    audio: str | None
    stale: bool

    @property
    def field(self) -> str:
        return f"{self.node}-{self.lang}"


@dataclass(frozen=True)
class MenuPrompts:
    title: str
    prompts: list[Prompt]


def prompts_of(flow: Flow) -> list[MenuPrompts]:
    menus = flow_names(flow).menus
    found = []
    for node in flow.nodes.values():
        prompts = []
        for lang in flow.languages:
            recording = flow.recordings.get(node.id, {}).get(lang)
            prompts.append(
                Prompt(
                    node.id,
                    lang,
                    LANGUAGE_NAMES.get(lang, lang),
                    node.say.get(lang, ""),
                    recording.audio if recording is not None else None,
                    flow.is_stale(node.id, lang),
                )
            )
        found.append(MenuPrompts(menus.get(node.id, node.id), prompts))
    return found


async def uploaded(request: Request) -> AsyncIterator[bytes | None]:
    """The file posted as `audio` (at most one byte more than a recording may have), or None;
    the form's files are closed once the answer is made."""
    form = await request.form()
    try:
        upload = form.get("audio")
        yield await upload.read(MAX_PROMPT_BYTES + 1) if isinstance(upload, UploadFile) else None
    finally:
        await form.close()


Uploaded = Annotated[bytes | None, Depends(uploaded)]


def _page(
    request: Request,
    session: Session,
    line: Line,
    *,
    error: str | None = None,
    error_at: str | None = None,
    stale: list[Change] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    newest, published, flow = newest_flow(session, line)
    return render(
        request,
        "recordings.html",
        status_code=status_code,
        line=line,
        base=newest.number,
        draft=newest is not published,
        menus=prompts_of(flow),
        prompts_path=PROMPTS_PATH,
        max_seconds=MAX_PROMPT_SECONDS,
        max_megabytes=MAX_PROMPT_BYTES // 1024 // 1024,
        error=error,
        error_at=error_at,
        stale=stale,
        saved=saved,
    )


@router.get("/lines/{slug}/recordings", response_class=HTMLResponse)
def recordings_page(
    request: Request, slug: str, staff: EditorStaff, session: ReadSessionDep
) -> Response:
    """Each menu's spoken words, per language, with its recording (a player) or none."""
    saved = request.query_params.get("done") == "saved"
    return _page(request, session, visible_line(request, session, slug), saved=saved)


@router.post("/lines/{slug}/recordings", response_class=HTMLResponse)
def upload_recording(
    request: Request,
    slug: str,
    content: Uploaded,  # first: its files are closed whatever the checks after it answer
    staff: EditorStaff,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Keep the uploaded recording and name it in a new draft (or say why it is refused)."""
    line = visible_line(request, session, slug)
    return _change(request, session, line, staff, form, content)


@router.post("/lines/{slug}/recordings/remove", response_class=HTMLResponse)
def remove_recording(
    request: Request, slug: str, staff: EditorStaff, form: CheckedForm, session: SessionDep
) -> Response:
    """A new draft without that recording: callers hear the words said once it is published."""
    line = visible_line(request, session, slug)
    return _change(request, session, line, staff, form, None, remove=True)


def _change(
    request: Request,
    session: Session,
    line: Line,
    staff: Staff,
    form: dict[str, str],
    content: bytes | None,
    *,
    remove: bool = False,
) -> Response:
    node_id, lang = form.get("node", ""), form.get("lang", "")
    field = f"{node_id}-{lang}"
    base = parse_id(form.get("base", "")) or 0
    newest, _, flow = newest_flow(session, line)
    if node_id not in flow.nodes or lang not in flow.languages:
        raise PageError(404, "No such text", "That menu or language is not in the line's flow.")
    if newest.number != base:
        return _page(
            request, session, line, status_code=409, error_at=field,
            stale=changed_since(session, line, base, newest),
            error=f"Revision {newest.number} was saved by {newest.author} since you opened this "
            "page: nothing was saved. What changed is below; choose the file again.",
        )  # fmt: skip
    data = loaded(newest.yaml)
    if remove:
        by_language = data.get("recordings", {}).get(node_id, {})
        if lang not in by_language:
            return _page(request, session, line, error="That text has no recording.")
        del by_language[lang]
        if not by_language:
            del data["recordings"][node_id]
        if not data["recordings"]:
            del data["recordings"]
    else:
        if content is None:
            return _page(
                request, session, line, status_code=400, error_at=field,
                error="Choose a WAV or MP3 file to upload.",
            )  # fmt: skip
        try:
            audio = keep_prompt(session, content, uploaded_by=staff.username)
        except PromptRefused as refused:
            return _page(
                request, session, line, status_code=400, error_at=field, error=str(refused)
            )
        recordings = data.setdefault("recordings", {})
        recordings.setdefault(node_id, {})[lang] = {
            "audio": audio,
            "words": flow.nodes[node_id].say[lang],
        }
    save_as_draft(request, session, line, staff, dumped(data))  # no number changes here
    return RedirectResponse(f"/staff/lines/{line.slug}/recordings?done=saved", 303)
