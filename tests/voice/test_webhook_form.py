"""One typed form for every webhook (`service.channels.form.Webhook`): parsed once at the
boundary, its numbers normalised there, the voice and the text lines read the same fields."""

from __future__ import annotations

from service.channels.form import MAX_SPEECH_CHARS, Webhook


def test_the_numbers_are_normalised_once_and_what_is_not_a_number_is_kept() -> None:
    hook = Webhook.parse({"From": " (804) 555-0100 ", "To": "804.828.7999"})
    assert (hook.from_number, hook.to_number) == ("+18045550100", "+18048287999")
    hidden = Webhook.parse({"From": "anonymous", "Called": "+18045550177"})
    assert (hidden.from_number, hidden.to_number) == ("anonymous", "+18045550177")
    sip = Webhook.parse({"From": "sip:alice@example.org", "To": "client:" + "x" * 90})
    assert sip.from_number == "sip:alice@example.org"
    assert sip.to_number == ("client:" + "x" * 90)[:64]


def test_every_field_is_bounded_and_optional() -> None:
    assert Webhook.parse({}) == Webhook()
    hook = Webhook.parse(
        {
            "SpeechResult": "y" * 500,
            "DialCallStatus": "No-Answer",
            "CallStatus": "COMPLETED",
            "SmsSid": "SM" + "1" * 32,
            "SmsStatus": "Delivered",
            "Body": "  spaces kept  ",
            "Digits": ["1"],  # not a string: absent
        }
    )
    assert len(hook.speech) == MAX_SPEECH_CHARS
    assert (hook.dial_status, hook.call_status) == ("no-answer", "completed")
    assert (hook.message_sid, hook.message_status) == ("SM" + "1" * 32, "delivered")
    assert hook.body == "  spaces kept  "
    assert hook.digits == ""
