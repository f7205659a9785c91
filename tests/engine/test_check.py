"""`phoneline flows check`: the shipped flow passes; each broken fixture names its line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.flowengine import FlowError, check_paths, load_flow
from service.flowengine.loader import parse, schema_problems

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "flows"

BROKEN = {
    "unreachable-node.yaml": (28, "node 'orphan' is unreachable from 'main'"),
    "unknown-contact.yaml": (27, "connect 'pharmacy' is not in contacts"),
    "missing-translation.yaml": (23, "missing 'es' translation"),
    "duplicate-key.yaml": (22, "duplicate key 1"),
    "reserved-key.yaml": (28, "key # is reserved: pound always goes back"),
    "long-sms.yaml": (25, "SMS reply in 'es' takes 5 messages"),
    "yaml-boolean.yaml": (20, "label.es is the YAML boolean true; put it in quotes"),
    "bad-number.yaml": (14, "'804-828-7999' is not an E.164 number"),
    "long-greeting.yaml": (17, "60 words before the first option in 'en' (at most 45)"),
    "carrier-keyword.yaml": (21, "'stop' is a carrier keyword"),
}


def test_shipped_flows_pass() -> None:
    result = CliRunner().invoke(app, ["flows", "check", str(ROOT / "flows")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_valid_fixture_passes() -> None:
    assert check_paths([FIXTURES / "valid-minimal.yaml"]) == []


@pytest.mark.parametrize(("fixture", "expected"), BROKEN.items(), ids=list(BROKEN))
def test_broken_fixture_names_file_line_and_problem(fixture: str, expected: tuple[int, str]) -> None:
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
    text = (FIXTURES / "valid-minimal.yaml").read_text().replace("goto: about", "goto: about\n        connect: desk")
    problems = schema_problems(parse(text, "two-actions.yaml"))
    assert [(p.line, "exactly one of goto" in p.message) for p in problems] == [(19, True)]


def test_a_folder_without_flows_is_a_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["flows", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "no flow files" in result.output


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    problems = check_paths([tmp_path / "missing.yaml"])
    assert len(problems) == 1 and "cannot read" in problems[0].message
