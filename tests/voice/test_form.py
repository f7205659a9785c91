"""The webhooks' form parser reads a body exactly as the standard library's parse_qsl does."""

from __future__ import annotations

from contextlib import nullcontext
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.channels.form import TwilioForm, parse_urlencoded

# Bodies built from the characters that matter to the parser, and arbitrary text too.
PIECES = st.sampled_from(
    ["&", "=", "+", "%", "%2B", "%2b", "%2B%", "%2", "%zz", "%C3%A9", "%FF", "a", "é", " "]
)
bodies = st.one_of(st.lists(PIECES, max_size=30).map("".join), st.text(max_size=60))


@given(bodies)
@example("")
@example("&&==&")
@example("a=1&a=2&b")
@example("From=%2B18045550123&Body=caf%C3%A9+ol%C3%A9&Digits=")
def test_it_reads_any_body_as_parse_qsl_does(body: str) -> None:
    assert parse_urlencoded(body, 1000) == parse_qsl(body, keep_blank_values=True)


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=12))
def test_it_reads_what_urlencode_writes(pairs: list[tuple[str, str]]) -> None:
    assert parse_urlencoded(urlencode(pairs), 1000) == [(k, v) for k, v in pairs]


@pytest.mark.parametrize("fields", [1000, 1001, 5000])
def test_too_many_fields_is_refused_as_parse_qsl_refuses_it(fields: int) -> None:
    body = "&".join(["a=1"] * fields)
    refused = fields > 1000
    with pytest.raises(ValueError) if refused else nullcontext():
        parse_urlencoded(body, 1000)
    with pytest.raises(ValueError) if refused else nullcontext():
        parse_qsl(body, keep_blank_values=True, max_num_fields=1000)


def test_the_form_gives_the_last_value_and_every_value_of_a_name() -> None:
    form = TwilioForm([("Digits", "1"), ("From", "+1804"), ("Digits", "2")])
    assert form["Digits"] == "2" and form.get("Missing", "") == ""
    assert form.getall("Digits") == ["1", "2"] and form.getall("From") == ["+1804"]
    assert TwilioForm([("a", "1")]).getall("a") == ["1"]
