"""Recordings made for tests: silence of a given length, as WAV or MP3."""

from __future__ import annotations

import io
import wave


def wav_of(seconds: float, rate: int = 8000, width: int = 2) -> bytes:
    """A mono WAV of silence (16-bit by default, as Twilio serves a recording)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(width)
        audio.setframerate(rate)
        audio.writeframes(b"\x00" * width * int(rate * seconds))
    return buffer.getvalue()


def mp3_of(seconds: float, seed: int = 0) -> bytes:
    """MPEG-1 Layer III frames (128 kb/s, 44.1 kHz: 417 bytes, 26 ms each) of silence; one
    byte of each frame is `seed`, so recordings of the same length can differ."""
    frame = bytes([0xFF, 0xFB, 0x90, 0x64, seed % 256]) + bytes(412)
    return frame * int(seconds / 0.026)
