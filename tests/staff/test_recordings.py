"""Recorded prompts, on SQLite and PostgreSQL: an editor uploads a WAV and an MP3 for a menu's
words, publishes them, and a signed call `<Play>`s them at their versioned URLs (which answer
the audio with its type and a year's immutable cache, no sign-in); a 10-minute file, a text file
named .wav, an empty file are refused with why and nothing is saved; a recording whose words
changed is flagged and not played (the words are said; `flows check` warns); a line with no
recordings says every text; only editors and admins upload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service.db import Database
from service.flowengine.validate import check_text_paths, check_warnings
from service.lines.revisions import LineError, create_revision, publish_revision
from service.models import FlowRevision, PromptAudio, StaffUser
from service.staff.flow_edits import add_menu, remove_menu
from service.staff.revision_changes import readable_flow
from tests.audio import mp3_of, wav_of
from tests.staff.conftest import VIEWER, csrf_of, password_hash, post_form, signed_in
from tests.support import AppClient
from tests.voice.caller import Caller, Heard

EDITOR = "edna"
PAGE = "/staff/lines/second-opinion/recordings"
EDIT = "/staff/lines/second-opinion/edit"
GREETING_EN = "Welcome to VCU Massey's Second Opinion Line."


@pytest.fixture
def editor(staff_app: FastAPI, database: Database) -> str:
    with database.session() as session:
        session.add(StaffUser(username=EDITOR, password_hash=password_hash(), role="editor"))
    return EDITOR


def upload(
    client: AppClient, node: str, lang: str, name: str, content: bytes, kind: str
) -> tuple[int, str]:
    page = client.get(PAGE)
    base = re.search(r'name="base" value="(\d+)"', page.text)
    assert base is not None
    answer = client.post(
        PAGE,
        data={"csrf_token": csrf_of(page), "base": base.group(1), "node": node, "lang": lang},
        files={"audio": (name, content, kind)},
    )
    if answer.status_code == 303:
        return 303, client.get(answer.headers["location"]).text
    return answer.status_code, answer.text


def publish_draft(client: AppClient, staff_app: FastAPI, why: str) -> None:
    page = client.get(EDIT).text
    number = re.search(r"/revisions/(\d+)/publish", page)
    assert number is not None, page
    publish = f"/staff/lines/second-opinion/revisions/{number.group(1)}/publish"
    assert post_form(client, EDIT, publish, message=why).status_code == 303
    assert staff_app.state.book.refresh()


def first_turns(client: AppClient, sid: str) -> tuple[Heard, Heard]:
    """A new call's first answer, and what it hears after pressing 9 (Spanish)."""
    caller = Caller(client, call_sid=sid)
    return caller.call(), caller.press("9")


def revisions(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(FlowRevision)) or 0


def test_a_wav_and_an_mp3_are_played_at_versioned_urls_that_answer_the_audio(
    client: AppClient, editor: str, staff_app: FastAPI, database: Database
) -> None:
    before, _ = first_turns(client, "CA" + "1" * 32)
    assert before.plays == [] and GREETING_EN in before.text  # no recordings: every text said
    signed_in(client, editor)
    english, spanish = mp3_of(4), wav_of(5)
    status, page = upload(client, "main", "en", "welcome.mp3", english, "audio/mpeg")
    assert status == 303 and "Saved in draft revision" in page and "Callers hear this" in page, (
        re.findall(r"role=.alert.*", page)
    )
    status, page = upload(client, "main", "es", "bienvenida.wav", spanish, "audio/wav")
    assert status == 303 and page.count("<audio") == 2
    draft, _ = first_turns(client, "CA" + "2" * 32)
    assert draft.plays == []  # a draft: nobody hears it yet
    edit = client.get(EDIT).text
    assert "Main menu: recording" in edit and "a new recording" in edit
    publish_draft(client, staff_app, "The welcome, recorded by Dr. Ruiz")
    heard, heard_es = first_turns(client, "CA" + "3" * 32)
    assert len(heard.plays) == 1 and heard.plays[0].endswith(".mp3")
    assert GREETING_EN not in heard.text  # played, not said
    assert "To hear why it matters, press 1." in heard.text  # the choices are still said
    assert heard.gather is not None and "<Gather" in heard.xml.split("<Play>")[0]  # keys work
    assert heard_es.plays and heard_es.plays[0].endswith(".wav")
    client.cookies.clear()  # Twilio signs in nowhere
    for url, content, kind in ((heard.plays[0], english, "audio/mpeg"),
                               (heard_es.plays[0], spanish, "audio/wav")):  # fmt: skip
        path = "/" + url.split("/", 3)[3]
        assert re.fullmatch(r"/prompts/[0-9a-f]{64}\.(mp3|wav)", path)
        got = client.get(path)
        assert got.status_code == 200 and got.content == content
        assert got.headers["content-type"] == kind
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/prompts/" + "0" * 64 + ".mp3").status_code == 404
    assert client.get("/prompts/" + "0" * 64 + ".ogg").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("ten-minutes.wav", wav_of(600, width=1), "lasts 10 min 0 s; a prompt may last at most 60"),
        ("notes.wav", b"Welcome to the line, this is not audio\n" * 40, "not a WAV or MP3"),
        ("empty.mp3", b"", "The file is empty"),
        ("huge.mp3", mp3_of(400), "may be at most 5 MB"),
    ],
)
def test_a_file_that_is_not_a_short_recording_is_refused_with_why(
    client: AppClient, editor: str, database: Database, name: str, content: bytes, why: str
) -> None:
    signed_in(client, editor)
    count = revisions(database)
    status, page = upload(client, "main", "es", name, content, "audio/wav")
    assert status == 400 and why in page and 'aria-invalid="true"' in page
    assert revisions(database) == count
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(PromptAudio)) == 0


def test_a_recording_whose_words_changed_is_flagged_and_the_new_words_are_said(
    client: AppClient, editor: str, staff_app: FastAPI, database: Database, tmp_path: Path
) -> None:
    signed_in(client, editor)
    assert upload(client, "main", "en", "welcome.mp3", mp3_of(3), "audio/mpeg")[0] == 303
    words = client.get("/staff/lines/second-opinion/words")
    field = "w:nodes.main.say.en"
    saved = client.post(
        "/staff/lines/second-opinion/words",
        data={
            "csrf_token": csrf_of(words),
            "base": re.search(r'name="base" value="(\d+)"', words.text).group(1),  # type: ignore[union-attr]
            field: "Hello, this is the VCU Massey Second Opinion Line.",
        },
    )
    assert saved.status_code == 303
    page = client.get(PAGE).text
    assert "Recorded before these words changed" in page
    publish_draft(client, staff_app, "New welcome words")
    heard, _ = first_turns(client, "CA" + "4" * 32)
    assert heard.plays == [] and "Hello, this is the VCU Massey Second Opinion Line." in heard.text
    with database.session() as session:
        newest = session.scalars(select(FlowRevision).order_by(FlowRevision.id.desc())).first()
        assert newest is not None
        (tmp_path / "second-opinion.yaml").write_text(newest.yaml)
    warnings = [w.message for w in check_warnings([tmp_path])]
    assert any("the en recording of main says other words" in w for w in warnings), warnings


def test_removing_a_recording_makes_a_draft_that_says_the_words(
    client: AppClient, editor: str, staff_app: FastAPI
) -> None:
    signed_in(client, editor)
    upload(client, "main", "en", "welcome.mp3", mp3_of(3), "audio/mpeg")
    publish_draft(client, staff_app, "Recorded welcome")
    assert first_turns(client, "CA" + "5" * 32)[0].plays
    page = client.get(PAGE)
    base = re.search(r'name="base" value="(\d+)"', page.text)
    assert base is not None
    removed = client.post(
        PAGE + "/remove",
        data={"csrf_token": csrf_of(page), "base": base.group(1), "node": "main", "lang": "en"},
    )
    assert removed.status_code == 303
    publish_draft(client, staff_app, "Back to the voice")
    heard, _ = first_turns(client, "CA" + "6" * 32)
    assert heard.plays == [] and GREETING_EN in heard.text


def test_a_stale_upload_is_refused_and_shown_what_changed(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, editor)
    page = client.get(PAGE)
    base = re.search(r'name="base" value="(\d+)"', page.text)
    assert base is not None
    upload(client, "main", "en", "welcome.mp3", mp3_of(3), "audio/mpeg")  # someone else's
    count = revisions(database)
    late = client.post(
        PAGE,
        data={"csrf_token": csrf_of(page), "base": base.group(1), "node": "main", "lang": "es"},
        files={"audio": ("b.wav", wav_of(2), "audio/wav")},
    )
    assert late.status_code == 409 and "nothing was saved" in late.text
    assert "Main menu: recording" in late.text
    assert revisions(database) == count


def test_only_editors_and_admins_upload_and_every_form_needs_its_token(
    client: AppClient, editor: str, database: Database
) -> None:
    signed_in(client, VIEWER)
    assert client.get(PAGE).status_code == 403
    signed_in(client, editor)
    page = client.get(PAGE)
    token = csrf_of(page)
    signed_in(client, VIEWER)
    refused = client.post(
        PAGE,
        data={"csrf_token": token, "base": "1", "node": "main", "lang": "en"},
        files={"audio": ("a.mp3", mp3_of(2), "audio/mpeg")},
    )
    assert refused.status_code == 403
    signed_in(client, editor)
    no_token = client.post(
        PAGE,
        data={"base": "1", "node": "main", "lang": "en"},
        files={"audio": ("a.mp3", mp3_of(2), "audio/mpeg")},
    )
    assert no_token.status_code == 403 and "Form expired" in no_token.text
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(PromptAudio)) == 0


def test_a_revision_naming_a_recording_the_line_does_not_keep_is_not_published(
    database: Database, staff_app: FastAPI
) -> None:
    with database.session() as session:
        published = session.scalars(select(FlowRevision)).first()
        assert published is not None
        text = published.yaml + (
            "\nrecordings:\n  main:\n    en:\n      audio: " + "a" * 64 + ".mp3\n"
            "      words: Hello.\n"
        )
        draft = create_revision(session, "second-opinion", text, author="edna")
        assert not draft.problems
        with pytest.raises(LineError, match="does not keep"):
            publish_revision(session, "second-opinion", draft.number, author="edna")


def test_a_removed_menu_takes_its_recordings_with_it() -> None:
    """Else the draft would name a recording of no menu, and could not be published."""
    shipped = (Path(__file__).resolve().parents[2] / "flows" / "second-opinion.yaml").read_text()
    text, node_id = add_menu(shipped, "Insurance", {"en": "Ask your insurer.", "es": "Pregunte."})
    text += (
        f"recordings:\n  {node_id}:\n    en: {{audio: {'a' * 64}.mp3, words: Ask your insurer.}}\n"
    )
    flow = readable_flow(text)
    assert flow is not None and flow.played
    removed = remove_menu(text, flow, node_id)
    assert "recordings:" not in removed and node_id not in removed
    assert not [problem for problem in check_text_paths(removed) if "recording" in problem[1]]
