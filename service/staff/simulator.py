"""The browser simulator: the flow played by `service.simulator.Simulation`, in plain forms.

What the tester did so far travels in a signed hidden field (channel, language and entries) and
is replayed on each step, so no state is kept on the server and nothing is recorded as a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

from service.flowengine import Flow
from service.simulator import DIAL_STATUSES, Simulation
from service.staff.pages import flow_of
from service.staff.web import (
    CheckedForm,
    CurrentStaff,
    PageError,
    pages_router,
    render,
    settings_of,
)

router = pages_router()

MAX_ENTRIES = 200
MAX_ENTRY_LENGTH = 320
TERMINAL_PROMPT = "(how did the transfer end?"
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")


@dataclass
class Played:
    channel: str
    lang: str
    entries: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Turn:
    who: str  # "line" or "you"
    text: str


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(settings_of(request).resolved_secret_key(), salt="phoneline-sim")


def _encode(request: Request, played: Played) -> str:
    return str(_serializer(request).dumps([played.channel, played.lang, played.entries]))


def _decode(request: Request, raw: str) -> Played:
    try:
        channel, lang, entries = _serializer(request).loads(raw)
    except (BadSignature, ValueError, TypeError):
        raise PageError(
            400, "Simulation expired", "This simulation could not be read; start a new one."
        ) from None
    return Played(str(channel), str(lang), [str(entry) for entry in entries])


def _what_you_did(channel: str, entry: str, dialing: bool) -> str:
    if channel == "sms":
        return entry or "(empty text)"
    if dialing:
        return f"the transfer ended: {entry or 'completed'}"
    if not entry:
        return "(silence)"
    if len(entry) == 1:
        return f"pressed {entry}"
    return f"said “{entry}”"


def replay(flow: Flow, played: Played) -> tuple[Simulation, list[Turn]]:
    simulation = Simulation(flow, played.channel, played.lang)
    turns = [Turn("line", line) for line in simulation.begin()]
    for entry in played.entries:
        if simulation.ended:
            break
        turns.append(Turn("you", _what_you_did(played.channel, entry, simulation.dialing)))
        turns.extend(
            Turn("line", line)
            for line in simulation.send(entry)
            if not line.startswith(TERMINAL_PROMPT)  # the page asks with buttons instead
        )
    return simulation, turns


def simulator_page(
    request: Request,
    flow: Flow | None,
    played: Played | None,
    *,
    action: str = "/staff/simulator",
    preview: str | None = None,
) -> HTMLResponse:
    """The simulator of `flow` (the live one, or a draft's: `preview` names it, and its forms
    post to `action`)."""
    if flow is None:
        raise PageError(
            503,
            "Flow not loaded",
            "The flow file has problems, so there is nothing to simulate. Run "
            "`phoneline flows check` to see them.",
        )
    if played is None:
        return render(request, "simulator.html", flow=flow, played=None, turns=[], state="",
                      action=action, preview=preview)  # fmt: skip
    simulation, turns = replay(flow, played)
    return render(
        request,
        "simulator.html",
        action=action,
        preview=preview,
        flow=flow,
        played=played,
        turns=turns,
        state=_encode(request, played),
        ended=simulation.ended,
        dialing=simulation.dialing,
        keys=KEYS,
        dial_statuses=DIAL_STATUSES,
        full=len(played.entries) >= MAX_ENTRIES,
    )


def simulator_step(
    request: Request,
    flow: Flow | None,
    form: dict[str, str],
    *,
    action: str = "/staff/simulator",
    preview: str | None = None,
) -> HTMLResponse:
    def page(played: Played | None) -> HTMLResponse:
        return simulator_page(request, flow, played, action=action, preview=preview)

    if flow is None:
        return page(None)
    if "start" in form:
        channel = "sms" if form.get("channel") == "sms" else "voice"
        lang = form.get("lang", flow.default_language)
        if lang not in flow.languages:
            lang = flow.default_language
        return page(Played(channel, lang))
    played = _decode(request, form.get("state", ""))
    if len(played.entries) < MAX_ENTRIES:
        if "key" in form:
            entry = form["key"] if form["key"] in KEYS else ""
        elif "silence" in form:
            entry = ""
        elif "dial" in form:
            entry = form["dial"] if form["dial"] in DIAL_STATUSES else "completed"
        else:
            entry = form.get("text", "").replace("\n", " ").strip()[:MAX_ENTRY_LENGTH]
        played.entries.append(entry)
    return page(played)


@router.get("/simulator", response_class=HTMLResponse)
def simulator_start(request: Request, staff: CurrentStaff) -> Response:
    return simulator_page(request, flow_of(request), None)


@router.post("/simulator", response_class=HTMLResponse)
def simulator_post(request: Request, staff: CurrentStaff, form: CheckedForm) -> Response:
    return simulator_step(request, flow_of(request), form)
