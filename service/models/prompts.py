"""Recorded prompts: audio an editor uploaded for a text of a line's flow, kept by the SHA-256
of its bytes (a revision's `recordings:` names them; the same recording uploaded twice, or kept
by two revisions, is one row). Served without sign-in at `/prompts/{sha256}.{format}`: Twilio
fetches it for `<Play>`, and the digest is both unguessable and the version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class PromptAudio(Base):
    __tablename__ = "prompt_audio"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(8))
    """"mp3" or "wav"."""
    seconds: Mapped[float] = mapped_column(Float)
    size: Mapped[int]
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("format IN ('mp3', 'wav')", name="format"),)
