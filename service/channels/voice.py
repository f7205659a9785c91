"""The one TwiML renderer for voice: a `VoiceTurn` (what the engine's effects say) into TwiML.

Only documented TwiML verbs and nesting (twilio's `VoiceResponse` builds it): every `<Say>` has
its `language` and `voice`; a menu is a `<Gather>` with the `<Say>`s inside, so a caller can press
a key (or speak) during the prompt; a transfer is `<Dial action=…><Number>`; an ending is
`<Hangup/>` after the goodbye. A line an editor recorded is `<Play>`ed (its versioned URL, in
the same place its `<Say>` would be, inside the `<Gather>`: a caller can press a key during it).

Twilio's documented behaviour this relies on (TwiML Voice reference, <Gather> and <Dial>):
- `<Gather>` posts the key to `action` as `Digits`, or the words as `SpeechResult` (with
  `Confidence`); `finishOnKey=""` makes `#` and `*` ordinary keys; `actionOnEmptyResult="true"`
  posts to `action` even when the caller pressed nothing (no `Digits`): the silence path.
- `<Dial>` requests its `action` when the dialed call ends, with `DialCallStatus` (completed,
  answered, busy, no-answer, failed, canceled) and `DialCallDuration`.
- `callerId` must be the calling number, the called number or a verified number (error 13214),
  and carriers sometimes send an invalid caller ID on incoming calls: see `caller_id_for`.

A phone number in a line is read slowly, in its groups: SSML inside the `<Say>` (twilio's `Say`
builders), using only what Amazon Polly's neural voices (Joanna-Neural, Lupe-Neural) support in
full, because an unsupported tag makes Polly say that sentence in the standard voice instead
(Polly, "Supported SSML tags"): `<break>` (full availability on neural voices) between the
groups, and `<prosody rate>` (prosody is "partial" on neural voices: volume and rate work,
pitch does not) to slow the digits. No `<say-as>`: its `characters` form falls back to the
standard voice, and digits separated by spaces are already read one by one. The words are the
same as the plain line (SSML only adds pauses), so the simulator prints what a caller hears.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

from twilio.twiml.voice_response import Gather, Say, VoiceResponse

from service.flowengine.model import Contact
from service.flowengine.phrases import PHRASES, phrase
from service.flowengine.render import SPOKEN_NUMBER, VoiceTurn, numbers_read_aloud, spoken_digits
from service.phone import e164_of, parse_valid

SAY_LANGUAGES = {"en": "en-US", "es": "es-US"}
SAY_VOICES = {"en": "Polly.Joanna-Neural", "es": "Polly.Lupe-Neural"}
DEFAULT_LANG = "en"

GATHER_TIMEOUT_SECONDS = 6
DIAL_TIMEOUT_SECONDS = 25
SCREEN_TIMEOUT_SECONDS = 8
MESSAGE_MAX_SECONDS = 120
MESSAGE_SILENCE_SECONDS = 8
"""Seconds of silence that end a message (Twilio's default, 5, cuts off a caller who stops to
think)."""
MAX_HINT_CHARS = 100
FALLBACK_LANGUAGES = ("en", "es")
NUMBER_RATE = "85%"
"""How fast a phone number is read, against the voice's normal rate."""
GROUP_PAUSE = "400ms"
"""The pause between the groups of a phone number ("8 0 4" · "8 2 8" · "7 9 9 9")."""


# "Para español, oprima 9." in an English menu is Spanish: said in the Spanish voice.
LANGUAGE_OFFERS = {
    PHRASES[lang]["language_offer"].format(key=key): lang
    for lang in SAY_LANGUAGES
    for key in "0123456789"
}


def say(response: VoiceResponse | Gather, text: str, lang: str) -> None:
    """A `<Say>` in `lang`'s language and voice (English for a language we have no voice for),
    with any phone number in it read slowly, a pause between its groups."""
    known = lang if lang in SAY_LANGUAGES else DEFAULT_LANG
    numbers = list(SPOKEN_NUMBER.finditer(text))
    if not numbers:
        response.say(text, language=SAY_LANGUAGES[known], voice=SAY_VOICES[known])
        return
    said = response.say(language=SAY_LANGUAGES[known], voice=SAY_VOICES[known])
    at = 0
    for number in numbers:
        if number.start() > at:
            said.append(text[at : number.start()])
        _slowly(said, number.group())
        at = number.end()
    if at < len(text):
        said.append(text[at:])


def _slowly(said: Say, number: str) -> None:
    """`8 0 4, 8 2 8, 7 9 9 9` as `<prosody rate>` with a `<break>` after each comma: the
    same words, said slower and in groups."""
    slow = said.prosody(rate=NUMBER_RATE)
    groups = number.split(", ")
    for index, group in enumerate(groups):
        if index:
            slow.break_(time=GROUP_PAUSE)
        lead = " " if index else ""
        comma = "," if index < len(groups) - 1 else ""
        slow.append(f"{lead}{group}{comma}")


def render_turn(
    turn: VoiceTurn,
    lang: str,
    action_url: str,
    *,
    hints: Sequence[str] = (),
    caller_id: str | None = None,
    recording_callback: str | None = None,
    screen_url: str | None = None,
    plays: Sequence[tuple[str, str]] = (),
) -> str:
    """The TwiML for one answer to a voice webhook. `action_url` (absolute, signed by Twilio
    when it posts) carries the call's next position; it is where the Gather, Dial and Record
    report. `recording_callback`: where Twilio reports a message's recording once it is ready.
    `screen_url`: the TwiML whoever answers a screened transfer hears (`<Number url>`).
    `plays`: (line, audio URL) for each line a recording is played for instead of said.

    A flow has a few hundred different answers, so each is built once and remembered; only a
    transfer's caller ID differs from call to call, and it is put into the remembered TwiML."""
    recording = recording_callback if turn.ending == "record" else None
    screened = bool(screen_url) and turn.screen and turn.ending == "dial"
    twiml = _render_turn(
        turn,
        lang,
        action_url,
        tuple(hints),
        recording,
        with_caller_id=bool(caller_id),
        screened=screened,
        plays=tuple(plays),
    )
    if caller_id:
        twiml = twiml.replace(_CALLER_ID_SLOT, f"callerId={quoteattr(caller_id)}", 1)
    if screened and screen_url:
        twiml = twiml.replace(_SCREEN_SLOT, f"url={quoteattr(screen_url)}", 1)
    return twiml


_CALLER_ID_SLOT = 'callerId="caller-id"'
_SCREEN_SLOT = 'url="screen-url"'


@functools.lru_cache(maxsize=2048)
def _render_turn(
    turn: VoiceTurn,
    lang: str,
    action_url: str,
    hints: tuple[str, ...],
    recording_callback: str | None,
    *,
    with_caller_id: bool,
    screened: bool = False,
    plays: tuple[tuple[str, str], ...] = (),
) -> str:
    response = VoiceResponse()
    played = dict(plays)
    if turn.ending == "gather":
        gather = response.gather(
            input="dtmf speech",
            num_digits=1,
            finish_on_key="",
            timeout=GATHER_TIMEOUT_SECONDS,
            speech_timeout="auto",
            action_on_empty_result=True,
            action=action_url,
            method="POST",
            language=SAY_LANGUAGES.get(lang, SAY_LANGUAGES[DEFAULT_LANG]),
            hints=_hints(hints) or None,
        )
        for line in turn.lines:
            if line in played:
                gather.play(played[line])
            else:
                say(gather, line, LANGUAGE_OFFERS.get(line, lang))
        # Not reached while Twilio honours actionOnEmptyResult; if it ever falls through, the
        # same URL without Digits is the silence path, so the call still cannot stall.
        response.redirect(action_url, method="POST")
    else:
        for line in turn.lines:
            if line in played:
                response.play(played[line])
            else:
                say(response, line, lang)
        if turn.ending == "dial" and turn.dial_number:
            dial = response.dial(
                action=action_url,
                method="POST",
                timeout=DIAL_TIMEOUT_SECONDS,
                caller_id="caller-id" if with_caller_id else None,
            )
            if screened:
                dial.number(turn.dial_number, url="screen-url", method="POST")
            else:
                dial.number(turn.dial_number)
        elif turn.ending == "record":
            _record(response, action_url, recording_callback)
        else:
            response.hangup()
    return _xml(response)


def _record(response: VoiceResponse, action_url: str, recording_callback: str | None) -> None:
    """A message after the beep: at most two minutes, pound ends it, silence trimmed. Twilio
    posts the recording to `action` (`RecordingSid`, `RecordingDuration`) and, once the audio
    is ready (or absent), to `recordingStatusCallback`. An empty recording is not posted to
    `action`: Twilio goes on with the next verb, and the same URL asked with nothing is "no
    message" (`Recorded` never comes)."""
    response.record(
        action=action_url,
        method="POST",
        max_length=MESSAGE_MAX_SECONDS,
        timeout=MESSAGE_SILENCE_SECONDS,
        finish_on_key="#",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=recording_callback,
        recording_status_callback_method="POST" if recording_callback else None,
        recording_status_callback_event="completed absent" if recording_callback else None,
    )
    response.redirect(action_url, method="POST")


def screen_twiml(whisper: str, lang: str, action_url: str) -> str:
    """What whoever answers a screened transfer hears: who is calling, and 1 to take it (a
    `<Gather>` that reports to `action_url`, even with no key). Nothing after it: the action's
    answer decides (empty: the parties are connected; `<Hangup>`: they are not)."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=SCREEN_TIMEOUT_SECONDS,
        action_on_empty_result=True,
        action=action_url,
        method="POST",
    )
    say(gather, whisper, lang)
    say(gather, whisper, lang)
    response.hangup()
    return _xml(response)


def screen_answer(taken: bool) -> str:
    """The answer to the screen's key: nothing (the parties are connected), or a hang-up (this
    leg ends; the caller hears that nobody answered, and the choices)."""
    response = VoiceResponse()
    if not taken:
        response.hangup()
    return _xml(response)


def fallback(number: str, caller_id: str | None = None) -> str:
    """The answer when the line cannot run its menu: an apology in every language, the number
    read aloud, and a `<Dial>` to the coordinator (no action: nothing to call back into)."""
    digits = spoken_digits(number)
    response = VoiceResponse()
    for lang in FALLBACK_LANGUAGES:
        say(response, phrase(lang, "fallback_sorry"), lang)
        say(response, phrase(lang, "number_is", digits=digits), lang)
    dial = response.dial(timeout=DIAL_TIMEOUT_SECONDS, caller_id=caller_id or None)
    dial.number(number)
    for lang in FALLBACK_LANGUAGES:
        say(response, phrase(lang, "fallback_after", digits=digits), lang)
    response.hangup()
    return _xml(response)


def call_back_twiml(
    contact: Contact, lang: str, program: str | None = None, *, after_dial: str | None = None
) -> str:
    """TwiML for a call placed to a texter who asked to be called (CALL): before it connects,
    it says who is calling and why; then it dials that contact's lines at once (the first to
    answer takes it), in the voice line's voices. After the dial (unanswered, or after the
    conversation) the caller hears the number to call, twice, and a goodbye: from this
    document, or, with `after_dial` (the dial's action URL), from the answer to that request,
    which also tells the line whether the contact answered."""
    response = VoiceResponse()
    name = contact.name[lang]
    intro = phrase(lang, "call_back_intro", program=program or phrase(lang, "program"), name=name)
    say(response, intro, lang)
    if after_dial is None:
        dial = response.dial(timeout=DIAL_TIMEOUT_SECONDS)
    else:
        query = urlencode({"contact": contact.id, "lang": lang})
        dial = response.dial(timeout=DIAL_TIMEOUT_SECONDS, action=f"{after_dial}&{query}")
    for number in contact.numbers:
        dial.number(number)
    if after_dial is None:
        _after_call_back_dial(response, contact, lang)
    return _xml(response)


def after_call_back_dial_twiml(contact: Contact, lang: str) -> str:
    """The answer to a call-back's dial action (see `call_back_twiml`)."""
    response = VoiceResponse()
    _after_call_back_dial(response, contact, lang)
    return _xml(response)


def _after_call_back_dial(response: VoiceResponse, contact: Contact, lang: str) -> None:
    """What a called-back texter hears once the dial is over: the number to call, twice, and
    a goodbye."""
    for line in numbers_read_aloud(contact, lang, "call_them_at", range(len(contact.numbers))):
        say(response, line, lang)
    say(response, phrase(lang, "goodbye"), lang)


def caller_id_for(caller: str | None, called: str | None) -> str | None:
    """The callerId of a forwarded call: the caller's own number when it is a valid E.164
    number (the person being called sees who is calling), otherwise the number they called
    (ours); None when neither is valid, and Twilio's default applies."""
    for candidate in (caller, called):
        if candidate and _valid_e164(candidate):
            return candidate
    return None


@functools.lru_cache(maxsize=4096)
def _valid_e164(number: str) -> bool:
    parsed = parse_valid(number)
    return parsed is not None and e164_of(parsed) == number


def _hints(hints: Sequence[str]) -> str:
    """Twilio's `hints`: comma separated phrases of at most 100 characters each."""
    cleaned = []
    for hint in hints:
        text = " ".join(hint.replace(",", " ").split())[:MAX_HINT_CHARS]
        if text and text not in cleaned:
            cleaned.append(text)
    return ", ".join(cleaned)


def _xml(response: VoiceResponse) -> str:
    return str(response.to_xml(xml_declaration=True))
