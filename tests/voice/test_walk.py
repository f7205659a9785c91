"""A scripted caller walks every menu, in English and in Spanish, only by following the TwiML.

It presses every key a menu announces ("press 2", "oprima 2"), lets every transfer go
unanswered (and answered), and checks what it heard and what was dialed.
"""

from __future__ import annotations

import re
import shutil
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from service.db import Database, set_database
from service.flowengine import Flow, load_flow
from service.flowengine.render import spoken_digits
from service.main import create_app
from tests.engine.test_facts import facts, key_words
from tests.engine.test_flow_content import NUMBERS
from tests.support import app_client
from tests.voice.caller import Caller, Heard
from tests.voice.conftest import REPO_ROOT, voice_settings

# One process walks (the walks are module-scoped: about two hundred webhooks, done once).
pytestmark = pytest.mark.xdist_group("voice-walk")

ANNOUNCED_KEY = re.compile(r"(?:press|oprima) (\d|star|pound|asterisco|numeral)\.")
KEY_WORDS = {"star": "*", "pound": "#", "asterisco": "*", "numeral": "#"}


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(REPO_ROOT / "flows" / "second-opinion.yaml")


def announced_keys(heard: Heard) -> list[str]:
    keys = []
    for line in heard.words:
        for match in ANNOUNCED_KEY.finditer(line):
            keys.append(KEY_WORDS.get(match.group(1), match.group(1)))
    return keys


def node_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["at"][0]


class Walk:
    def __init__(self, caller: Caller, lang: str) -> None:
        self.caller = caller
        self.lang = lang
        self.heard: list[str] = []
        self.nodes: set[str] = set()
        self.turns: list[Heard] = []

    def take(self, heard: Heard) -> Heard:
        self.turns.append(heard)
        self.heard.extend(heard.words)
        if heard.next_url:
            self.nodes.add(node_of(heard.next_url))
        return heard

    def run(self, first: Heard) -> None:
        """Breadth first over (action URL, key): every announced key of every menu reached."""
        queue: deque[tuple[str, dict[str, str]]] = deque()
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

        def follow(heard: Heard) -> None:
            url = heard.next_url
            if url is None:
                assert heard.hangup
                return
            if heard.dial is not None:
                options = [{"DialCallStatus": "no-answer"}, {"DialCallStatus": "completed"}]
            elif heard.record is not None:  # a message, and an empty recording
                options = [{"RecordingSid": "RE" + "7" * 32, "RecordingDuration": "14"}, {}]
            else:
                language_key = "9" if node_of(url) == "main" else None
                options = [{"Digits": k} for k in announced_keys(heard) if k != language_key]
            for params in options:
                key = (url, tuple(sorted(params.items())))
                if key not in seen:
                    seen.add(key)
                    queue.append((url, params))

        follow(self.take(first))
        while queue:
            url, params = queue.popleft()
            follow(self.take(self.caller.post(url, **params)))


@pytest.fixture(scope="module")
def walks(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Walk]:
    """One walk per language (module scoped: a walk is about a hundred webhooks)."""
    tmp_path = tmp_path_factory.mktemp("voice-walk")
    shutil.copyfile(sqlite_template, tmp_path / "walk.db")
    database = Database(f"sqlite:///{tmp_path / 'walk.db'}")
    previous = set_database(database)
    try:
        app = create_app(voice_settings(tmp_path, str(database.url)))
        walks = {}
        with app_client(app) as client:
            for lang in ("en", "es"):
                caller = Caller(client, call_sid="CA" + lang.encode().hex() + "0" * 28)
                walk = Walk(caller, lang)
                first = caller.call()
                if lang == "es":
                    assert "Para español, oprima 9." in first.words
                    first = caller.press("9")
                walk.run(first)
                walks[lang] = walk
        return walks
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture(params=["en", "es"])
def walked(request: pytest.FixtureRequest, walks: dict[str, Walk]) -> Walk:
    return walks[request.param]


def test_every_fact_of_the_handout_is_heard(walked: Walk) -> None:
    heard = "\n".join(walked.heard).lower()
    missing = [
        f"{fact['handout']}: {word!r}"
        for fact in facts()
        for word in key_words(fact, "voice", walked.lang)
        if word.lower() not in heard
    ]
    assert not missing, f"a caller in {walked.lang} never hears:\n" + "\n".join(missing)


def test_every_menu_ends_by_saying_how_to_reach_a_person(walked: Walk) -> None:
    """The menus after an unanswered transfer too (the coordinator's included)."""
    retry_menus = 0
    for turn in walked.turns:
        if turn.gather is None:
            continue
        retry_menus += "&s=retry&" in turn.gather["action"]
        assert re.search(r"\b0\b", turn.words[-1]), turn.text
    assert retry_menus >= 5


def test_every_transfer_says_the_number_twice_slowly(walked: Walk) -> None:
    again = {"en": "Again, that's ", "es": "Repito: "}[walked.lang]
    for turn in walked.turns:
        if turn.dial is None:
            continue
        spoken = spoken_digits(turn.numbers[0])
        assert turn.words[-1] == f"{again}{spoken}.", turn.text
        assert turn.words[-2].endswith(f" {spoken}."), turn.text
        assert turn.xml.count('<prosody rate="85%">') >= 2, turn.xml


def test_every_menu_is_reached(walked: Walk, flow: Flow) -> None:
    assert walked.nodes == set(flow.nodes)


def test_all_five_numbers_are_connected_and_nothing_else(walked: Walk) -> None:
    assert set(walked.caller.dialed) == set(NUMBERS.values())
    # The library's second line is dialed only after its first line went unanswered.
    library_dials = [turn for turn in walked.turns if turn.numbers]
    for turn in library_dials:
        if turn.numbers == ["+18048280450"]:
            assert re.search(r"No one answered|Nadie contestó", turn.text), turn.text


def test_each_number_is_read_aloud_in_digits_before_its_dial(walked: Walk) -> None:
    for turn in walked.turns:
        if turn.dial is None:
            continue
        assert len(turn.numbers) == 1
        assert spoken_digits(turn.numbers[0]) in turn.text, turn.text
        assert turn.dial["action"].startswith("https://line.example.org/twilio/voice?")
        assert turn.dial["timeout"] == "25"
        assert turn.dial["method"] == "POST"
        assert turn.dial["callerId"] == walked.caller.caller


def test_every_menu_names_its_keys_and_listens_for_them(walked: Walk) -> None:
    language = "en-US" if walked.lang == "en" else "es-US"
    for turn in walked.turns:
        if turn.gather is None:
            continue
        assert announced_keys(turn), turn.text
        assert turn.gather["input"] == "dtmf speech"
        assert turn.gather["numDigits"] == "1"
        assert turn.gather["finishOnKey"] == ""
        assert turn.gather["actionOnEmptyResult"] == "true"
        assert turn.gather["language"] == language
        assert turn.gather["hints"]
        assert turn.redirect == turn.gather["action"]
        other = [said for said in turn.says if said.language != language]
        # Only the other language's offer ("For English, press 9.") is in the other voice.
        assert all(
            said.text in ("For English, press 9.", "Para español, oprima 9.") for said in other
        )


def test_answered_transfers_end_with_a_goodbye(walked: Walk) -> None:
    goodbyes = [turn for turn in walked.turns if turn.hangup]
    assert goodbyes
    for turn in goodbyes:
        assert re.search(r"Goodbye|Adiós", turn.text), turn.text


def test_every_menu_listens_in_the_callers_language(walked: Walk) -> None:
    """Once a caller is in Spanish, every <Gather> listens for Spanish (es-US)."""
    listens = {"en": "en-US", "es": "es-US"}[walked.lang]
    gathers = [turn.gather for turn in walked.turns if turn.gather is not None]
    assert len(gathers) > 20
    assert {gather["language"] for gather in gathers} == {listens}
