"""Play a flow without Twilio: the terminal `phoneline simulate` and the staff page's simulator.

A `Simulation` takes what a caller does (a key, words, silence, how a transfer ended) or what a
texter
sends, steps the engine, and returns what the line would say and do, rendered by the same functions
the webhooks use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from service.flowengine import Flow, Position, start, step
from service.flowengine.position import (
    DialEnded,
    DialStatus,
    Input,
    Key,
    Recorded,
    Reply,
    Silence,
    Speech,
)
from service.flowengine.position import Start as StartInput
from service.flowengine.render import contact_card, render_sms, render_voice
from service.flowengine.segments import pack
from service.texts.dialogue import respond

DIAL_STATUSES = tuple(status for status in DialStatus if status is not DialStatus.ANSWERED)
VOICE_KEYS = frozenset("0123456789*#")


@dataclass
class Simulation:
    flow: Flow
    channel: str = "voice"
    lang: str | None = None
    position: Position = field(init=False)
    ended: bool = False
    opted_out: bool = False
    """SMS: the texter sent STOP (and not START since); nothing is sent to them."""

    def __post_init__(self) -> None:
        self.position = start(self.flow, self.channel, self.lang)

    @property
    def dialing(self) -> bool:
        return self.position.state == "dialing"

    def begin(self) -> list[str]:
        return self._run(StartInput(), opt_in_notice=True)

    def send(self, entry: str) -> list[str]:
        """One thing the caller or texter did, written as in the terminal."""
        if self.channel == "sms":
            return self._text(entry)
        return self._run(self.parse(entry))

    def _text(self, entry: str) -> list[str]:
        """A text, answered as the SMS line answers it: carrier keywords (STOP, HELP, START...),
        HOLA, MENU and CALL first, then the engine. Opt-outs are kept in memory."""
        turn = respond(self.flow, entry.strip(), self.position, opted_out=self.opted_out)
        self.position = turn.position
        if turn.opted_out is not None:
            self.opted_out = turn.opted_out
        if turn.reply is None:
            return ["[nothing is sent: this number opted out (START to opt back in)]"]
        lines = [f"--- message {i + 1} ---\n{body}" for i, body in enumerate(pack(turn.reply))]
        if turn.call_contact is not None:
            number = self.flow.contacts[turn.call_contact].numbers[0]
            lines.append(f"[calls the texter back and connects them to {number}]")
        return lines

    def parse(self, entry: str) -> Input:
        text = entry.strip()
        if self.channel == "sms":
            return Reply(text)
        if self.dialing:
            return DialEnded(DialStatus.read(text) or DialStatus.COMPLETED)
        if self.position.state == "message":
            # The message itself: any words are a recording (of about a second a word).
            return Recorded(len(text.split())) if text else Silence()
        if not text:
            return Silence()
        if len(text) == 1 and text in VOICE_KEYS:
            return Key(text)
        return Speech(text)

    def _run(self, event: Input, *, opt_in_notice: bool = False) -> list[str]:
        self.position, effects = step(self.flow, self.position, event)
        lang = self.position.lang
        if self.channel == "sms":
            text = render_sms(self.flow, lang, effects, opt_in_notice=opt_in_notice)
            return [f"--- message {i + 1} ---\n{body}" for i, body in enumerate(pack(text))]
        turn = render_voice(self.flow, lang, effects)
        lines = list(turn.lines)
        for contact_id in turn.texts:
            contact = self.flow.contacts[contact_id]
            lines.append(f"[texts the caller: {contact_card(contact, lang)}]")
        if turn.callback is not None:
            lines.append(f"[asks staff to call the caller back: {turn.callback} did not answer]")
        if turn.message is not None:
            lines.append(f"[the message for {turn.message} goes to the staff's worklist]")
        if turn.ending == "dial":
            lines.append(f"[connects to {turn.dial_number}]")
            lines.append("(how did the transfer end? " + ", ".join(DIAL_STATUSES) + ")")
        elif turn.ending == "record":
            lines.append("[beep: records a message of at most two minutes]")
            lines.append("(type the message, or nothing for none)")
        elif turn.ending == "hangup":
            lines.append("[hangs up]")
            self.ended = True
        return lines


def run_terminal(
    simulation: Simulation, entries: Iterable[str], write: Callable[[str], None]
) -> None:
    for line in simulation.begin():
        write(line)
    for entry in entries:
        if simulation.ended:
            break
        shown = entry.rstrip("\n")
        write(f"> {shown}" if shown else "> (silence)" if simulation.channel == "voice" else "> ")
        for line in simulation.send(shown):
            write(line)
