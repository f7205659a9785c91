"""Bad input never gives a 500: the caller gets the main menu, or the menu they were in."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.calls.position_url import decode, encode
from service.flowengine.position import Position
from tests.support import PUBLIC_BASE, AppClient
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER, Caller, Heard, parse

VOICE = PUBLIC_BASE + "/twilio/voice"


def is_main_menu(heard: Heard) -> bool:
    return (
        heard.gather is not None
        and "?at=main&" in heard.gather["action"]
        and "To find another doctor, press 2." in heard.words
    )


def test_a_call_without_twilios_call_sid_is_a_400(client: AppClient) -> None:
    """Twilio sends a CallSid ("CA" and 32 hex digits) with every voice webhook: a request
    without one is not Twilio's, however it was signed (see tests/ops/test_webhook_identity)."""
    for fields in (
        {},
        {"From": CALLER_NUMBER, "To": LINE_NUMBER},
        {"CallSid": "CA1", "From": CALLER_NUMBER},
        {"CallSid": "CA" + "g" * 32},
        {"CallSid": "SM" + "1" * 32},
        {"CallSid": "CA" + "1" * 33},
    ):
        response = client.twilio("/twilio/voice", fields)
        assert response.status_code == 400, fields
        assert "CallSid" in response.text


def test_a_call_with_only_its_call_sid_hears_the_menu(client: AppClient) -> None:
    response = client.twilio("/twilio/voice", {"CallSid": "CA" + "3" * 32})
    assert response.status_code == 200
    heard = parse(response.text)
    assert is_main_menu(heard)
    response = client.twilio(heard.next_url or "", {"CallSid": "CA" + "3" * 32, "Digits": "0"})
    assert parse(response.text).numbers == ["+18048287999"]


def test_junk_digits_repeat_the_menu_the_caller_is_in(caller: Caller) -> None:
    caller.call()
    caller.press("2")
    for junk in ("12ab", "<Say>", "٣", "**", "0 0", "\u0000"):
        heard = caller.press(junk)
        assert heard.gather is not None and "?at=reach&" in heard.gather["action"], junk
        assert heard.words[0].startswith("If your doctor cannot recommend"), junk
    assert not caller.dialed


def test_a_bogus_position_lands_on_the_main_menu(client: AppClient) -> None:
    for query in (
        "at=nowhere&lang=en&m=0&s=menu&c=&l=0",
        "at=reach&lang=klingon&m=-4&s=flying&c=../../etc&l=99999999999999999999",
        "at=library&lang=en&m=2&s=dialing&c=nobody&l=7",
        "at=" + "x" * 5000,
        "at=%00%ff&lang=%ff",
        "at=main&at=reach&lang=en&lang=es",
        "lang=es&m=2",
    ):
        url = f"{VOICE}?{query}"
        response = client.twilio(url, {"CallSid": "CA" + "6" * 32, "Digits": "5"})
        assert response.status_code == 200, query
        heard = parse(response.text)
        assert heard.gather is not None, query


def test_an_unknown_node_starts_over_at_the_main_menu_in_the_callers_language(
    client: AppClient,
) -> None:
    url = f"{VOICE}?at=removed_in_the_new_flow&lang=es&m=0&s=menu&c=&l=0"
    heard = parse(client.twilio(url, {"CallSid": "CA" + "6" * 32, "Digits": "1"}).text)
    assert heard.gather is not None and "?at=main&lang=es&" in heard.gather["action"]
    assert heard.words[0].startswith("Esta es la Línea de Segunda Opinión")


def test_a_stale_dialing_position_never_dials_an_unknown_contact(client: AppClient) -> None:
    url = f"{VOICE}?at=reach&lang=en&m=0&s=retry&c=someone_removed&l=0"
    heard = parse(client.twilio(url, {"CallSid": "CA" + "6" * 32, "Digits": "1"}).text)
    # "1" in a retry menu would redial; with no such contact it is the menu's option 1.
    assert heard.gather is not None and "?at=coordinator&" in heard.gather["action"]


def test_an_unknown_dial_status_is_treated_as_a_failed_transfer(caller: Caller) -> None:
    caller.call()
    caller.press("0")
    heard = caller.post(caller.url, DialCallStatus="exploded")
    assert heard.words[0] == "The call could not be connected."
    assert "To try again, press 1." in heard.words


def test_a_100_kb_body_is_refused_with_413(client: AppClient) -> None:
    params = {"CallSid": "CA" + "7" * 32, "SpeechResult": "x" * 100_000}
    response = client.twilio("/twilio/voice", params)
    assert response.status_code == 413


def test_a_status_callback_without_its_parameters_is_a_400(client: AppClient) -> None:
    assert client.twilio("/twilio/voice/status", {}).status_code == 400
    assert client.twilio("/twilio/voice/status", {"CallSid": "CA1"}).status_code == 400
    assert client.twilio("/twilio/voice/status", {"CallSid": "CA" + "1" * 32}).status_code == 400
    weird = {"CallSid": "CA" + "1" * 32, "CallStatus": "sideways", "CallDuration": "-5e9"}
    assert client.twilio("/twilio/voice/status", weird).status_code == 204


def test_positions_survive_the_round_trip() -> None:
    position = Position("library", "es", "voice", 2, "dialing", "library", 1)
    assert decode(dict(kv.split("=") for kv in encode(position).split("&")), "en") == position
    assert decode({}, "en") is None
    assert decode({"at": "main", "m": "3"}, "en") == Position("main", "en", misses=3)
    assert decode({"at": "main", "m": "4", "l": "x", "s": "retry"}, "en") == Position(
        "main", "en", state="retry"
    )


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
FIELDS = st.dictionaries(
    st.sampled_from(["From", "To", "Digits", "SpeechResult", "Confidence", "DialCallStatus"]),
    TEXT,
)
QUERY = st.dictionaries(st.sampled_from(["at", "lang", "m", "s", "c", "l", "zz"]), TEXT)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERY, fields=FIELDS)
def test_any_parameters_give_valid_twiml(
    client: AppClient, query: dict[str, str], fields: dict[str, str]
) -> None:
    url = VOICE + ("?" + urlencode(query, quote_via=quote) if query else "")
    response = client.twilio(url, {"CallSid": "CA" + "5" * 32, **fields}, signed_url=url)
    assert response.status_code == 200, response.text
    heard = parse(response.text)
    assert set(heard.numbers) <= {
        "+18048287999",
        "+18048288709",
        "+18048280450",
        "+18004226237",
        "+18006386833",
    }
