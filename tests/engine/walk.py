"""Walk every node of a flow, as a caller and as a texter, collecting what they hear and read."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.flowengine import Flow, Position, step
from service.flowengine.effects import Connect
from service.flowengine.position import DialEnded, Key, Start
from service.flowengine.render import render_sms, render_voice


@dataclass
class Walk:
    heard: list[str] = field(default_factory=list)
    dialed: set[str] = field(default_factory=set)
    texted_contacts: set[str] = field(default_factory=set)
    visited: set[str] = field(default_factory=set)

    @property
    def text(self) -> str:
        return "\n".join(self.heard)


def walk(flow: Flow, channel: str, lang: str) -> Walk:
    """Press every option of every node reachable from the start (breadth first)."""
    result = Walk()
    start_position = Position(flow.start, lang, "sms" if channel == "sms" else "voice")
    queue = [(start_position, Start())]
    seen: set[tuple[str, str]] = set()
    while queue:
        position, event = queue.pop(0)
        after, effects = step(flow, position, event)
        result.visited.add(after.node)
        if channel == "sms":
            result.heard.append(render_sms(flow, lang, effects, opt_in_notice=True))
        else:
            turn = render_voice(flow, lang, effects)
            result.heard.extend(turn.lines)
            result.texted_contacts.update(turn.texts)
            if turn.dial_number:
                result.dialed.add(turn.dial_number)
                if after.state == "dialing":
                    queue.append((after, DialEnded("no-answer")))
        for effect in effects:
            if isinstance(effect, Connect) and channel == "sms":
                result.texted_contacts.add(effect.contact)
        node = flow.nodes[after.node]
        if (after.node, after.state) in seen or after.state != "menu":
            continue
        seen.add((after.node, after.state))
        for option in node.options:
            queue.append((after, Key(option.key)))
    return result
