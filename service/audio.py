"""Audio the line keeps, checked before it is kept: a caller's message copied from Twilio, a
prompt an editor recorded. mutagen (pure Python, reads MP3 and WAV headers and length, ships no
data) tells what a file is and how long it lasts; its name and its Content-Type are not trusted."""

from __future__ import annotations

import io
from dataclasses import dataclass

import mutagen

MIME_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}
"""What each kept format is served as (types Twilio's `<Play>` accepts)."""
_FORMATS = {"MP3": "mp3", "WAVE": "wav"}
"""mutagen's name of each format the line keeps."""


class NotAudio(Exception):
    """Not a recording the line keeps; the message says why, in words for the person who sent
    it ("empty", "not a WAV or MP3 recording", "lasts 600 s")."""


class TooLong(NotAudio):
    """A recording, but longer than allowed (or of no length at all)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"lasts {seconds:.1f} s")
        self.seconds = seconds


@dataclass(frozen=True)
class AudioFile:
    format: str
    """"mp3" or "wav"."""
    seconds: float


def audio_of(content: bytes, *, max_seconds: float) -> AudioFile:
    """What `content` is, when it is an MP3 or WAV recording that lasts more than nothing and at
    most `max_seconds`; NotAudio otherwise (empty, cut short, another format, a text file
    renamed .wav, an error page served with a 200)."""
    if not content:
        raise NotAudio("empty")
    try:
        parsed = mutagen.File(io.BytesIO(content))
    except Exception as error:  # mutagen raises its own error per format
        raise NotAudio(f"not a WAV or MP3 recording ({type(error).__name__})") from error
    kind = type(parsed).__name__ if parsed is not None else "unknown"
    if parsed is None or kind not in _FORMATS:
        raise NotAudio(f"not a WAV or MP3 recording ({kind})")
    seconds = float(parsed.info.length or 0)
    if not 0 < seconds <= max_seconds:
        raise TooLong(seconds)
    return AudioFile(_FORMATS[kind], seconds)
