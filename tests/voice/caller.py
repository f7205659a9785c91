"""A scripted caller: posts signed webhooks as Twilio does and follows the TwiML it gets back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from tests.support import AppClient

LINE_NUMBER = "+18045550100"
"""The line's own Twilio number (To) in these tests."""
CALLER_NUMBER = "+18045550142"
"""A caller's mobile number (From)."""
VOICES = {"en-US": "Polly.Joanna-Neural", "es-US": "Polly.Lupe-Neural"}
SSML = {"prosody": {"rate"}, "break": {"time"}}
"""SSML tags (and attributes) a <Say> may hold: those Polly's neural voices fully support."""


@dataclass(frozen=True)
class Said:
    text: str
    language: str
    voice: str


@dataclass
class Heard:
    """One TwiML answer, parsed the way Twilio would read it."""

    xml: str
    says: list[Said] = field(default_factory=list)
    gather: dict[str, str] | None = None
    dial: dict[str, str] | None = None
    numbers: list[str] = field(default_factory=list)
    hangup: bool = False
    redirect: str | None = None
    record: dict[str, str] | None = None
    plays: list[str] = field(default_factory=list)
    """The URL of each recording `<Play>`ed, in order."""

    @property
    def words(self) -> list[str]:
        return [said.text for said in self.says]

    @property
    def text(self) -> str:
        return "\n".join(self.words)

    @property
    def next_url(self) -> str | None:
        if self.gather is not None:
            return self.gather["action"]
        if self.dial is not None:
            return self.dial.get("action")
        if self.record is not None:
            return self.record["action"]
        return None


def parse(xml: str) -> Heard:
    """Parse TwiML, checking it only uses the verbs and nesting this line is meant to use."""
    root = ET.fromstring(xml)
    assert root.tag == "Response", xml
    heard = Heard(xml)

    def take_say(element: ET.Element) -> None:
        if element.tag == "Play":  # a recorded prompt: an absolute URL, nothing else inside
            assert element.text and element.text.startswith("http") and not len(element), xml
            heard.plays.append(element.text)
            return
        assert element.tag == "Say", f"unexpected <{element.tag}> in {xml}"
        assert element.get("language") in VOICES, f"<Say> without a known language: {xml}"
        assert element.get("voice") == VOICES[element.get("language", "")], xml
        check_ssml(element)
        text = "".join(element.itertext())
        assert text.strip(), f"empty <Say>: {xml}"
        heard.says.append(Said(text, element.get("language", ""), element.get("voice", "")))

    def check_ssml(element: ET.Element) -> None:
        """Only the SSML Polly's neural voices support in full: `<prosody rate>` and `<break>`."""
        for inner in element.iter():
            if inner is element:
                continue
            assert inner.tag in SSML, f"<{inner.tag}> in a <Say>: {xml}"
            assert set(inner.attrib) <= SSML[inner.tag], f"<{inner.tag} {inner.attrib}>: {xml}"

    for element in root:
        if element.tag in ("Say", "Play"):
            take_say(element)
        elif element.tag == "Gather":
            assert heard.gather is None, xml
            heard.gather = dict(element.attrib)
            for inner in element:
                take_say(inner)
        elif element.tag == "Dial":
            assert heard.dial is None, xml
            heard.dial = dict(element.attrib)
            for number in element:
                assert number.tag == "Number" and number.text, xml
                heard.numbers.append(number.text)
        elif element.tag == "Record":
            assert heard.record is None, xml
            heard.record = dict(element.attrib)
        elif element.tag == "Hangup":
            heard.hangup = True
        elif element.tag == "Redirect":
            heard.redirect = element.text
        else:
            raise AssertionError(f"unexpected <{element.tag}> in {xml}")
    # A turn ends in one of: a menu, a transfer that reports back, a message recorded, a
    # goodbye. (A <Dial> without an action, as in the fallback, continues to the verbs after
    # it; an empty recording goes on to the <Redirect> after the <Record>.)
    reports_back = heard.dial is not None and "action" in heard.dial
    endings = [heard.gather is not None, reports_back, heard.record is not None, heard.hangup]
    assert sum(endings) == 1, f"a turn ends in one of gather, dial, record, hangup: {xml}"
    if heard.record is not None:
        assert heard.redirect == heard.record["action"] and root[-1].tag == "Redirect", xml
    if reports_back:
        assert root[-1].tag == "Dial", f"nothing may follow a <Dial action>: {xml}"
    return heard


class Caller:
    """One phone call to the line. Every number ever dialed is collected in `dialed`."""

    def __init__(
        self,
        client: AppClient,
        call_sid: str = "CA" + "1" * 32,
        caller: str = CALLER_NUMBER,
        called: str = LINE_NUMBER,
    ) -> None:
        self.client = client
        self.call_sid = call_sid
        self.caller = caller
        self.called = called
        self.last: Heard | None = None
        self.dialed: list[str] = []
        self.turns = 0

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": self.called,
            "Caller": self.caller,
            "Called": self.called,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            **extra,
        }

    def post(self, url: str, **extra: str) -> Heard:
        response = self.client.twilio(url, self.params(**extra))
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/xml")
        heard = parse(response.text)
        self.dialed.extend(heard.numbers)
        self.last = heard
        self.turns += 1
        return heard

    def call(self) -> Heard:
        return self.post("/twilio/voice")

    @property
    def url(self) -> str:
        assert self.last is not None and self.last.next_url, "the call has nowhere to go"
        return self.last.next_url

    def press(self, key: str) -> Heard:
        return self.post(self.url, Digits=key)

    def say(self, words: str, confidence: str = "0.91") -> Heard:
        return self.post(self.url, SpeechResult=words, Confidence=confidence)

    def silence(self) -> Heard:
        return self.post(self.url)

    def dial_ends(self, status: str, duration: str = "0") -> Heard:
        assert self.last is not None and self.last.dial is not None, "not dialing"
        return self.post(
            self.url, DialCallStatus=status, DialCallDuration=duration, DialCallSid="CA" + "9" * 32
        )

    def act(self, entry: str) -> Heard:
        """What a `phoneline simulate` user types: a key, words, Enter (silence), or how a
        transfer ended while dialing."""
        if self.last is not None and self.last.dial is not None:
            return self.dial_ends(entry or "completed")
        if not entry:
            return self.silence()
        if len(entry) == 1 and entry in "0123456789*#":
            return self.press(entry)
        return self.say(entry)

    def hang_up(self, duration: str = "30") -> int:
        response = self.client.twilio(
            "/twilio/voice/status",
            self.params(CallStatus="completed", CallDuration=duration),
        )
        return response.status_code
