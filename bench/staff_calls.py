"""Benchmark: the staff call list and its CSV with a million calls in PostgreSQL.

    .venv/bin/python bench/staff_calls.py [--calls 1000000] [--repeat 30]

Fills a fresh schema of the PostgreSQL at TEST_DATABASE_URL (default: the test database) with
synthetic calls (one INSERT ... SELECT FROM generate_series), signs in to the dashboard and
times pages through the ASGI app in process (routing, session check, query, template):
the first page, a following page, and filtered pages. Then it streams the whole CSV export and
reports its peak memory growth. Budget (SPEC section 8): first page under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from service import migrate  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import Database, set_database  # noqa: E402
from service.main import create_app  # noqa: E402
from service.models import StaffUser  # noqa: E402
from service.staff.auth import hash_password  # noqa: E402
from tests.support import app_client  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "benchmark password 123"

FILL = """
INSERT INTO calls (call_sid, caller, called, started_at, duration_seconds, language, status,
                   outcome, transferred_contact, transferred_number, dial_outcome, last_node,
                   flow_hash, path)
SELECT 'CA' || lpad(to_hex(n), 32, '0'),
       '+1804555' || lpad((n % 10000)::text, 4, '0'),
       '+18045550100',
       timestamptz '2026-11-24 00:00:00+00' - make_interval(secs => n * 2.5),
       30 + n % 600,
       CASE WHEN n % 7 = 0 THEN 'es' ELSE 'en' END,
       'completed',
       (ARRAY['reached', 'listened', 'hung-up', 'listened', 'failed'])[1 + n % 5],
       CASE n % 5 WHEN 0 THEN (ARRAY['coordinator', 'library', 'cancer_information_service',
                                     'medicare_hotline'])[1 + (n / 5) % 4] END,
       CASE n % 5 WHEN 0 THEN '+18048287999' END,
       CASE n % 5 WHEN 0 THEN 'completed' END,
       'reach', 'cbfb1291a215', 'main>reach>coordinator'
FROM generate_series(1, :calls) AS n
"""

PAGES = {
    "first page": "/staff/calls",
    "outcome=reached": "/staff/calls?outcome=reached",
    "language=es": "/staff/calls?language=es",
    "contact=library": "/staff/calls?contact=library",
    "one day": "/staff/calls?from=2026-11-10&to=2026-11-10",
    "outcome+language+dates": (
        "/staff/calls?outcome=listened&language=es&from=2026-10-01&to=2026-11-15"
    ),
}


def timed(client: object, path: str, repeat: int) -> tuple[list[float], str]:
    samples = []
    body = ""
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        body = response.text
    return samples, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-csv", action="store_true")
    args = parser.parse_args()

    base = os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        migrate.upgrade(url_text)
        database = Database(url_text)
        set_database(database)
        start = time.perf_counter()
        with database.engine.begin() as connection:
            connection.execute(text(FILL), {"calls": args.calls})
            connection.execute(text("ANALYZE calls"))
        print(f"filled {args.calls:,} calls in {time.perf_counter() - start:.1f} s")
        with database.session() as session:
            session.add(
                StaffUser(username="bench", password_hash=hash_password(PASSWORD), role="viewer")
            )
        with tempfile.TemporaryDirectory() as var:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url_text,
                secret_key="bench-secret",
                var_dir=Path(var),
                flows_dir=REPO_ROOT / "flows",
                run_worker_in_server=False,
            )
            app = create_app(settings)
            with app_client(app) as client:
                form = client.get("/staff/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]  # type: ignore[index]
                signed = client.post(
                    "/staff/login",
                    data={"username": "bench", "password": PASSWORD, "csrf_token": token},
                )
                assert signed.status_code == 303
                print(f"{'page':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} rows")
                for name, path in PAGES.items():
                    client.get(path)  # warm
                    samples, body = timed(client, path, args.repeat)
                    rows = body.count('<a href="/staff/calls/')
                    report(name, samples, rows)
                    if name == "first page":
                        next_link = re.search(r'<a href="([^"]+)" rel="next">', body)
                        assert next_link
                        following = next_link[1].replace("&amp;", "&")
                        samples, body = timed(client, following, args.repeat)
                        report("next page", samples, body.count('<a href="/staff/calls/'))
                explain(database)
            if not args.skip_csv:
                stream_csv(app)
    finally:
        set_database(None)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def report(name: str, samples: list[float], rows: int) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    print(f"{name:<26} {statistics.median(ordered):8.1f} {p95:8.1f} {ordered[-1]:8.1f} {rows}")


def explain(database: Database) -> None:
    from service.staff.queries import CallFilters, calls_query

    query = calls_query(CallFilters(outcome="reached")).limit(51)
    compiled = query.compile(database.engine, compile_kwargs={"literal_binds": True})
    with database.engine.connect() as connection:
        plan = connection.execute(text(f"EXPLAIN ANALYZE {compiled}")).scalars().all()
    print("plan (outcome=reached):\n  " + "\n  ".join(plan[:4]))


def stream_csv(app: object) -> None:
    """The whole export over real HTTP from uvicorn in a thread (the in-process transport
    would buffer the body), counting rows as they arrive; RSS covers server and client."""
    import socket
    import threading

    import httpx
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            form = client.get("/staff/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]  # type: ignore[index]
            client.post(
                "/staff/login",
                data={"username": "bench", "password": PASSWORD, "csrf_token": token},
            )
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            rows = size = 0
            first_byte = None
            with client.stream("GET", "/staff/calls.csv") as response:
                assert response.status_code == 200, response.status_code
                for chunk in response.iter_bytes():
                    if first_byte is None:
                        first_byte = time.perf_counter() - start
                    rows += chunk.count(b"\n")
                    size += len(chunk)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(
        f"CSV: {rows - 1:,} rows, {size / 1e6:.0f} MB in {seconds:.1f} s "
        f"(first bytes after {1000 * (first_byte or 0):.0f} ms); peak RSS "
        f"{before / 1024:.0f} MB before, {after / 1024:.0f} MB after "
        f"(+{(after - before) / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
