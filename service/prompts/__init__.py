"""Recorded prompts: audio an editor uploads for the words a caller hears, kept by the line and
played instead of saying those words (`<Play>`), while they are still the words recorded.

`store` checks an upload (WAV or MP3, at most 60 s and 5 MB, by what the bytes are: mutagen)
and keeps it by its SHA-256; `routes` serves it at `/prompts/{sha256}.{format}` without sign-in
(Twilio fetches it), as immutable: the digest is the version, so a new recording is a new URL
and a cache never plays an old one."""

PROMPTS_PATH = "/prompts"


def prompt_url(base_url: str, audio: str) -> str:
    """The absolute URL Twilio fetches a recording at (`audio`: "<sha256>.<format>")."""
    return f"{base_url}{PROMPTS_PATH}/{audio}"
