"""Phone numbers: E.164 normalisation and the one masking function the whole app uses."""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "US"
MASK_PREFIX = "•••-•••-"
LAST_RESORT_NUMBER = "+18048287999"
"""The coordinator the fallback dials and names when no line's flow could be loaded at all (the
shipped flow's `coordinator`; a test keeps them equal). Every other number comes from a flow."""
# +1 and ten digits: a possible North American number, written in E.164 already.
_NANP_E164 = re.compile(r"\+1[0-9]{10}")


def to_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """`raw` as an E.164 number ("+18048287999"), or None when it is not a possible number.

    National numbers are read in `region` (US by default); vanity letters are translated.
    """
    if not raw or not raw.strip():
        return None
    if _NANP_E164.fullmatch(raw):
        return raw  # what Twilio sends for US and Canadian callers: already E.164, possible
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return e164_of(parsed)


def parse_valid(raw: str) -> phonenumbers.PhoneNumber | None:
    """A number written in international form ("+1…") that is a valid number, parsed; else None."""
    if not raw.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def e164_of(parsed: phonenumbers.PhoneNumber) -> str:
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def national(number: str) -> str:
    """How a number is written at home: "+18048287999" -> "(804) 828-7999"."""
    formatted: str = phonenumbers.format_number(
        phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    return formatted


def mask(number: str | None) -> str:
    """Only the last four digits: "+18048287999" -> "•••-•••-7999"; "" for nothing."""
    if not number:
        return ""
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 4:
        return MASK_PREFIX + "••••"
    return MASK_PREFIX + "".join(digits[-4:])
