"""Keeping a recorded prompt: checked for what it is and how long it lasts, stored once by the
SHA-256 of its bytes. Services take a session and never commit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audio import NotAudio, TooLong, audio_of
from service.db import upsert
from service.models import PromptAudio, utcnow

MAX_PROMPT_SECONDS = 60
MAX_PROMPT_BYTES = 5 * 1024 * 1024
AUDIO_NAME = re.compile(r"^([0-9a-f]{64})\.(mp3|wav)$")


class PromptRefused(ValueError):
    """An upload the line does not keep, said for the editor who sent it."""


def keep_prompt(session: Session, content: bytes, *, uploaded_by: str) -> str:
    """Store `content` (once: by its digest) and return its name, "<sha256>.<format>";
    PromptRefused when it is not a WAV or MP3 recording of at most a minute and 5 MB."""
    if not content:
        raise PromptRefused("The file is empty: choose a WAV or MP3 recording.")
    if len(content) > MAX_PROMPT_BYTES:
        size = len(content) / 1024 / 1024
        raise PromptRefused(
            f"The file is {size:.1f} MB; a recording may be at most "
            f"{MAX_PROMPT_BYTES // 1024 // 1024} MB (a minute of MP3 is about 1 MB)."
        )
    try:
        audio = audio_of(content, max_seconds=MAX_PROMPT_SECONDS)
    except TooLong as error:
        raise PromptRefused(
            f"The recording lasts {_duration(error.seconds)}; a prompt may last at most "
            f"{MAX_PROMPT_SECONDS} seconds. Record it shorter, or split the words."
        ) from None
    except NotAudio:
        raise PromptRefused(
            "That file is not a WAV or MP3 recording: export it from your recorder as WAV or MP3."
        ) from None
    digest = hashlib.sha256(content).hexdigest()
    session.execute(
        upsert(session, PromptAudio)
        .values(
            sha256=digest,
            format=audio.format,
            seconds=round(audio.seconds, 2),
            size=len(content),
            content=content,
            uploaded_by=uploaded_by,
            uploaded_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return f"{digest}.{audio.format}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} seconds" if seconds >= 1 else "no time at all"
    return f"{minutes} min {rest} s"


def stored_prompts(session: Session, names: Iterable[str]) -> set[str]:
    """Which of these recordings ("<sha256>.<format>") the line keeps."""
    wanted = {match.group(1): name for name in names if (match := AUDIO_NAME.match(name))}
    if not wanted:
        return set()
    found = session.execute(
        select(PromptAudio.sha256, PromptAudio.format).where(PromptAudio.sha256.in_(wanted))
    ).all()
    return {f"{sha}.{fmt}" for sha, fmt in found if f"{sha}.{fmt}" in wanted.values()}


def prompt_audio(session: Session, name: str) -> PromptAudio | None:
    """The recording named "<sha256>.<format>", or None."""
    match = AUDIO_NAME.match(name)
    if match is None:
        return None
    audio = session.get(PromptAudio, match.group(1))
    return audio if audio is not None and audio.format == match.group(2) else None
