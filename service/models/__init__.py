"""All models, so that `Base.metadata` is complete once this package is imported."""

from service.models.aggregates import Channel, DailyAggregate, Metric
from service.models.api_tokens import ApiRole, ApiToken, ApiTokenLine
from service.models.base import Base, UTCDateTime, utcnow
from service.models.calls import (
    Call,
    CallEvent,
    CallEventKind,
    CallOutcome,
    CallStatus,
    DialOutcome,
)
from service.models.followups import (
    URGENT_REASONS,
    FollowUp,
    FollowUpNote,
    FollowUpOutcome,
    FollowUpReason,
    FollowUpSource,
    FollowUpSourceKind,
)
from service.models.lines import (
    ContactClosure,
    FlowRevision,
    Line,
    LineBookVersion,
    LineNumber,
    LineTestNumber,
)
from service.models.opt_outs import OptOut
from service.models.outbox import OutboxKind, OutboxMessage, OutboxStatus, OutboxWorker
from service.models.prompts import PromptAudio
from service.models.rollups import OverviewDay, OverviewRollup
from service.models.spool import SpoolCheckpoint, SpoolFence
from service.models.staff import AuditEntry, StaffLine, StaffRole, StaffUser
from service.models.texts import Conversation, Direction, Message
from service.models.voicemails import Voicemail, VoicemailAudio, VoicemailState

__all__ = [
    "URGENT_REASONS",
    "ApiRole",
    "ApiToken",
    "ApiTokenLine",
    "AuditEntry",
    "Base",
    "Call",
    "CallEvent",
    "CallEventKind",
    "CallOutcome",
    "CallStatus",
    "Channel",
    "ContactClosure",
    "Conversation",
    "DailyAggregate",
    "DialOutcome",
    "Direction",
    "FlowRevision",
    "FollowUp",
    "FollowUpNote",
    "FollowUpOutcome",
    "FollowUpReason",
    "FollowUpSource",
    "FollowUpSourceKind",
    "Line",
    "LineBookVersion",
    "LineNumber",
    "LineTestNumber",
    "Message",
    "Metric",
    "OptOut",
    "OutboxKind",
    "OutboxMessage",
    "OutboxStatus",
    "OutboxWorker",
    "OverviewDay",
    "OverviewRollup",
    "PromptAudio",
    "SpoolCheckpoint",
    "SpoolFence",
    "StaffLine",
    "StaffRole",
    "StaffUser",
    "UTCDateTime",
    "Voicemail",
    "VoicemailAudio",
    "VoicemailState",
    "utcnow",
]
