"""`phoneline lines add|list|set` and `phoneline flows publish|history|show|export|rollback`, on
SQLite and PostgreSQL: what a clinic's staff type, and what they read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.db import Database
from service.lines.revisions import SERVICE_KEYWORDS
from service.models import FlowRevision, Line
from service.texts.keywords import KEYWORDS, Keyword
from tests.lines.conftest import broken_text, shipped_text, trials_text
from tests.ops.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, running_fake_twilio

TRIALS_NUMBER = "+18045550142"


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_line_added_lists_with_its_numbers_keyword_and_revision(
    runner: CliRunner, trials_file: Path
) -> None:
    code, out, err = run(
        runner, "lines", "add", "clinical-trials", "--flow", str(trials_file),
        "--number", "(804) 555-0142", "--keyword", "trials",
    )  # fmt: skip
    assert code == 0, err
    assert out == "added clinical-trials (VCU Massey Clinical Trials Line), revision 1 published\n"
    code, out, _ = run(runner, "lines", "list")
    assert code == 0
    assert out.splitlines() == [
        "second-opinion (default): VCU Massey Second Opinion Line; (no number); revision 1",
        f"clinical-trials: VCU Massey Clinical Trials Line; {TRIALS_NUMBER}, keyword TRIALS; "
        "revision 1",
    ]


def test_lines_set_adds_a_number_moves_the_default_and_refuses_a_taken_one(
    runner: CliRunner, trials_file: Path
) -> None:
    assert run(runner, "lines", "add", "clinical-trials", "--flow", str(trials_file))[0] == 0
    code, out, err = run(
        runner, "lines", "set", "clinical-trials", "--number", TRIALS_NUMBER, "--default"
    )
    assert code == 0, err
    assert out == "clinical-trials changed\n"
    listed = run(runner, "lines", "list")[1].splitlines()
    assert listed[0] == "second-opinion: VCU Massey Second Opinion Line; (no number); revision 1"
    assert listed[1].startswith(f"clinical-trials (default): VCU Massey Clinical Trials Line; "
                                f"{TRIALS_NUMBER}; ")  # fmt: skip
    code, _, err = run(runner, "lines", "set", "second-opinion", "--number", TRIALS_NUMBER)
    assert code == 1
    assert f"{TRIALS_NUMBER} reaches the line 'clinical-trials' already" in err
    assert "nothing was changed" in err
    code, _, err = run(runner, "lines", "set", "second-opinion", "--keyword", "STOP")
    assert code == 1 and "STOP is a word every line answers" in err
    code, _, err = run(runner, "lines", "set", "no-such-line", "--default")
    assert code == 1 and "there is no line 'no-such-line'" in err


def test_a_flow_that_fails_the_check_is_not_published_and_nothing_changes(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    broken = tmp_path / "edited.yaml"
    broken.write_text(broken_text(), encoding="utf-8")
    line = broken_text().splitlines().index("        goto: nowhere") + 1  # the broken line
    assert run(runner, "lines", "list")[0] == 0  # seeded: revision 1
    code, out, err = run(runner, "flows", "publish", "second-opinion", str(broken), "-m", "oops")
    assert code == 1
    assert out == ""
    assert f"{broken}:{line}: goto 'nowhere': there is no such node" in err
    assert "nothing was changed" in err
    with database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(FlowRevision)) == 1
    code, _, err = run(
        runner, "lines", "add", "trials", "--flow", str(broken), "--number", TRIALS_NUMBER
    )
    assert code == 1 and f"{broken}:{line}:" in err
    with database.session(read_only=True) as session:
        assert session.scalars(select(Line.slug)).all() == ["second-opinion"]


def test_publish_history_show_export_and_rollback(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    edited = tmp_path / "edited.yaml"
    edition_two = shipped_text("Second Opinion Line, edition two.")
    edited.write_text(edition_two, encoding="utf-8")
    code, out, err = run(
        runner, "flows", "publish", "second-opinion", str(edited), "-m", "a shorter greeting"
    )
    assert code == 0, err
    assert out == "second-opinion: revision 2 published\n"
    code, out, err = run(runner, "flows", "rollback", "second-opinion", "1", "-m", "back")
    assert code == 0, err
    assert out == "second-opinion: revision 3 (a copy of 1) published\n"

    code, out, _ = run(runner, "flows", "history", "second-opinion")
    assert code == 0
    rows = out.splitlines()
    assert [row[:6] for row in rows] == ["*    3", "     2", "     1"]
    assert rows[0].endswith("back (copy of 1)")
    assert rows[1].endswith("a shorter greeting") and "shell:" in rows[1]
    assert rows[2].endswith("first revision") and "flows/" in rows[2]
    assert all("published 20" in row for row in rows)

    # show: the YAML exactly as written, comments and all
    assert run(runner, "flows", "show", "second-opinion", "2")[1] == edition_two
    assert run(runner, "flows", "show", "second-opinion")[1] == shipped_text()
    code, _, err = run(runner, "flows", "show", "second-opinion", "9")
    assert code == 1 and "has no revision 9" in err

    exported = tmp_path / "exported.yaml"
    code, out, _ = run(runner, "flows", "export", "second-opinion", str(exported))
    assert code == 0 and out == f"second-opinion: revision 3 written to {exported}\n"
    assert exported.read_text(encoding="utf-8") == shipped_text()
    # what was exported passes `flows check`, as any published revision does
    assert run(runner, "flows", "check", str(exported))[0] == 0


def test_a_line_added_before_the_first_start_keeps_the_shipped_line(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    """The files under flows/ seed the database whichever comes first, the CLI or serve."""
    flow = tmp_path / "trials.yaml"
    flow.write_text(trials_text(), encoding="utf-8")
    assert run(runner, "lines", "add", "clinical-trials", "--flow", str(flow))[0] == 0
    with database.session(read_only=True) as session:
        lines = session.execute(select(Line.slug, Line.is_default).order_by(Line.id)).all()
    assert [tuple(row) for row in lines] == [("second-opinion", True), ("clinical-trials", False)]


def test_no_line_keyword_can_be_a_word_the_text_line_answers() -> None:
    answered = KEYWORDS[Keyword.SPANISH] | KEYWORDS[Keyword.MENU] | KEYWORDS[Keyword.CALL]
    assert answered == SERVICE_KEYWORDS


def test_twilio_configure_points_every_number_of_a_line(
    runner: CliRunner, trials_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "+18045550143"
    code, _, err = run(
        runner, "lines", "add", "clinical-trials", "--flow", str(trials_file),
        "--number", TRIALS_NUMBER, "--number", other,
    )  # fmt: skip
    assert code == 0, err
    with running_fake_twilio() as fake:
        first, second = fake.add_number(TRIALS_NUMBER), fake.add_number(other)
        untouched = fake.add_number("+18045550199")
        monkeypatch.setenv("TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        get_settings.cache_clear()
        public = "https://line.example.org"
        code, out, err = run(
            runner, "twilio", "configure", "--line", "clinical-trials", "--public-url", public
        )
        assert code == 0, err
        assert f"updated {TRIALS_NUMBER} ({first})" in out
        assert f"updated {other} ({second})" in out
        for sid in (first, second):
            assert fake.numbers[sid]["voice_url"] == f"{public}/twilio/voice"
            assert fake.numbers[sid]["sms_url"] == f"{public}/twilio/sms"
        assert not fake.posts(untouched + ".json")
        code, _, err = run(
            runner, "twilio", "configure", "--line", "second-opinion", "--public-url", public
        )
        assert code == 1 and "the line 'second-opinion' has no number" in err
        code, _, err = run(runner, "twilio", "configure", "--line", "nope", "--public-url", public)
        assert code == 1 and "there is no line 'nope'" in err


def test_simulate_plays_a_lines_published_revision_or_the_one_named(
    runner: CliRunner, trials_file: Path, tmp_path: Path
) -> None:
    assert run(runner, "lines", "add", "clinical-trials", "--flow", str(trials_file))[0] == 0
    edition_two = tmp_path / "two.yaml"
    edition_two.write_text(trials_text("Trials line, edition two."), encoding="utf-8")
    assert run(runner, "flows", "publish", "clinical-trials", str(edition_two), "-m", "two")[0] == 0

    def played(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["simulate", *args], input="")
        return result.exit_code, result.stdout, result.stderr

    code, out, err = played("--line", "clinical-trials")
    assert code == 0, err
    assert "Trials line, edition two." in out
    code, out, err = played("--line", "clinical-trials", "--revision", "1")
    assert code == 0, err
    assert "Welcome to VCU Massey's Clinical Trials Line." in out
    assert "edition two" not in out
    code, _, err = played("--line", "clinical-trials", "--revision", "9")
    assert code == 1 and "has no revision 9" in err
    code, _, err = played("--line", "no-such-line")
    assert code == 1 and "there is no line 'no-such-line'" in err
    code, _, err = played("--revision", "1")
    assert code == 2 and "--line" in err
