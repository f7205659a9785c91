"""Every process's view of the lines (`LineBook`): seeded from flows/ on a first start, served
from the copy kept under var/ while the database is away, else from the files; nothing at all
loaded: the fallback (and /readyz says so)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from service.db import Database, set_database
from service.lines.revisions import publish_text
from service.main import create_app
from tests.lines.conftest import ROOT, shipped_text
from tests.support import app_client

AWAY = "postgresql+psycopg://nobody@127.0.0.1:9/away?connect_timeout=1"
"""A database that does not answer (nothing listens on port 9)."""


def settings_for(flows: Path, var: Path, url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        flows_dir=flows,
        database_url=url,
        var_dir=var,
        run_worker_in_server=False,
    )


@pytest.fixture
def away() -> Iterator[Database]:
    database = Database(AWAY)
    previous = set_database(database)
    yield database
    set_database(previous)
    database.dispose()


def test_a_first_start_seeds_the_database_from_flows(database: Database, tmp_path: Path) -> None:
    url = database.url.render_as_string(hide_password=False)
    book = create_app(settings_for(ROOT / "flows", tmp_path / "var", url)).state.book
    [line] = book.lines
    assert (line.slug, line.revision_number, line.is_default) == ("second-opinion", 1, True)
    assert book.line_for("+18005550100") == line  # a number nobody assigned: the default
    assert (tmp_path / "var" / "lines" / "book.json").exists()


def test_a_process_started_while_the_database_is_away_serves_what_var_keeps(
    database: Database, tmp_path: Path
) -> None:
    url = database.url.render_as_string(hide_password=False)
    var = tmp_path / "var"
    create_app(settings_for(ROOT / "flows", var, url))  # seeds, keeps revision 1 under var/
    with database.session() as session:
        publish_text(
            session, "second-opinion", shipped_text("Second Opinion Line, edition two."),
            author="test", message="two",
        )  # fmt: skip
    book = create_app(settings_for(ROOT / "flows", var, url)).state.book
    assert book.lines[0].revision_number == 2  # and kept under var/

    previous = set_database(Database(AWAY))
    try:
        restarted = create_app(settings_for(ROOT / "flows", var, AWAY)).state.book
        [line] = restarted.lines
        assert line.revision_number == 2
        assert restarted.flow(line).nodes["main"].say["en"].startswith("Second Opinion Line, ed")
    finally:
        set_database(previous)


def test_with_the_database_away_and_nothing_under_var_the_files_are_served(
    away: Database, tmp_path: Path
) -> None:
    book = create_app(settings_for(ROOT / "flows", tmp_path / "var", AWAY)).state.book
    [line] = book.lines
    assert (line.slug, line.revision_id) == ("second-opinion", -1)
    assert book.flow(line) is not None


def test_with_no_valid_flow_anywhere_nothing_is_served_and_readyz_says_so(
    away: Database, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "second-opinion.yaml").write_text("name: [broken\n")
    app = create_app(settings_for(flows, tmp_path / "var", AWAY))
    assert app.state.book.lines == ()
    with app_client(app, wait_for_records=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "no valid menu loaded" in response.text


def test_a_broken_seed_file_is_not_a_line(database: Database, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    (flows / "zz-broken.yaml").write_text("name: [broken\n")
    url = database.url.render_as_string(hide_password=False)
    book = create_app(settings_for(flows, tmp_path / "var", url)).state.book
    assert [line.slug for line in book.lines] == ["second-opinion"]


def test_a_serve_worker_is_forked_with_the_flow_files_read(tmp_path: Path) -> None:
    """The fork server (service/preload.py) reads and checks flows/ once: a worker forked from
    it finds the flow of a line that still serves its seed file's text already read."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    probe = (
        "import service.preload\n"
        "from pathlib import Path\n"
        "from service.flowengine.validate import flow_of_text\n"
        "from service.lines.book import _flow_of\n"
        "before = flow_of_text.cache_info()\n"
        f"text = Path({str(flows / 'second-opinion.yaml')!r}).read_text(encoding='utf-8')\n"
        "assert _flow_of(text, 'second-opinion, revision 1') is not None\n"
        "after = flow_of_text.cache_info()\n"
        "print(after.hits - before.hits, after.misses - before.misses)\n"
    )
    env = {**os.environ, "FLOWS_DIR": str(flows), "VAR_DIR": str(tmp_path / "var"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'phoneline.db'}"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "0"], "read again, not found read"
