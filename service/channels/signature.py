"""One check for every `/twilio/*` route: the `X-Twilio-Signature` header.

Twilio signs the full URL it requested plus the sorted form parameters (HMAC-SHA1 with the account's
auth token). Behind a proxy the URL we see is not the one Twilio used, so it is rebuilt from
`PUBLIC_BASE_URL`, or from `X-Forwarded-Proto`/`X-Forwarded-Host` when the request comes from a
trusted proxy.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator, get_signature_algorithm

from service.config import Settings
from service.logs import note_twilio_request

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio requested, as Twilio saw it."""
    path_and_query = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path_and_query
    scheme, host = request.url.scheme, request.headers.get("host", request.url.netloc)
    client = request.client.host if request.client else ""
    trusted = {
        address.strip() for address in settings.trusted_proxies.split(",") if address.strip()
    }
    if client in trusted or "*" in trusted:
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}{path_and_query}"


async def verified_form(request: Request) -> FormData:
    """The request's form parameters, once its Twilio signature is proven; 403 otherwise."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    if not settings.twilio_auth_token:
        log.error(
            "refusing a Twilio webhook on %s: TWILIO_AUTH_TOKEN is not set, so its signature "
            "cannot be checked",
            request.url.path,
        )
        raise HTTPException(403, "Twilio signature cannot be checked: no auth token configured")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise HTTPException(403, "Missing X-Twilio-Signature")
    algorithm = get_signature_algorithm(request.headers.get(SETTINGS_HEADER))
    validator = RequestValidator(settings.twilio_auth_token)
    url = public_url(request, settings)
    if not validator.validate(url, form, signature, algorithm):
        log.warning("refusing a Twilio webhook on %s: bad signature", request.url.path)
        raise HTTPException(403, "Invalid X-Twilio-Signature")
    note_twilio_request(request, form)
    return form


TwilioForm = Annotated[FormData, Depends(verified_form)]
