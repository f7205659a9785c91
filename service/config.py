"""Settings from the environment (and a `.env` file when present)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/phoneline.db"


DEFAULT_TIMEZONE = "America/New_York"


@lru_cache(maxsize=16)
def zone_named(name: str) -> ZoneInfo:
    """The clinic's zone (TIMEZONE, an IANA name: its days are the dashboard's, the rollup's
    and purge's); America/New_York when the name is not a zone this machine knows."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    public_base_url: str = ""
    secret_key: str = ""
    flows_dir: Path = Path("flows")
    flow_file: str = "second-opinion.yaml"
    twilio_api_base: str = ""
    # Outbound texts go from the number the texter or caller used (stored on the outbox row);
    # otherwise from this Messaging Service, or else from this number (also the caller ID of
    # call-backs that have no number of their own).
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    var_dir: Path = Path("var")
    trusted_proxies: str = "127.0.0.1,::1"
    run_worker_in_server: bool = True
    # A claimed outbox row is taken over when its worker's heartbeat (every 3 s) is older than
    # worker_dead_seconds (the worker was killed), or, whatever the heartbeat says, when the
    # claim is older than outbox_stale_seconds. Keep both above the sender's 10 s timeout.
    outbox_stale_seconds: int = 300
    worker_dead_seconds: int = 15
    # A send that failed and may succeed later is tried again after this, then twice as long...
    outbox_first_retry_seconds: float = 30.0
    # A call is counted in /metrics by outcome once it has ended and its record has not changed
    # for this long (late facts from other processes may still be on their way until then).
    call_settle_seconds: float = 30.0
    # How often each process runs its periodic work (settling quiet calls, the follow-up
    # sweep, the day rollup), once what its spool holds is written.
    spool_periodic_seconds: float = 5.0
    # A call with no final status and nothing heard of it for this long is looked up in
    # Twilio's Calls resource (by the outbox worker) and settled by what Twilio says.
    call_reconcile_seconds: int = 900
    # Messages callers leave: the audio is copied from Twilio in this format (mp3: a quarter
    # of wav's size) and, once the copy is verified, deleted at Twilio unless this is false.
    voicemail_format: Literal["mp3", "wav"] = "mp3"
    voicemail_delete_at_twilio: bool = True
    # The worklist: how long a patient should wait at most for a call back (an item's age is
    # shown against it), and the staff calls that reach nobody before an item closes as
    # "could not reach".
    follow_up_target_hours: float = 24.0
    follow_up_max_attempts: int = 3
    # Hosts that share the database but not var/ (service/spool/fence.py): replies and texts
    # wait while another host's spool may hold opt-outs the database lacks; a host silent for
    # this long is no longer waited for.
    fence_give_up_seconds: float = 120.0
    # An SMS webhook waits at most this long for that fence before it answers with nothing and
    # queues its reply, to be sent once the fence is clear.
    fence_wait_seconds: float = 5.0
    # Twilio waits this long for a webhook's answer, then plays the fallback: a webhook that
    # waited longer (in the listen backlog, a stalled worker) is answered but not recorded as
    # heard.
    twilio_timeout_seconds: float = 15.0
    # The outbound policy (service/outbound/limits.py): the countries (calling codes) the line
    # texts and calls, optionally narrowed to regions ("US,CA"); at most so many texts and
    # call-backs to one number in 24 hours, and in total in the last hour.
    outbound_country_codes: str = "1"
    outbound_regions: str = ""
    outbound_texts_per_number: int = 5
    outbound_calls_per_number: int = 2
    outbound_texts_per_hour: int = 300
    outbound_calls_per_hour: int = 30
    # The clinic's time zone (an IANA name): every time staff see, and every day boundary of
    # the dashboard's filters and charts, is in it.
    timezone: str = DEFAULT_TIMEZONE
    log_level: str = "info"
    max_body_bytes: int = Field(default=64 * 1024)
    # /metrics answers loopback and TRUSTED_PROXIES peers, and anyone sending
    # `Authorization: Bearer METRICS_TOKEN`; everyone when METRICS_PUBLIC is true; 404 otherwise.
    metrics_token: str = ""
    metrics_public: bool = False

    @property
    def spool_dir(self) -> Path:
        """Where each process keeps what it acknowledged until the database has it."""
        return self.var_dir / "spool"

    @property
    def flow_path(self) -> Path:
        return self.flows_dir / self.flow_file

    def resolved_secret_key(self) -> str:
        """The configured SECRET_KEY, or one generated once and kept under var/."""
        if self.secret_key:
            return self.secret_key
        key_file = self.var_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
