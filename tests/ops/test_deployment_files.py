"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed).

Every command the containers run must be a real `phoneline` command with options it accepts, every
environment variable must be a setting the service reads, and the wiring (healthchecks, ports,
start order) must be there.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from service.cli import GRACEFUL_SHUTDOWN_SECONDS
from service.cli import app as cli_app
from service.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
PHONELINE_SERVICES = ("migrate", "app", "worker")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(
        (REPO_ROOT / "docker-compose.yml").read_text()
    )
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def settings_env_names() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {(prefix + name).upper() for name in Settings.model_fields}


def substitute(value: str) -> str:
    """Compose's ${NAME:-default} with nothing set in the environment."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def assert_cli_accepts(argv: list[str]) -> None:
    """`argv` (after the program name) names a phoneline command and options it accepts."""
    result = CliRunner().invoke(cli_app, [*argv, "--help"])
    assert result.exit_code == 0, f"phoneline {' '.join(argv)}: {result.output}"
    assert "Usage: " in result.output


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in lines)
        if line and not line.startswith("#")
    ]


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    scripts: dict[str, str] = pyproject["project"]["scripts"]
    return scripts


@pytest.mark.parametrize("name", PHONELINE_SERVICES)
def test_each_service_runs_a_real_phoneline_command(name: str) -> None:
    service = services()[name]
    command = service["command"]
    assert isinstance(command, list), "exec form, so no shell comes between"
    assert command[0] == "phoneline"
    assert "phoneline" in console_scripts()
    assert_cli_accepts([str(part) for part in command[1:]])


@pytest.mark.parametrize("name", PHONELINE_SERVICES)
def test_each_environment_variable_is_a_setting(name: str) -> None:
    environment: dict[str, Any] = services()[name]["environment"]
    unknown = set(environment) - settings_env_names()
    assert not unknown, f"{name} sets variables the service never reads: {sorted(unknown)}"
    values = {key.lower(): substitute(str(value)) for key, value in environment.items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in settings.database_url
    for required in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL", "SECRET_KEY"):
        assert required in environment


def test_the_app_leaves_sending_to_the_worker_service() -> None:
    all_services = services()
    app_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{k.lower(): substitute(str(v)) for k, v in all_services["app"]["environment"].items()},
    )
    assert app_settings.run_worker_in_server is False
    assert all_services["worker"]["command"] == ["phoneline", "worker"]


def test_start_order_healthchecks_and_port() -> None:
    all_services = services()
    postgres, migrate, app = all_services["postgres"], all_services["migrate"], all_services["app"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["command"][1:] == ["db", "upgrade"]
    assert str(migrate["restart"]) == "on-failure"
    for name in ("app", "worker"):
        # They start (and answer) while PostgreSQL is away, migrating when it is back: a
        # container recreated during an outage must not wait for a migration that cannot run.
        assert all_services[name]["depends_on"] == {"postgres": {"condition": "service_started"}}
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    assert app["command"][1:6] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "http://127.0.0.1:8000/healthz" in " ".join(app["healthcheck"]["test"])
    assert "pgdata" in compose()["volumes"]


def test_the_app_and_the_worker_share_one_persistent_var_volume() -> None:
    """The spool (what the line acknowledged, STOPs among it) lives in /app/var: one named
    volume for both containers, so that each reads the other's pending opt-outs and a container
    recreated on it finds what its predecessor left; a grace period to write it on stop."""
    all_services = services()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    workdir = dict(dockerfile_instructions())["WORKDIR"]
    var = f"{workdir}/{settings.var_dir}"
    for name in ("app", "worker"):
        mounts = [str(volume) for volume in all_services[name]["volumes"]]
        assert f"phoneline-var:{var}" in mounts, f"{name} keeps {var} on the shared volume"
        grace = str(all_services[name]["stop_grace_period"])
        assert grace.endswith("s") and int(grace[:-1]) >= GRACEFUL_SHUTDOWN_SECONDS + 30
    assert "phoneline-var" in compose()["volumes"]


def test_dockerfile_builds_a_non_root_image_whose_command_exists() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copied = [
        source for kind, args in instructions if kind == "COPY" for source in args.split()[:-1]
    ]
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    assert {"pyproject.toml", "service", "migrations", "flows", "alembic.ini"} <= set(copied)
    run = " ".join(args for kind, args in instructions if kind == "RUN")
    assert "pip install" in run
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    (cmd,) = [json.loads(args) for kind, args in instructions if kind == "CMD"]
    assert not [kind for kind, _ in instructions if kind == "ENTRYPOINT"]
    assert cmd[0] in console_scripts()
    assert_cli_accepts(cmd[1:])
    assert "EXPOSE" in dict(instructions) and dict(instructions)["EXPOSE"] == "8000"


def test_only_the_hosts_loopback_reaches_the_app_and_metrics_need_the_token() -> None:
    """README, "Going live": nothing but a proxy on the host reaches port 8000, and /metrics
    is read with METRICS_TOKEN, never made public."""
    all_services = services()
    for name, service in all_services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every address"
    environment = all_services["app"]["environment"]
    assert environment["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    assert "METRICS_PUBLIC" not in environment
    assert "TRUSTED_PROXIES" in environment
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert "reverse proxy" in text and "terminates TLS" in text


def test_every_picture_the_readme_shows_is_in_the_repository() -> None:
    """README, "Editing the menu": its screenshots are files of this repository, and PNGs."""
    readme = (REPO_ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(pictures) >= 4
    for picture in pictures:
        assert (REPO_ROOT / picture).read_bytes().startswith(b"\x89PNG"), picture
