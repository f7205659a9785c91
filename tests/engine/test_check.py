"""`phoneline flows check`: the shipped flow passes; each broken fixture names its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.flowengine import FlowError, check_paths, load_flow
from service.flowengine.loader import Problem, build, parse, schema_problems
from service.flowengine.validate import (
    check_document,
    check_text_paths,
    check_warnings,
    words_before_first_option,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "flows"

BROKEN = {
    "unreachable-node.yaml": (28, "node 'orphan' is unreachable from 'main'"),
    "unknown-contact.yaml": (27, "connect 'pharmacy' is not in contacts"),
    "instead-itself.yaml": (15, "instead 'desk': name another contact"),
    "missing-translation.yaml": (23, "missing 'es' translation"),
    "duplicate-key.yaml": (22, "duplicate key 1"),
    "reserved-key.yaml": (28, "key # is reserved: pound always goes back"),
    "long-sms.yaml": (25, "SMS reply in 'es' takes 7 messages (at most 2)"),
    "yaml-boolean.yaml": (20, "label.es is the YAML boolean true; put it in quotes"),
    "bad-number.yaml": (14, "'804-828-7999' is not an E.164 number"),
    "long-greeting.yaml": (17, "68 words before the first option in 'en' (at most 25)"),
    "carrier-keyword.yaml": (21, "'stop' is a carrier keyword"),
    "too-many-choices.yaml": (
        18,
        "6 choices in 'en' (at most 5 on the first menu, besides 0 and 9)",
    ),
    "late-opt-out.yaml": (
        19,
        "the first reply in 'en' must say how to opt out in its first message",
    ),
    "curly-quote.yaml": (24, "SMS reply in 'en': message 1 takes 3 segments (at most 2 in 'en')"),
    "long-press-8.yaml": (56, "The text a caller asks for in 'en' takes 3 messages (at most 2)"),
}


def test_shipped_flows_pass() -> None:
    result = CliRunner().invoke(app, ["flows", "check", str(ROOT / "flows")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_an_operator_without_hours_is_a_warning_that_does_not_fail_the_check(
    tmp_path: Path,
) -> None:
    shipped = ROOT / "flows" / "second-opinion.yaml"
    result = CliRunner().invoke(app, ["flows", "check", str(shipped)])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if "warning:" in line)
    assert warning.startswith(f"{shipped}:37: warning: the operator (coordinator, key 0) keeps")
    # An operator with hours, a broken file, one that cannot be read: no warning; a folder's
    # files are each looked at.
    assert check_warnings([FIXTURES / "features.yaml"]) == []
    assert check_warnings([FIXTURES / "unreachable-node.yaml", tmp_path / "missing.yaml"]) == []
    (tmp_path / "minimal.yaml").write_text((FIXTURES / "valid-minimal.yaml").read_text())
    assert [w.line for w in check_warnings([tmp_path])] == [10]


def test_valid_fixture_passes() -> None:
    assert check_paths([FIXTURES / "valid-minimal.yaml"]) == []


@pytest.mark.parametrize(("fixture", "expected"), BROKEN.items(), ids=list(BROKEN))
def test_broken_fixture_names_file_line_and_problem(
    fixture: str, expected: tuple[int, str]
) -> None:
    line, message = expected
    result = CliRunner().invoke(app, ["flows", "check", str(FIXTURES / fixture)])
    assert result.exit_code == 1
    assert f"{FIXTURES / fixture}:{line}: " in result.output
    printed = [row for row in result.output.splitlines() if f":{line}: " in row]
    assert any(message in row for row in printed), result.output


def test_broken_flow_does_not_load() -> None:
    with pytest.raises(FlowError, match="is unreachable"):
        load_flow(FIXTURES / "unreachable-node.yaml")


def test_yaml_1_1_words_stay_words() -> None:
    document = parse("answers: [yes, no, on, off, Yes, NO]\nlang: no\n", "x.yaml")
    assert list(document.data["answers"]) == ["yes", "no", "on", "off", "Yes", "NO"]
    assert document.data["lang"] == "no"


def test_invalid_yaml_names_its_line() -> None:
    with pytest.raises(FlowError) as caught:
        parse("name: x\nnodes: [unclosed\n", "bad.yaml")
    assert caught.value.problems[0].file == "bad.yaml"
    assert "not valid YAML" in str(caught.value)


def test_schema_problems_name_the_line() -> None:
    text = (
        (FIXTURES / "valid-minimal.yaml")
        .read_text()
        .replace("goto: about", "goto: about\n        connect: desk")
    )
    problems = schema_problems(parse(text, "two-actions.yaml"))
    assert [(p.line, "exactly one of goto" in p.message) for p in problems] == [(19, True)]


def test_a_folder_without_flows_is_a_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["flows", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "no flow files" in result.output


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    problems = check_paths([tmp_path / "missing.yaml"])
    assert len(problems) == 1 and "cannot read" in problems[0].message


MINIMAL = (FIXTURES / "valid-minimal.yaml").read_text()

# (what to change in valid-minimal.yaml, the problem flows check reports)
MUTATIONS = [
    ("languages: [en, es]", "languages: [en, fr]", "language 'fr' is not one the line speaks"),
    ("default_language: en", "default_language: de", "default language 'de' is not in languages"),
    ("start: main", "start: lobby", "start node 'lobby' does not exist"),
    ("operator: desk", "operator: nurse", "operator 'nurse' is not in contacts"),
    ("goto: about", "goto: nowhere", "goto 'nowhere': there is no such node"),
    (
        "say: {en: Welcome., es: Bienvenido.}",
        "say: {en: Welcome., es: Bienvenido.}\n    contact: pharmacy",
        "contact 'pharmacy' is not in contacts",
    ),
    (
        "        connect: desk",
        "        text: [desk, pharmacy]",
        "text 'pharmacy' is not in contacts",
    ),
    ("        connect: desk", "        language: fr", "language 'fr' is not in languages"),
    (
        "say: {en: Welcome., es: Bienvenido.}",
        "say: {en: Welcome., es: Bienvenido., de: Willkommen.}",
        "text in 'de', which is not one of the flow's languages",
    ),
    (
        "      - key: 1\n        label: {en: hear about us",
        "      - key: 9\n        label: {en: hear about us",
        "key 9 is reserved on the first menu",
    ),
    (
        "label: {en: hear about us, es: saber de nosotros}",
        "label: {en: HELP, es: saber de nosotros}",
        "label 'HELP' is a carrier keyword",
    ),
    ('"+18048287999"', '"+11234567890"', "+11234567890 is not a valid phone number"),
    (
        '      - {number: "+18048287999", display: (804) 828-7999}',
        '      - {number: "+18048287999", display: (804) 828-7999}\n'
        '    hours: {timezone: Mars/Olympus, open: [{days: [mon], from: "08:00", to: "17:00"}], '
        "description: {en: Mondays, es: lunes}}",
        "unknown time zone 'Mars/Olympus'",
    ),
    (
        "  desk:\n",
        "  desk:\n    fax: yes\n",
        "Additional properties are not allowed ('fax' was unexpected)",
    ),
    (
        "      - key: 1\n        label: {en: hear about us",
        "      - key: A\n        label: {en: hear about us",
        "key 'A' must be one phone key",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), MUTATIONS, ids=[m[2][:40] for m in MUTATIONS])
def test_each_rule_reports_a_clear_problem(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in MINIMAL
    path = tmp_path / "mutated.yaml"
    path.write_text(MINIMAL.replace(old, new, 1))
    problems = check_paths([path])
    assert any(message in problem.message for problem in problems), problems
    assert all(problem.line > 1 for problem in problems if message in problem.message)


def test_operator_without_a_number(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '    numbers:\n      - {number: "+18048287999", display: (804) 828-7999}', "    numbers: []"
    )
    path = tmp_path / "no-number.yaml"
    path.write_text(text)
    messages = [problem.message for problem in check_paths([path])]
    assert "operator 'desk' has no number to dial" in messages
    assert "connect 'desk': that contact has no number" in messages


def test_line_of_a_missing_path_is_its_nearest_parent() -> None:
    document = parse(MINIMAL, "m.yaml")
    assert document.line(["nodes", "about", "nothing", 3]) == document.line(["nodes", "about"])


def test_the_shipped_flow_meets_the_measured_targets() -> None:
    """What `flows check` holds the shipped flow to: the line's own targets, not looser ones."""
    flow = load_flow(ROOT / "flows" / "second-opinion.yaml")
    limits = flow.limits
    assert limits.start_words <= 25
    assert limits.first_menu_choices <= 5
    assert limits.segments_for("en") <= 2 and limits.segments_for("es") <= 3
    assert limits.sms_messages <= 2


def test_limits_default_to_the_lines_targets(tmp_path: Path) -> None:
    flow = load_flow(FIXTURES / "valid-minimal.yaml")
    assert (flow.limits.start_words, flow.limits.first_menu_choices) == (25, 5)
    assert flow.limits.sms_segments == {"en": 2, "es": 3} and flow.limits.sms_messages == 2
    text = MINIMAL.replace("nodes:", "limits: {sms_segments: 1, sms_messages: 3}\nnodes:", 1)
    strict = build(parse(text, "one-limit.yaml"))
    assert strict.limits.segments_for("es") == 1 and strict.limits.sms_messages == 3
    path = tmp_path / "one-limit.yaml"
    path.write_text(text)
    messages = [problem.message for problem in check_paths([path])]
    assert "SMS reply in 'es': message 1 takes 2 segments (at most 1 in 'es'): 84 characters" in (
        messages
    )


def test_a_voice_menu_that_does_not_end_with_a_person_is_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No flow file can leave out "to talk with a person, press 0" (the engine says it), so the
    rule guards the engine's own words: break them, and every flow fails."""
    from service.flowengine.phrases import PHRASES

    monkeypatch.setitem(PHRASES["en"], "announce_keys", "At any time, press star to repeat.")
    messages = [problem.message for problem in check_paths([FIXTURES / "valid-minimal.yaml"])]
    assert "the voice menu in 'en' does not end by saying how to reach a person (0)" in messages


def test_a_text_menu_that_does_not_show_a_person_is_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.flowengine.phrases import PHRASES

    monkeypatch.setitem(PHRASES["es"], "sms_footer", "Responda # para regresar.")
    messages = [problem.message for problem in check_paths([FIXTURES / "valid-minimal.yaml"])]
    assert "the text menu in 'es' does not show how to reach a person (0)" in messages


def test_a_retry_menu_must_end_with_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    """After an unanswered transfer (the coordinator's too) the menu ends with how to reach a
    person: the rule guards the renderer's closing line; break it and every flow fails."""
    from service.flowengine import render

    monkeypatch.setattr(render, "PERSON_KEY", "star")
    messages = [problem.message for problem in check_paths([FIXTURES / "features.yaml"])]
    assert (
        "after an unanswered transfer the menu in 'en' does not end with how to reach a person (0)"
    ) in messages


def test_a_contact_offered_instead_must_have_a_number(tmp_path: Path) -> None:
    text = (
        (FIXTURES / "valid-minimal.yaml")
        .read_text()
        .replace(
            "nodes:",
            "    instead: [book]\n  book:\n    name: {en: the book, es: el libro}\n"
            "    short: {en: Book, es: Libro}\n    numbers: []\nnodes:",
        )
    )
    path = tmp_path / "instead-no-number.yaml"
    path.write_text(text)
    problems = check_paths([path])
    assert [p.message for p in problems] == ["instead 'book': that contact has no number to dial"]


def test_the_shipped_example_hours_pass_once_set(tmp_path: Path) -> None:
    """The hours written out (commented) for the shipped coordinator are a valid schedule: a
    clinic that removes the "# " gets a flow that passes, keeps them, and no longer warns."""
    text = (ROOT / "flows" / "second-opinion.yaml").read_text()
    lines = text.splitlines()
    start = lines.index("    # hours:")
    block = []
    for line in lines[start:]:
        if not line.startswith("    # "):
            break
        block.append(line)
    uncommented = "\n".join("    " + line[len("    # ") :] for line in block)
    set_text = text.replace("\n".join(block), uncommented)
    path = tmp_path / "second-opinion.yaml"
    path.write_text(set_text)
    assert check_paths([path]) == [] and check_warnings([path]) == []
    hours = load_flow(path).contacts["coordinator"].hours
    assert hours is not None and hours.timezone == "America/New_York"
    assert hours.description["en"] == "Monday to Friday, 8 a.m. to 4:30 p.m."


RECORDED = (FIXTURES / "valid-minimal.yaml").read_text() + (
    "recordings:\n"
    "  main:\n"
    "    en: {audio: " + "a" * 64 + ".mp3, words: Welcome.}\n"
    "    es: {audio: " + "b" * 64 + ".wav, words: Bienvenidos a todos.}\n"
)


def test_a_recording_plays_while_its_words_are_the_nodes_and_a_changed_one_is_a_warning(
    tmp_path: Path,
) -> None:
    """The Spanish recording was made of other words than the node says now: it is not
    played (the words are said), and `flows check` warns at its line without failing."""
    flow = build(parse(RECORDED, "recorded.yaml"))
    assert flow.played == {("en", "Welcome."): "a" * 64 + ".mp3"}
    assert not flow.is_stale("main", "en") and flow.is_stale("main", "es")
    assert not flow.is_stale("about", "en") and not flow.is_stale("nowhere", "en")
    (tmp_path / "recorded.yaml").write_text(RECORDED)
    assert check_paths([tmp_path]) == []
    warnings = [(w.line, w.message) for w in check_warnings([tmp_path])]
    assert (31, "warning: the es recording of main says other words than its text now: "
            "callers hear the text said until it is recorded again") in warnings  # fmt: skip


@pytest.mark.parametrize(
    ("recordings", "message"),
    [
        ("  nowhere:\n    en: {audio: A.mp3, words: Hi.}\n", "there is no such node"),
        ("  main:\n    fr: {audio: A.mp3, words: Salut.}\n", "that language is not in languages"),
        ("  main:\n    en: {audio: recording.ogg, words: Hi.}\n", "does not match"),
    ],
)
def test_a_recording_of_no_node_in_no_language_or_of_no_file_is_a_problem(
    recordings: str, message: str
) -> None:
    text = (FIXTURES / "valid-minimal.yaml").read_text() + "recordings:\n" + recordings
    problems: list[Problem] = check_document(
        parse(text.replace("A.mp3", "c" * 64 + ".mp3"), "recorded.yaml")
    )
    assert any(message in problem.message for problem in problems), problems


def test_each_problem_has_the_path_of_the_value_it_is_about() -> None:
    """What the staff pages show at a field: the same problems as the check, each with its
    YAML path; the same counting of words before "press 1"."""
    text = (FIXTURES / "reserved-key.yaml").read_text()
    assert any(
        path[-1] == "key" and "key # is reserved" in message
        for path, message in check_text_paths(text)
    )
    greeting = (FIXTURES / "long-greeting.yaml").read_text()
    assert (("nodes", "main", "say", "en"), "68 words") in [
        (path, message[:8]) for path, message in check_text_paths(greeting)
    ]
    assert check_text_paths("name: [") == (
        ((), "line 1: not valid YAML: expected the node content, but found '<stream end>'"),
    )
    shipped = load_flow(ROOT / "flows" / "second-opinion.yaml")
    assert check_text_paths((ROOT / "flows" / "second-opinion.yaml").read_text()) == ()
    assert words_before_first_option(shipped, "main", "en") == 25
    broken = build(parse((FIXTURES / "unknown-contact.yaml").read_text(), "broken.yaml"))
    assert words_before_first_option(broken, "main", "en") is None  # nothing can be said
