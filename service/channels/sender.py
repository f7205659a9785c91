"""Outbound texts and calls through the Twilio REST API, behind a narrow interface.

`Sender` is what the worker needs: `send_sms` and `place_call`, each returning Twilio's SID or
raising `SendError`, which says whether trying again later can help (5xx, 429, timeouts,
connection errors) or not (any other 4xx: a bad number, a number that cannot receive texts...).

`TwilioSender` uses the `twilio` REST client. `TWILIO_API_BASE` (tests: a fake Twilio on
127.0.0.1) replaces Twilio's `https://*.twilio.com` host in every request it makes; everything else
(paths, auth, form encoding, JSON parsing, error mapping) is the real client's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from service.config import Settings

log = logging.getLogger(__name__)

# twilio-python logs every request's query parameters (phone numbers, in a Messages list) at
# INFO; only its warnings and errors may reach the app log.
TWILIO_HTTP_LOG = logging.getLogger(f"{__name__}.twilio_http")
TWILIO_HTTP_LOG.setLevel(logging.WARNING)

LOOKBACK_MESSAGES = 50
"""How many of a number's newest messages `find_sent` looks through."""

DEFAULT_TIMEOUT_SECONDS = 10.0
"""Far below the outbox's stale-claim time, so a slow send is never taken over mid-flight."""


class SendError(Exception):
    """A send that failed. `retryable`: the same request may succeed later."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class Sender(Protocol):
    def send_sms(self, to: str, from_: str | None, body: str, status_callback: str | None) -> str:
        """Send one text; returns its MessageSid."""
        ...

    def place_call(
        self, to: str, from_: str | None, twiml: str, status_callback: str | None = None
    ) -> str:
        """Place a call that runs `twiml` when answered; returns its CallSid. Twilio posts the
        call's final status to `status_callback`."""
        ...

    def find_sent(
        self, to: str, from_: str | None, body: str, since: datetime, exclude: frozenset[str]
    ) -> str | None:
        """The MessageSid of a text with this body Twilio already took for `to` since `since`
        (an earlier attempt whose answer was lost) that is not one of `exclude` (the texts other
        outbox rows sent), or None."""
        ...

    def fetch_call(self, call_sid: str) -> CallReport | None:
        """What Twilio knows of a call (its Calls resource), or None when it does not know it."""
        ...


@dataclass(frozen=True)
class Audio:
    """A recording's audio as Twilio served it."""

    content: bytes
    content_type: str


@dataclass(frozen=True)
class CallReport:
    """What Twilio's Calls resource says of a call."""

    status: str
    duration: int | None
    caller: str | None
    called: str | None
    ended_at: datetime | None


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to `base` instead of `https://*.twilio.com`."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=TWILIO_HTTP_LOG)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        parts = urlsplit(url)
        if self.base and parts.hostname and parts.hostname.endswith("twilio.com"):
            url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        response: TwilioResponse = super().request(method, url, *args, **kwargs)
        return response


def retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


class TwilioSender:
    """`Sender` over the Twilio REST API."""

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.timeout = timeout
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=BaseUrlHttpClient(settings.twilio_api_base, timeout),
            environment={},
        )

    def send_sms(self, to: str, from_: str | None, body: str, status_callback: str | None) -> str:
        params: dict[str, Any] = {"to": to, "body": body}
        sender = from_ or self.settings.twilio_from_number
        if self.settings.twilio_messaging_service_sid and not from_:
            params["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        elif sender:
            params["from_"] = sender
        else:
            raise SendError(
                "no number to send from: set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
                retryable=False,
            )
        if status_callback:
            params["status_callback"] = status_callback
        return self._call(lambda: self.client.messages.create(**params))

    def find_sent(
        self, to: str, from_: str | None, body: str, since: datetime, exclude: frozenset[str]
    ) -> str | None:
        # Newest first. A queued message has no date_sent yet, so match on date_created.
        since = since.replace(tzinfo=since.tzinfo or UTC) - timedelta(minutes=1)

        def lookup() -> Any:
            for message in self.client.messages.list(to=to, limit=LOOKBACK_MESSAGES):
                created = message.date_created
                if created is not None and created < since:
                    break
                if message.sid in exclude:
                    continue
                if message.body == body and (not from_ or message.from_ == from_):
                    return message
            return None

        found = self._call(lookup, require_sid=False)
        return found or None

    def fetch_call(self, call_sid: str) -> CallReport | None:
        def fetch() -> Any:
            return self.client.calls(call_sid).fetch()

        try:
            call = self._request(fetch)
        except SendError as error:
            if error.status == 404:
                return None
            raise
        return CallReport(
            status=str(call.status or ""),
            duration=int(call.duration) if call.duration not in (None, "") else None,
            caller=call._from or None,  # twilio names the "from" attribute so
            called=call.to or None,
            ended_at=call.end_time,
        )

    def fetch_recording(self, recording_sid: str, audio_format: str) -> Audio:
        """The audio of a recording (`.mp3` or `.wav` of Twilio's Recordings resource), with
        the account's credentials. Not through the REST client, which reads every answer as
        text; through `requests`, which the client itself uses. A 404 (not ready yet, or
        gone) is a SendError that may be retried."""
        url = self._recording_url(recording_sid, audio_format)
        try:
            response = requests.get(
                url,
                auth=(self.settings.twilio_account_sid, self.settings.twilio_auth_token),
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            raise SendError(f"timed out: {type(error).__name__}", retryable=True) from error
        except requests.RequestException as error:
            raise SendError(f"connection failed: {type(error).__name__}", retryable=True) from error
        if response.status_code != 200:
            status = response.status_code
            retry = retryable_status(status) or status == 404
            raise SendError(f"Twilio {status} for a recording", retryable=retry, status=status)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Audio(response.content, content_type)

    def delete_recording(self, recording_sid: str) -> None:
        """Delete a recording at Twilio (`DELETE …/Recordings/{sid}.json`); one Twilio does not
        know (deleted already) is done."""
        try:
            self._request(lambda: self.client.recordings(recording_sid).delete())
        except SendError as error:
            if error.status != 404:
                raise

    def _recording_url(self, recording_sid: str, audio_format: str) -> str:
        base = self.settings.twilio_api_base.rstrip("/") or "https://api.twilio.com"
        account = self.settings.twilio_account_sid
        return f"{base}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}.{audio_format}"

    def place_call(
        self, to: str, from_: str | None, twiml: str, status_callback: str | None = None
    ) -> str:
        caller_id = from_ or self.settings.twilio_from_number
        if not caller_id:
            raise SendError("no number to call from: set TWILIO_FROM_NUMBER", retryable=False)
        options = {"status_callback": status_callback} if status_callback else {}
        return self._call(
            lambda: self.client.calls.create(to=to, from_=caller_id, twiml=twiml, **options)
        )

    @staticmethod
    def _call(create: Any, *, require_sid: bool = True) -> str:
        """Make the request; Twilio's SID of what it created ("" when none and not required)."""
        created = TwilioSender._request(create)
        sid = getattr(created, "sid", None)
        if not sid and not require_sid:
            return ""
        if not sid:
            raise SendError("Twilio answered without a SID", retryable=True)
        return str(sid)

    @staticmethod
    def _request(make: Any) -> Any:
        """Make a request through the client; any failure as a SendError that says whether
        trying again later can help."""
        try:
            return make()
        except TwilioRestException as error:
            status = int(error.status or 0)
            raise SendError(
                f"Twilio {status} (code {error.code}): {error.msg}"[:500],
                retryable=retryable_status(status),
                status=status,
            ) from error
        except requests.Timeout as error:
            raise SendError(f"timed out: {type(error).__name__}", retryable=True) from error
        except requests.RequestException as error:
            raise SendError(f"connection failed: {type(error).__name__}", retryable=True) from error
        except TwilioException as error:
            # A page of a list that did not come back: twilio-python raises the bare exception
            # with the response. What its status says decides, as for any other answer.
            response = error.args[1] if len(error.args) > 1 else None
            code = getattr(response, "status_code", None)
            known = code if isinstance(code, int) else None
            raise SendError(
                f"Twilio {known or 'client error'}: {error.args[0] if error.args else ''}"[:500],
                retryable=known is None or retryable_status(known),
                status=known,
            ) from error


def status_callback_url(settings: Settings, outbox_id: int | None = None) -> str | None:
    """Where Twilio reports delivery of texts we send (needs the public URL). With the outbox
    row's id in it, Twilio's report also says which row the text was."""
    base = settings.public_base_url.rstrip("/")
    if not base:
        return None
    return f"{base}/twilio/sms/status" + (f"?outbox={outbox_id}" if outbox_id else "")


OUTBOX_MARK = "{outbox}"
"""Where a call-back's TwiML names its outbox row (in the URL of its dial's action): the row's
id, put in by the worker when it places the call (the TwiML is written before the row has one)."""


def call_back_urls(settings: Settings) -> tuple[str | None, str | None]:
    """(status callback, dial action) of a call-back, each naming its outbox row with
    OUTBOX_MARK; (None, None) without PUBLIC_BASE_URL (Twilio could not reach them)."""
    base = settings.public_base_url.rstrip("/")
    if not base:
        return None, None
    return (
        f"{base}/twilio/call-back/status?outbox={OUTBOX_MARK}",
        f"{base}/twilio/call-back/dial?outbox={OUTBOX_MARK}",
    )


def credentials_configured(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)
