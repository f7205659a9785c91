"""/metrics, /readyz and the JSON request log, as an operator sees them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from service.channels.signature import verified_form
from service.db import Database, set_database
from service.logs import JsonFormatter, LineHandler, logging_config
from tests.support import AppClient, app_client

CALLER = "+18045551234"
SECRET_BODY = "my biopsy results came back"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the samples called `name` in a text exposition."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The request log lines, formatted exactly as production writes them."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "phoneline.request"
    ]


def healthz_count(client: AppClient) -> float:
    text = client.get("/metrics").text
    found = samples(text, "phoneline_http_request_duration_seconds_count")
    return found.get((("method", "GET"), ("route", "/healthz"), ("status", "200")), 0.0)


def test_metrics_expose_the_spec_metrics_and_count_requests(client: AppClient) -> None:
    before = healthz_count(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert healthz_count(client) == before + 3
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "phoneline_http_request_duration_seconds",
        "phoneline_calls",
        "phoneline_transfers",
        "phoneline_texts_sent",
        "phoneline_texts_failed",
        "phoneline_text_delivery",
        "phoneline_opt_out_changes",
        "phoneline_db_errors",
    } <= names


def test_unknown_paths_share_one_label(client: AppClient) -> None:
    client.get("/no/such/page-1")
    client.get("/no/such/page-2")
    found = samples(client.get("/metrics").text, "phoneline_http_request_duration_seconds_count")
    routes = {dict(labels)["route"] for labels in found}
    assert "unmatched" in routes
    assert not any(route.startswith("/no/") for route in routes)


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, a process's /metrics shows the other processes' counts."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from service.metrics import TEXTS_SENT; TEXTS_SENT.labels(via='api').inc({n})"
    for n in (2, 5):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True)
    show = "from service.metrics import exposition; print(exposition()[0].decode())"
    result = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True
    )
    assert samples(result.stdout, "phoneline_texts_sent_total") == {(("via", "api"),): 7.0}


def test_readyz_is_ready_on_a_migrated_database(client: AppClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ready\n")
    assert samples(client.get("/metrics").text, "phoneline_flow_loaded") == {(): 1.0}


def test_readyz_answers_503_when_the_database_does_not(client: AppClient) -> None:
    unreachable = Database(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    previous = set_database(unreachable)
    try:
        response = client.get("/readyz")
    finally:
        set_database(previous)
        unreachable.dispose()
    assert response.status_code == 503
    assert "not ready" in response.text
    assert client.get("/healthz").status_code == 200


def test_one_json_line_per_request_with_a_request_id(
    client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="phoneline.request")
    given = client.get("/healthz", headers={"X-Request-ID": "lb-42.abc"})
    generated = client.get("/healthz")
    hostile = client.get("/healthz", headers={"X-Request-ID": 'bad id" {}'})
    assert given.headers["x-request-id"] == "lb-42.abc"
    assert len(generated.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != 'bad id" {}'
    lines = request_lines(caplog)
    assert len(lines) == 3
    first = lines[0]
    assert first["request_id"] == "lb-42.abc"
    assert (first["method"], first["route"], first["status"]) == ("GET", "/healthz", 200)
    assert isinstance(first["latency_ms"], float)
    assert str(first["time"]).endswith("+00:00")
    assert lines[1]["request_id"] == generated.headers["x-request-id"]


def test_webhook_line_has_the_sid_and_masked_numbers_but_no_body(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @app.post("/twilio/test-echo")
    async def echo(request: Request) -> dict[str, str]:
        await verified_form(request, "MessageSid")
        return {"ok": "yes"}

    caplog.set_level(logging.INFO, logger="phoneline.request")
    params = {
        "MessageSid": "SM" + "a" * 32,
        "From": CALLER,
        "To": "+18005550000",
        "Body": SECRET_BODY,
    }
    with app_client(app) as client:
        assert client.twilio("/twilio/test-echo", params).status_code == 200
        assert client.post("/twilio/test-echo", data=params).status_code == 403
    signed, unsigned = request_lines(caplog)
    assert signed["message_sid"] == "SM" + "a" * 32
    assert signed["from"] == "•••-•••-1234"
    assert signed["to"] == "•••-•••-0000"
    assert signed["route"] == "/twilio/test-echo"
    assert unsigned["status"] == 403
    assert "message_sid" not in unsigned
    everything = (
        "\n".join(JsonFormatter().format(record) for record in caplog.records) + caplog.text
    )
    assert CALLER not in everything
    assert "5551234" not in everything
    assert SECRET_BODY not in everything


def test_413_is_logged_and_timed(client: AppClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoneline.request")
    response = client.post("/twilio/voice", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["x-request-id"]
    (line,) = request_lines(caplog)
    assert line["status"] == 413


def test_logging_config_writes_json_lines(tmp_path: Path) -> None:
    script = (
        "import logging, sys; from service.logs import configure_logging; "
        "configure_logging('info'); "
        "logging.getLogger('phoneline.test').info('hello %s', 'there', extra={'route': '/x'})"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    line = json.loads(result.stdout.strip())
    assert line["message"] == "hello there"
    assert (line["level"], line["logger"], line["route"]) == ("info", "phoneline.test", "/x")
    assert logging_config("debug")["root"]["level"] == "DEBUG"


def test_the_twilio_webhooks_are_timed_under_their_own_route(client: AppClient) -> None:
    params = {"CallSid": "CA" + "7" * 32, "From": CALLER, "To": "+18045550100"}
    assert client.twilio("/twilio/voice", params).status_code == 200
    assert (
        client.twilio("/twilio/voice/status", params | {"CallStatus": "ringing"}).status_code == 204
    )
    found = samples(client.get("/metrics").text, "phoneline_http_request_duration_seconds_count")
    routes = {dict(labels)["route"] for labels in found}
    assert {"/twilio/voice", "/twilio/voice/status"} <= routes


@pytest.mark.parametrize(
    "created", [0.0, 1764061959.0, 1764061959.0004999, 1764061959.8089995, 1764061959.9999996]
)
def test_log_times_are_utc_iso_with_milliseconds(created: float) -> None:
    record = logging.LogRecord("phoneline.test", logging.INFO, "", 0, "hello", None, None)
    record.created = created
    line = json.loads(JsonFormatter().format(record))
    assert line["time"] == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def metrics_app(settings: object, **overrides: object) -> FastAPI:
    from service.config import Settings
    from service.main import create_app

    assert isinstance(settings, Settings)
    return create_app(settings.model_copy(update=overrides))


def test_metrics_answer_loopback_which_the_other_tests_use(client: AppClient) -> None:
    # The test transport's peer is 127.0.0.1: loopback, so let in with nothing else.
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("forwarded", ["203.0.113.9", "127.0.0.1, 203.0.113.9"])
def test_metrics_are_a_404_to_a_client_a_trusted_proxy_forwards(
    client: AppClient, forwarded: str
) -> None:
    """An outside client behind the proxy (on loopback), even one that claims to be 127.0.0.1."""
    response = client.get("/metrics", headers={"X-Forwarded-For": forwarded})
    assert response.status_code == 404
    assert "phoneline_" not in response.text


def test_metrics_with_the_bearer_token(settings: object) -> None:
    app = metrics_app(settings, metrics_token="s3cret-metrics-token")
    outside = {"X-Forwarded-For": "203.0.113.9"}
    with app_client(app) as client:
        for authorization, status in [
            ("Bearer s3cret-metrics-token", 200),
            ("bearer s3cret-metrics-token", 200),
            ("Bearer wrong-token", 404),
            ("Bearer ", 404),
            ("Basic s3cret-metrics-token", 404),
        ]:
            response = client.get("/metrics", headers={**outside, "Authorization": authorization})
            assert response.status_code == status, authorization
        latin1 = {**outside, "Authorization": b"Bearer s3cret-metrics-token\xe9"}
        assert client.get("/metrics", headers=latin1).status_code == 404
        assert "phoneline_http_request_duration_seconds" in client.get(
            "/metrics", headers={**outside, "Authorization": "Bearer s3cret-metrics-token"}
        ).text


def test_no_token_configured_lets_no_bearer_in(settings: object) -> None:
    with app_client(metrics_app(settings, metrics_token="")) as client:
        response = client.get(
            "/metrics", headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer "}
        )
        assert response.status_code == 404


def test_metrics_answer_peers_in_trusted_proxies_and_anyone_when_public(settings: object) -> None:
    outside = {"X-Forwarded-For": "203.0.113.9"}
    with app_client(metrics_app(settings, trusted_proxies="127.0.0.1,203.0.113.0/24")) as client:
        assert client.get("/metrics", headers=outside).status_code == 200  # a listed network
    with app_client(metrics_app(settings, metrics_public=True)) as client:
        assert client.get("/metrics", headers=outside).status_code == 200


class CountingStream:
    """A stream that says what reached it and how often it was flushed."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushes += 1


def test_log_lines_are_flushed_together_and_warnings_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LineHandler, "FLUSH_SECONDS", 0.2)
    stream = CountingStream()
    handler = LineHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.line-handler")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for n in range(50):
            logger.warning("w") if n == 49 else logger.info("request %s", n)
        assert stream.flushes == 1  # 49 info lines, no flush; the warning flushed them all
        assert len(stream.written) == 50
        logger.info("a quiet moment")
        assert stream.flushes == 1
        deadline = time.monotonic() + 5
        while stream.flushes == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.flushes == 2  # within FLUSH_SECONDS, with nothing more logged
        assert json.loads(stream.written[-1])["message"] == "a quiet moment"
    finally:
        logger.removeHandler(handler)
        handler.close()
