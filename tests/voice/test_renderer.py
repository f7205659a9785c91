"""The voice TwiML renderer on its own: caller ID rules, hints, voices."""

from __future__ import annotations

from service.channels.voice import caller_id_for, render_turn
from service.flowengine.render import VoiceTurn
from tests.voice.caller import parse

LINE = "+18045550100"


def test_caller_id_is_the_callers_valid_number_else_the_number_they_called() -> None:
    assert caller_id_for("+18045550142", LINE) == "+18045550142"
    assert caller_id_for("+447911123456", LINE) == "+447911123456"
    # Withheld, anonymous, malformed, not E.164, not a real number: the line's own number.
    for invalid in ("+266696687", "anonymous", "Restricted", "", None, "8045550142", "+1234"):
        assert caller_id_for(invalid, LINE) == LINE, invalid
    assert caller_id_for("+18045550142 ", LINE) == LINE  # not canonical E.164
    assert caller_id_for(None, None) is None
    assert caller_id_for("junk", "also junk") is None


def test_a_dial_without_any_valid_caller_id_leaves_twilios_default() -> None:
    turn = VoiceTurn(("Connecting you.",), "dial", "+18048287999", "coordinator")
    heard = parse(render_turn(turn, "en", "https://x.example/twilio/voice?at=main"))
    assert heard.dial is not None and "callerId" not in heard.dial
    assert heard.numbers == ["+18048287999"]


def test_hints_are_comma_separated_phrases_of_at_most_100_characters() -> None:
    turn = VoiceTurn(("To go on, press 1.",), "gather")
    long = "word " * 40
    xml = render_turn(turn, "es", "https://x/", hints=("a, b", long, "a  b", "", "c"))
    heard = parse(xml)
    assert heard.gather is not None
    hints = heard.gather["hints"].split(", ")
    assert hints[0] == "a b" and hints[2] == "c" and len(hints) == 3
    assert len(hints[1]) <= 100
    assert heard.gather["language"] == "es-US"


def test_a_language_without_a_voice_is_spoken_in_english() -> None:
    heard = parse(render_turn(VoiceTurn(("Goodbye.",), "hangup"), "fr", "https://x/"))
    assert heard.says[0].language == "en-US" and heard.hangup


def test_a_turn_with_nothing_to_say_still_ends_cleanly() -> None:
    heard = parse(render_turn(VoiceTurn((), "hangup"), "en", "https://x/"))
    assert heard.says == [] and heard.hangup


def test_each_transfer_gets_its_own_caller_id_in_the_remembered_twiml() -> None:
    turn = VoiceTurn(("Connecting you.",), "dial", "+18048287999", "coordinator")
    url = "https://x.example/twilio/voice?at=main&s=dialing"
    first = parse(render_turn(turn, "en", url, caller_id="+18045550142"))
    second = parse(render_turn(turn, "en", url, caller_id="+447911123456"))
    without = parse(render_turn(turn, "en", url))
    assert first.dial is not None and first.dial["callerId"] == "+18045550142"
    assert second.dial is not None and second.dial["callerId"] == "+447911123456"
    assert without.dial is not None and "callerId" not in without.dial
    for heard in (first, second, without):
        assert heard.dial is not None and heard.dial["action"] == url
        assert heard.numbers == ["+18048287999"]
        assert [say.text for say in heard.says] == ["Connecting you."]
