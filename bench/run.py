"""`make bench`: server CPU per webhook, throughput, latency and memory of `phoneline serve`
beside a minimal FastAPI app (bench/baseline_app.py), on SQLite and PostgreSQL, at 4 and 40
concurrent calls; and the staff pages (the call list, the follow-ups, the overview) with
1,000,000 calls stored in PostgreSQL (bench/staff_data.py).

Every server runs as its own process group on 127.0.0.1 (one uvicorn process each), all three
at once, with their production defaults (log level info: one JSON line per webhook); simulated
callers walk the menu with signed webhooks over real HTTP (bench/harness.py). CPU is user+system
time of the server's process group from /proc (every thread, the call writer's included),
measured around each saturated run once the records of its webhooks are written. A two-core
machine is noisy, so the saturated runs go in rounds, the servers taking turns, and each
server's CPU per webhook is the median of its rounds; its ratio to the minimal app is the median
of the ratios within each round (the baseline measured next to it, under the same noise); the
spread of both is reported. Results go to bench/results/bench-<time>.json and a table on stdout.
Budgets (SPEC.md section 8) are checked and the exit status is 1 when one is missed.

Options: --calls-4 N --calls-40 N (calls per saturated run), --rounds N, --skip-staff,
--skip-postgres, --staff-only. PostgreSQL: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the
local `test` database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.clinic_data import CLINIC
from bench.harness import (
    DEFAULT_CALL_SCRIPT,
    REPO_ROOT,
    ServerProcess,
    Timings,
    free_port,
    phoneline_env,
    phoneline_server,
    run_callers,
    run_texters,
)
from bench.lines import lines_table, run_lines
from bench.staff_data import (
    MILLION,
    STAFF_CALLS,
    STAFF_PASSWORD,
    STAFF_USER,
    prepare_staff_schema,
    schema_url,
)
from service.staff.rollup import MAX_DAYS

RESULTS = REPO_ROOT / "bench" / "results"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LINES_RATIO_BUDGET = 1.2
"""50 lines against 1: the machine's noise between rounds is about 10 %."""
CPU_RATIO_BUDGET = 2.0
P99_BUDGET_MS = 25.0
STAFF_BUDGET_MS = 100.0
THINK_SECONDS = 0.5
# Longer than the call writer's linger (0.5 s) plus a batch's writing: a saturated run's CPU
# includes writing its records.
RECORDS_SETTLE_SECONDS = 1.5


@dataclass
class RunResult:
    webhook: str
    """"voice" (callers walking the menu) or "sms" (texters)."""
    server: str
    database: str
    concurrency: int
    calls: int
    rounds: int
    requests: int
    errors: int
    requests_per_second: float
    cpu_ms_per_webhook: float
    """The median of the rounds."""
    cpu_ms_per_webhook_rounds: list[float]
    x_baseline: float
    """The median over rounds of CPU per webhook / the minimal app's in the same round."""
    x_baseline_rounds: list[float]
    p50_ms: float
    p99_ms: float
    rss_mb: float
    paced_requests: int
    paced_errors: int
    paced_p50_ms: float
    paced_p99_ms: float
    first_errors: list[str]


@dataclass
class Contender:
    name: str
    database: str
    server: ServerProcess


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class RunStats:
    timings: Timings
    seconds: float
    cpu_ms_per_webhook: float


def drive(
    kind: str, base_url: str, count: int, concurrency: int, first: int, think: float = 0.0
) -> Timings:
    """`count` callers walking the menu ("voice") or texters sending five texts ("sms")."""
    if kind == "sms":
        return asyncio.run(
            run_texters(base_url, count, concurrency, first_index=first, think_seconds=think)
        )
    return asyncio.run(
        run_callers(base_url, count, concurrency, first_index=first, think_seconds=think)
    )


def saturated_run(
    server: ServerProcess, calls: int, concurrency: int, first: int, kind: str = "voice"
) -> RunStats:
    """`calls` calls (or texters) with no pause at all; CPU per webhook is read once the server
    has written their records (the spool lingers RECORDS_SETTLE_SECONDS at most)."""
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    timings = drive(kind, server.base_url, calls, concurrency, first)
    elapsed = time.perf_counter() - started
    time.sleep(RECORDS_SETTLE_SECONDS)
    cpu = server.cpu_seconds() - cpu_before
    return RunStats(timings, elapsed, 1000 * cpu / max(len(timings.latencies), 1))


def measure(
    contenders: list[Contender],
    concurrency: int,
    calls: int,
    paced_calls: int,
    rounds: int,
    kind: str = "voice",
) -> list[RunResult]:
    """Latency as callers meet it (each caller listens THINK_SECONDS before every webhook; a
    real caller takes several seconds), then `rounds` saturated rounds for CPU and throughput,
    the servers taking turns in a rotating order."""
    paced: dict[str, Timings] = {}
    for number, contender in enumerate(contenders):
        first = number * 10_000_000 + concurrency * 100_000 + 5_000_000
        paced[contender.name + contender.database] = drive(
            kind, contender.server.base_url, paced_calls, concurrency, first, THINK_SECONDS
        )
    runs: dict[str, list[RunStats]] = {c.name + c.database: [] for c in contenders}
    for round_number in range(rounds):
        turn = round_number % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            number = contenders.index(contender)
            first = number * 10_000_000 + concurrency * 100_000 + round_number * calls
            stats = saturated_run(contender.server, calls, concurrency, first, kind)
            runs[contender.name + contender.database].append(stats)
    baseline_rounds = [stats.cpu_ms_per_webhook for stats in runs["baseline-"]]
    results = []
    for contender in contenders:
        key = contender.name + contender.database
        ratios = [
            round(stats.cpu_ms_per_webhook / base, 3)
            for stats, base in zip(runs[key], baseline_rounds, strict=True)
        ]
        saturated = Timings()
        for stats in runs[key]:
            saturated.extend(stats.timings)
        cpu_rounds = [round(stats.cpu_ms_per_webhook, 4) for stats in runs[key]]
        seconds = sum(stats.seconds for stats in runs[key])
        result = RunResult(
            webhook=kind,
            server=contender.name,
            database=contender.database,
            concurrency=concurrency,
            calls=calls,
            rounds=rounds,
            requests=len(saturated.latencies),
            errors=len(saturated.errors),
            requests_per_second=round(len(saturated.latencies) / seconds, 1),
            cpu_ms_per_webhook=round(statistics.median(cpu_rounds), 4),
            cpu_ms_per_webhook_rounds=cpu_rounds,
            x_baseline=round(statistics.median(ratios), 3),
            x_baseline_rounds=ratios,
            p50_ms=round(1000 * percentile(saturated.latencies, 0.50), 2),
            p99_ms=round(1000 * percentile(saturated.latencies, 0.99), 2),
            rss_mb=round(contender.server.rss_bytes() / 2**20, 1),
            paced_requests=len(paced[key].latencies),
            paced_errors=len(paced[key].errors),
            paced_p50_ms=round(1000 * percentile(paced[key].latencies, 0.50), 2),
            paced_p99_ms=round(1000 * percentile(paced[key].latencies, 0.99), 2),
            first_errors=(paced[key].errors + saturated.errors)[:5],
        )
        results.append(result)
        print(
            f"  {kind:<5} {result.server:<9} {result.database:<8} c={concurrency:<3} "
            f"{result.requests_per_second:>7.1f} req/s  "
            f"cpu {result.cpu_ms_per_webhook:.3f} ms/webhook "
            f"({min(cpu_rounds):.3f}-{max(cpu_rounds):.3f}), {result.x_baseline:.2f}x  "
            f"p99 {result.paced_p99_ms:.1f} ms paced, {result.p99_ms:.1f} saturated  "
            f"errors {result.paced_errors + result.errors}",
            flush=True,
        )
    return results


def baseline_server(work: Path) -> ServerProcess:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "bench.baseline_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return ServerProcess(argv, env, port, work / "baseline.log")


def postgres_base() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", DEFAULT_POSTGRES
    )


def postgres_reachable(url: str) -> bool:
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def run_webhooks(args: argparse.Namespace, work: Path) -> list[RunResult]:
    contenders = [Contender("baseline", "-", baseline_server(work))]
    contenders.append(
        Contender(
            "phoneline",
            "sqlite",
            phoneline_server(
                phoneline_env(
                    f"sqlite:///{work / 'sqlite' / 'phoneline.db'}",
                    work / "var-sqlite",
                    RUN_WORKER_IN_SERVER="false",
                    LOG_LEVEL="info",
                ),
                work / "serve-sqlite.log",
            ),
        )
    )
    schema = None
    base = postgres_base()
    if not args.skip_postgres and postgres_reachable(base):
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with create_engine(base, poolclass=NullPool).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        contenders.append(
            Contender(
                "phoneline",
                "postgres",
                phoneline_server(
                    phoneline_env(
                        schema_url(base, schema),
                        work / "var-postgres",
                        RUN_WORKER_IN_SERVER="false",
                        LOG_LEVEL="info",
                    ),
                    work / "serve-postgres.log",
                ),
            )
        )
    elif not args.skip_postgres:
        print(f"PostgreSQL at {make_url(base).render_as_string()} is not reachable: skipped")
    results: list[RunResult] = []
    try:
        for contender in contenders:
            contender.server.start()
            asyncio.run(run_callers(contender.server.base_url, 8, 4, first_index=9_900_000))
        for concurrency, calls, paced in (
            (4, args.calls_4, args.paced_4),
            (40, args.calls_40, args.paced_40),
        ):
            results += measure(contenders, concurrency, calls, paced, args.rounds)
        # Texters: five texts each (hi, 1, #, 2, menu), 4 at a time.
        results += measure(
            contenders, 4, args.texters_4, args.paced_texters, args.rounds, kind="sms"
        )
    finally:
        for contender in contenders:
            contender.server.stop()
        if schema is not None:
            with create_engine(base, poolclass=NullPool).begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return results


# -- the staff pages with a million calls -------------------------------------------------------


def cookies_of(response: httpx.Response, jar: dict[str, str]) -> None:
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel.value


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def sign_in(client: httpx.Client, base: str) -> dict[str, str]:
    jar: dict[str, str] = {}
    form_page = client.get(base + "/staff/login")
    cookies_of(form_page, jar)
    marker = 'name="csrf_token" value="'
    token = form_page.text.split(marker, 1)[1].split('"', 1)[0]
    response = client.post(
        base + "/staff/login",
        data={"username": STAFF_USER, "password": STAFF_PASSWORD, "csrf_token": token},
        headers={"Cookie": cookie_header(jar)},
    )
    if response.status_code != 303:
        raise RuntimeError(f"staff sign-in failed: HTTP {response.status_code}")
    cookies_of(response, jar)
    return jar


NAVIGATION_COUNT = " open)</span>"
"""What the navigation shows on every page: "Follow-ups (N open)"."""


def time_pages(
    client: httpx.Client, url: str, jar: dict[str, str], rounds: int, expect: str = "<table"
) -> dict[str, Any]:
    """`rounds` requests of `url` after WARM_UP; the page must hold `expect` and the
    navigation's count of open follow-ups."""
    headers = {"Cookie": cookie_header(jar)}
    first = client.get(url, headers=headers)
    if first.status_code != 200 or expect not in first.text or NAVIGATION_COUNT not in first.text:
        raise RuntimeError(f"{url}: HTTP {first.status_code}, or not the page expected")
    for _ in range(WARM_UP - 1):
        client.get(url, headers=headers)
    rows = first.text.count("<tr") - 1
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200
    return {
        "url": url.split("/staff", 1)[1],
        "rows_on_page": rows,
        "p50_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2),
        "rounds": rounds,
    }


STAFF_PAGES = {
    "first_page": "call list, first page",
    "filtered_page": "call list, filtered",
    "second_page": "call list, second page",
    "follow_ups_open": "follow-ups, open (first page)",
    "follow_ups_closed": "follow-ups, recently closed",
    "follow_up_item": "a follow-up's page",
    "navigation_count": "navigation count (a page with no other query)",
    "overview": "overview, default range (30 days)",
    "overview_90_days": "overview, 90 days",
    "overview_longest": f"overview, {MAX_DAYS} days (the longest it offers)",
}
"""The pages timed (the keys of the results), and what the table calls them: the first seven
with a million calls, the overview on a big clinic's year."""
OVERVIEW_BUDGET_MS = {"overview": 100.0, "overview_90_days": 300.0, "overview_longest": 300.0}
"""SPEC section 8: the overview of a big clinic's year in 100 ms for 30 days and 300 ms for
366 days (p50); 90 days is held to the longer one's."""
STAFF_ROUNDS = 30
WARM_UP = 25
"""Requests of a page before it is timed, as a server that has been running has it: psycopg
prepares a statement on a connection at its fifth execution, and the pool's five connections
take turns (the first page timed after one request ran mostly unprepared: 30 days then took
longer than 90)."""


def item_to_time(url: str) -> int:
    """The open item longest waiting among the claimed ones (notes, a number with history)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT id FROM follow_ups WHERE open_phone IS NOT NULL "
                        "AND claimed_by IS NOT NULL ORDER BY first_attempt_at, id LIMIT 1"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def run_staff(work: Path) -> dict[str, Any] | None:
    base = postgres_base()
    if not postgres_reachable(base):
        print("PostgreSQL is not reachable: the staff pages' timing is skipped")
        return None
    pages: dict[str, Any] = {}
    url, loaded, rows = prepare_staff_schema(base, work, MILLION)
    item = item_to_time(url)
    with staff_server(url, work, "million") as (client, base_url, jar):

        def timed(key: str, path: str, expect: str = "<table") -> None:
            pages[key] = time_pages(client, base_url + path, jar, STAFF_ROUNDS, expect)

        timed("first_page", "/staff/calls")
        timed("filtered_page", "/staff/calls?outcome=reached&language=es&contact=library")
        # A later page: the keyset cursor of page one, followed.
        page = client.get(base_url + "/staff/calls", headers={"Cookie": cookie_header(jar)})
        next_link = page.text.split('href="/staff/calls?after=', 1)
        if len(next_link) == 2:
            after = next_link[1].split('"', 1)[0].replace("&amp;", "&")
            timed("second_page", "/staff/calls?after=" + after)
        timed("follow_ups_open", "/staff/follow-ups", "/staff/follow-ups/")
        timed("follow_ups_closed", "/staff/follow-ups?show=closed", "/staff/follow-ups/")
        timed("follow_up_item", f"/staff/follow-ups/{item}", "<h1")
        timed("navigation_count", "/staff/search", "<h1")
    clinic_url, clinic_loaded, clinic_rows = prepare_staff_schema(base, work, CLINIC)
    with staff_server(clinic_url, work, "clinic") as (client, base_url, jar):
        headers = {"Cookie": cookie_header(jar)}
        overview = client.get(base_url + "/staff/", headers=headers)
        today = date.fromisoformat(overview.text.split('name="to" value="', 1)[1].split('"', 1)[0])
        for key, days in OVERVIEW_DAYS.items():
            first = today - timedelta(days=days - 1)
            pages[key] = time_pages(
                client,
                f"{base_url}/staff/?from={first}&to={today}",
                jar,
                STAFF_ROUNDS,
                'id="headline-calls"',
            )
    return {
        "calls_stored": STAFF_CALLS,
        "rows_stored": rows,
        "load_seconds": round(loaded, 1),
        "clinic_rows_stored": clinic_rows,
        "clinic_load_seconds": round(clinic_loaded, 1),
        **pages,
    }


OVERVIEW_DAYS = {"overview": 30, "overview_90_days": 90, "overview_longest": MAX_DAYS}
"""The overview's ranges timed on the clinic's year, ending today: its default, a quarter and
the longest it offers."""


@contextmanager
def staff_server(
    url: str, work: Path, name: str
) -> Iterator[tuple[httpx.Client, str, dict[str, str]]]:
    """`phoneline serve` on the schema at `url` (no sender), an admin signed in."""
    env = phoneline_env(url, work / f"var-{name}", PUBLIC_BASE_URL="", RUN_WORKER_IN_SERVER="false")
    server = phoneline_server(env, work / f"serve-{name}.log")
    server.start()
    try:
        with httpx.Client(timeout=30, follow_redirects=False) as client:
            yield client, server.base_url, sign_in(client, server.base_url)
    finally:
        server.stop()


# -- report ---------------------------------------------------------------------------------------


WEBHOOK_HEADER = [
    "| webhook | server | db | concurrent | req/s (saturated) | CPU ms/webhook (rounds) "
    "| x baseline (rounds) | p50 / p99 ms paced | p50 / p99 ms saturated | RSS MB | errors |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def table(results: list[RunResult], staff: dict[str, Any] | None) -> str:
    lines = WEBHOOK_HEADER.copy() if results else []
    for r in results:
        spread = f"{min(r.cpu_ms_per_webhook_rounds):.3f}-{max(r.cpu_ms_per_webhook_rounds):.3f}"
        ratios = f"{min(r.x_baseline_rounds):.2f}-{max(r.x_baseline_rounds):.2f}"
        lines.append(
            f"| {r.webhook} | {r.server} | {r.database} | {r.concurrency} "
            f"| {r.requests_per_second:.0f} "
            f"| {r.cpu_ms_per_webhook:.3f} ({spread}) | {r.x_baseline:.2f} ({ratios}) "
            f"| {r.paced_p50_ms:.1f} / {r.paced_p99_ms:.1f} | {r.p50_ms:.1f} / {r.p99_ms:.1f} "
            f"| {r.rss_mb:.0f} | {r.paced_errors + r.errors}/{r.paced_requests + r.requests} |"
        )
    if staff:
        lines += [""] * bool(results)
        clinic = staff["clinic_rows_stored"]
        lines.append(
            f"Staff pages in PostgreSQL: {staff['calls_stored']:,} calls "
            f"({staff['rows_stored']['follow_ups_open']:,} follow-ups open); the overview on a "
            f"big clinic's year ({clinic['calls']:,} calls, {clinic['messages']:,} texts, "
            f"{clinic['follow_ups']:,} follow-ups):"
        )
        lines.append("| page | GET | p50 ms | max ms | runs |")
        lines.append("|---|---|---|---|---|")
        for key, label in STAFF_PAGES.items():
            page = staff.get(key)
            if page:
                lines.append(
                    f"| {label} | /staff{page['url']} | {page['p50_ms']} | {page['max_ms']} "
                    f"| {page['rounds']} |"
                )
    return "\n".join(lines)


def budgets(results: list[RunResult], staff: dict[str, Any] | None) -> list[tuple[str, bool]]:
    checks = []
    for r in results:
        if r.server == "baseline":
            continue
        ratio = r.x_baseline
        checks.append(
            (
                f"CPU/{r.webhook} webhook {r.database} c={r.concurrency}: {ratio:.2f}x the "
                f"minimal app (<= {CPU_RATIO_BUDGET}x)",
                ratio <= CPU_RATIO_BUDGET,
            )
        )
        if r.concurrency == 4:
            checks.append(
                (
                    f"p99 {r.webhook} {r.database} 4 concurrent: {r.paced_p99_ms} ms "
                    f"(< {P99_BUDGET_MS})",
                    r.paced_p99_ms < P99_BUDGET_MS,
                )
            )
        if r.concurrency == 40:
            errors = r.errors + r.paced_errors
            checks.append((f"errors {r.database} 40 concurrent: {errors} (none)", errors == 0))
    if staff:
        for key, label in STAFF_PAGES.items():
            page = staff.get(key)
            if page:
                budget = OVERVIEW_BUDGET_MS.get(key, STAFF_BUDGET_MS)
                data = "a big clinic's year" if key in OVERVIEW_BUDGET_MS else "1M calls"
                checks.append(
                    (
                        f"staff {label} with {data}: p50 {page['p50_ms']} ms (< {budget})",
                        page["p50_ms"] < budget,
                    )
                )
    return checks


def lines_budgets(lines: dict[str, Any] | None) -> list[tuple[str, bool]]:
    if not lines:
        return []
    live = lines["publish_to_live_s"]["from_commit"]["max"]
    return [
        (
            f"CPU/voice webhook with {lines['lines']} lines: {lines['ratio']:.2f}x one line's "
            f"(<= {LINES_RATIO_BUDGET}x: the same within noise)",
            lines["ratio"] <= LINES_RATIO_BUDGET,
        ),
        (f"publish -> heard by a new call: max {live:.2f} s (<= 5)", live <= 5.0),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls-4", type=int, default=150, help="calls a round, 4 at a time")
    parser.add_argument("--calls-40", type=int, default=300, help="calls a round, 40 at a time")
    parser.add_argument("--rounds", type=int, default=7, help="saturated rounds per server")
    parser.add_argument("--paced-4", type=int, default=24, help="paced calls at 4 concurrent")
    parser.add_argument("--paced-40", type=int, default=80, help="paced calls at 40 concurrent")
    parser.add_argument("--texters-4", type=int, default=60, help="texters a round, 4 at a time")
    parser.add_argument("--paced-texters", type=int, default=12, help="paced texters, 4 at a time")
    parser.add_argument("--skip-staff", action="store_true")
    parser.add_argument("--skip-lines", action="store_true", help="not 1 line against 50")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--staff-only", action="store_true", help="only the staff pages (no webhook servers)"
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(
        f"bench: {len(DEFAULT_CALL_SCRIPT) + 2} webhooks per call; paced ({THINK_SECONDS} s "
        f"before each webhook): {args.paced_4} calls 4 at a time, {args.paced_40} 40 at a time; "
        f"saturated (no pause): {args.calls_4} and {args.calls_40}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="phoneline-bench-") as tmp:
        work = Path(tmp)
        results = [] if args.staff_only else run_webhooks(args, work)
        lines = None if args.staff_only or args.skip_lines else run_lines(work)
        staff = None if args.skip_staff or args.skip_postgres else run_staff(work)
    checks = budgets(results, staff) + lines_budgets(lines)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "time": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "webhooks_per_call": len(DEFAULT_CALL_SCRIPT) + 2,
        "think_seconds": THINK_SECONDS,
        "runs": [asdict(r) for r in results],
        "lines": lines,
        "staff_list": staff,
        "budgets": [{"check": name, "met": met} for name, met in checks],
    }
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print()
    print(table(results, staff))
    if lines:
        print("\n" + "\n".join(lines_table(lines)))
    print()
    for name, met in checks:
        print(f"  [{'ok' if met else 'MISSED'}] {name}")
    print(f"\nresults: {path.relative_to(REPO_ROOT)}")
    return 0 if all(met for _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
