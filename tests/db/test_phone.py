from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from service.phone import mask, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(804) 828-7999", "+18048287999"),
        ("804.828.7999", "+18048287999"),
        ("+1 804 828 7999", "+18048287999"),
        ("1-800-4-CANCER", "+18004226237"),
        ("+44 20 7946 0958", "+442079460958"),
        ("", None),
        ("   ", None),
        (None, None),
        ("anonymous", None),
        ("+266696687", None),  # what Twilio sends for a withheld caller ID
        ("12", None),
        ("client:alice", None),
    ],
)
def test_to_e164(raw: str | None, expected: str | None) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+18048287999", "•••-•••-7999"),
        ("+442079460958", "•••-•••-0958"),
        ("(804) 828-0450", "•••-•••-0450"),
        ("123", "•••-•••-••••"),
        (None, ""),
        ("", ""),
    ],
)
def test_mask_shows_only_the_last_four_digits(number: str | None, expected: str) -> None:
    assert mask(number) == expected


@given(st.from_regex(r"\+1[0-9]{10}", fullmatch=True))
def test_north_american_numbers_in_e164_come_back_as_the_library_writes_them(raw: str) -> None:
    # to_e164 takes a short cut for "+1" and ten digits; phonenumbers must agree with it.
    parsed = phonenumbers.parse(raw, "US")
    possible = phonenumbers.is_possible_number(parsed)
    expected = phonenumbers.format_number(parsed, PhoneNumberFormat.E164) if possible else None
    assert to_e164(raw) == expected
