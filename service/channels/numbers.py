"""Point a Twilio phone number at this service through the REST API (`phoneline twilio configure`).

The number's IncomingPhoneNumber resource is found by its E.164 number and updated with the
voice, voice fallback, call status and SMS webhook URLs under the public URL. A number that
answers through a TwiML App (VoiceApplicationSid/SmsApplicationSid) ignores its own URLs, so
those are cleared when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from service.channels.sender import (
    DEFAULT_TIMEOUT_SECONDS,
    BaseUrlHttpClient,
    credentials_configured,
)
from service.config import Settings


class ConfigureError(Exception):
    """The number could not be configured; the message says why, for the person at the console."""


def webhook_settings(public_url: str) -> dict[str, str]:
    """The IncomingPhoneNumber fields (twilio-python names) that send everything to `public_url`."""
    base = public_url.rstrip("/")
    return {
        "voice_url": f"{base}/twilio/voice",
        "voice_method": "POST",
        "voice_fallback_url": f"{base}/twilio/fallback",
        "voice_fallback_method": "POST",
        "status_callback": f"{base}/twilio/voice/status",
        "status_callback_method": "POST",
        "sms_url": f"{base}/twilio/sms",
        "sms_method": "POST",
    }


@dataclass
class NumberConfiguration:
    phone_number: str
    sid: str
    changes: dict[str, str]
    cleared_applications: list[str] = field(default_factory=list)


def check_public_url(public_url: str) -> None:
    if not public_url.startswith("https://"):
        raise ConfigureError(
            f"--public-url must be the https:// address Twilio reaches this service at, "
            f"not {public_url!r}"
        )


def rest_client(settings: Settings) -> Client:
    if not credentials_configured(settings):
        raise ConfigureError(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set (environment or .env) to "
            "configure a number"
        )
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=BaseUrlHttpClient(settings.twilio_api_base, DEFAULT_TIMEOUT_SECONDS),
        environment={},
    )


def configure_number(settings: Settings, phone_number: str, public_url: str) -> NumberConfiguration:
    """Find `phone_number` on the account and point its webhooks at `public_url`."""
    check_public_url(public_url)
    client = rest_client(settings)
    changes: dict[str, Any] = dict(webhook_settings(public_url))
    try:
        found = client.incoming_phone_numbers.list(phone_number=phone_number, limit=2)
        if not found:
            raise ConfigureError(
                f"{phone_number} is not a number on Twilio account {settings.twilio_account_sid}"
            )
        number = found[0]
        cleared = []
        if getattr(number, "voice_application_sid", None):
            changes["voice_application_sid"] = ""
            cleared.append(f"voice application {number.voice_application_sid}")
        if getattr(number, "sms_application_sid", None):
            changes["sms_application_sid"] = ""
            cleared.append(f"SMS application {number.sms_application_sid}")
        number.update(**changes)
    except TwilioException as error:
        raise ConfigureError(f"Twilio refused: {error}") from error
    except OSError as error:  # requests' connection errors are OSErrors
        raise ConfigureError(f"could not reach Twilio: {error}") from error
    return NumberConfiguration(
        phone_number=str(number.phone_number or phone_number),
        sid=str(number.sid),
        changes={key: str(value) for key, value in changes.items()},
        cleared_applications=cleared,
    )
