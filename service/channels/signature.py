"""One check for every `/twilio/*` route: the `X-Twilio-Signature` header.

Twilio signs the full URL it requested plus the sorted form parameters (HMAC-SHA1 with the account's
auth token). Behind a proxy the URL we see is not the one Twilio used, so it is rebuilt from
`PUBLIC_BASE_URL`, or from `X-Forwarded-Proto`/`X-Forwarded-Host` when the request comes from a
trusted proxy (`service.middleware.TrustedProxies`, the one place that decides).
"""

from __future__ import annotations

import hmac
import logging
import re
from functools import lru_cache

from starlette.exceptions import HTTPException
from starlette.requests import Request
from twilio.request_validator import RequestValidator, get_signature_algorithm

from service.channels.form import TwilioForm, parse_urlencoded
from service.config import Settings
from service.logs import note_twilio_request
from service.middleware import FORWARDED_HOST

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
URLENCODED = "application/x-www-form-urlencoded"
MAX_FIELDS = 1000


def public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio requested, as Twilio saw it: PUBLIC_BASE_URL + path + query, or else the
    request's own URL as a trusted proxy forwarded it (`service.middleware.TrustedProxies`)."""
    scope = request.scope
    path_and_query: str = scope["path"]
    if query := scope.get("query_string", b"").decode("latin-1"):
        path_and_query += "?" + query
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path_and_query
    host = scope.get(FORWARDED_HOST) or request.headers.get("host", request.url.netloc)
    return f"{request.url.scheme}://{host}{path_and_query}"


CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
IDENTIFIERS = {"CallSid": CALL_SID, "MessageSid": MESSAGE_SID, "RecordingSid": RECORDING_SID}


async def verified_form(request: Request, identifier: str) -> TwilioForm:
    """The request's form parameters, once its Twilio signature is proven (403 otherwise) and
    it carries Twilio's identity (400 otherwise). Every `/twilio/*` handler starts with it.

    Twilio always sends the `identifier` of the route (`CallSid`: "CA" and 32 hex digits;
    `MessageSid`: "SM" or "MM" and 32 hex digits; `RecordingSid`: "RE" and 32) and the
    `AccountSid`. Requiring them, and
    the configured account, is what makes a signed request impossible to re-cut: the signature
    covers names and values run together, so the same bytes can be split into other names
    ("MessageSi" = "dSM…NumMedia0…") that lack a well-formed identifier. Every side effect of
    a webhook (a text, a call-back, an opt-out) is keyed on that identifier, so an exact
    replay changes nothing either."""
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    _verify_signature(request, settings, form)
    if not IDENTIFIERS[identifier].fullmatch(str(form.get(identifier) or "")):
        log.warning("refusing a Twilio webhook on %s: no valid %s", request.url.path, identifier)
        raise HTTPException(400, f"{identifier} is missing or malformed")
    account = settings.twilio_account_sid
    if account and not hmac.compare_digest(str(form.get("AccountSid") or ""), account):
        log.warning("refusing a Twilio webhook on %s: another AccountSid", request.url.path)
        raise HTTPException(400, "AccountSid is not this line's account")
    note_twilio_request(request, form)
    return form


def _verify_signature(request: Request, settings: Settings, form: TwilioForm) -> None:
    if not settings.twilio_auth_token:
        log.error(
            "refusing a Twilio webhook on %s: TWILIO_AUTH_TOKEN is not set, so its signature "
            "cannot be checked",
            request.url.path,
        )
        raise HTTPException(403, "Twilio signature cannot be checked: no auth token configured")
    headers = request.headers
    signature = headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise HTTPException(403, "Missing X-Twilio-Signature")
    url = public_url(request, settings)
    algorithm = get_signature_algorithm(headers.get(SETTINGS_HEADER))
    if not signature_matches(settings.twilio_auth_token, url, form, signature, algorithm):
        log.warning("refusing a Twilio webhook on %s: bad signature", request.url.path)
        raise HTTPException(403, "Invalid X-Twilio-Signature")


def signature_matches(
    token: str, url: str, form: TwilioForm, signature: str, algorithm: str | None
) -> bool:
    """Whether `signature` is Twilio's for this URL and form, by twilio's own RequestValidator.

    `RequestValidator.validate` computes the signature twice (the URL with and without its
    port: Twilio has signed both ways). The URL as we know it is what Twilio signs almost
    always, so that one is computed first and alone; `validate` runs only when it differs.
    """
    validator = _validator(token)
    try:
        expected: str = validator.compute_signature(url, form, algorithm)
    except ValueError:  # an algorithm twilio does not know: `validate` logs it and says no
        return bool(validator.validate(url, form, signature, algorithm))
    if hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
        return True
    return bool(validator.validate(url, form, signature, algorithm))


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


async def read_form(request: Request) -> TwilioForm:
    """The posted form. Twilio posts `application/x-www-form-urlencoded`, read here as the
    standard library's parse_qsl reads it (`parse_urlencoded`), as Starlette would read it and
    in a fraction of the time; anything else (multipart) goes through Starlette, a file's value
    read as "". Too many fields: 400."""
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != URLENCODED:
        async with request.form(max_fields=MAX_FIELDS) as form:
            return TwilioForm((k, v if isinstance(v, str) else "") for k, v in form.multi_items())
    body = (await request.body()).decode("latin-1")
    try:
        return TwilioForm(parse_urlencoded(body, MAX_FIELDS))
    except ValueError as error:
        raise HTTPException(400, f"Too many form fields (at most {MAX_FIELDS})") from error
