"""The staff benchmark's PostgreSQL schema: what a clinic has after a million calls.

Everything is made by INSERT ... SELECT (generate_series, then from the rows already made) in
one transaction, relative to the moment of loading, so the newest rows are minutes old:

- 1,000,000 calls, one every 30 seconds (347 days); 200,000 callers, each calling twice in a
  row; 35 % reached a person, 12 % transfers not answered, 35 % listened, 15 % hung up in the
  first menu, 3 % failed. About 3.2 million call events (menus, keys, dials and their results,
  a call-back asked for in a third of the transfers not answered).
- The worklist as the sweep leaves it: an item for every transfer not answered and every text
  that asked for a person or was not understood, with its sources (a call-back request and a
  failed call-back join their call's item); the items of the last ten days whose number has not
  reached a person since stay open (a few thousand, a quarter of them claimed), the rest are
  closed within three days; notes on the claimed items and on a third of the closed ones.
- 100,000 text conversations of four messages each; 5,000 opt-outs; 100,000 texts and about
  40,000 call-backs in the outbox, all of them sent or given up.

Every trigger the sweep looks for is filed already and no open number reached a person after
its last attempt, so the server's sweep (every few seconds, over the last seven days) finds
nothing to do and the data stays as loaded while it is timed.

The schema is kept between runs. Its comment records SHAPE and when it was loaded: it is
dropped and loaded again when SHAPE changes (the loader was changed) or the data is older than
MAX_AGE (the "last 30 days" would be emptier than a live line's). Migrations added since are
applied to the kept schema (`phoneline db upgrade`), indexes included, and the overview's
rollup is brought up to date (`phoneline staff rollup`) before the pages are timed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.harness import PHONELINE, phoneline_env

STAFF_SCHEMA = "bench_staff_pages_1m"
STAFF_CALLS = 1_000_000
SHAPE = 2
"""Raise it whenever LOAD changes: a kept schema of another shape is loaded again."""
MAX_AGE = timedelta(days=7)
STAFF_USER, STAFF_PASSWORD = "benchadmin", "bench-password-long-enough"
CONVERSATIONS = 100_000
OUTBOX_TEXTS = 100_000
OPEN_FOR = "10 days"
"""Items of the last OPEN_FOR whose number has not reached a person since are open."""

CONTACTS = "ARRAY['coordinator', 'library', 'cancer_information_service', 'medicare_hotline']"
NAVIGATORS = "ARRAY['ana', 'bill', 'chen', 'dee']"

LOAD = [
    # Calls, oldest first (ids grow with time, as the line writes them). b picks the outcome.
    f"""
    INSERT INTO calls (id, call_sid, caller, called, started_at, answered_at, ended_at,
                       duration_seconds, language, status, outcome, transferred_contact,
                       transferred_number, dial_outcome, last_node, flow_hash, path,
                       last_seen_at, updated_at, settled_at)
    SELECT {STAFF_CALLS} + 1 - g,
           'CA' || lpad(to_hex(g), 32, '0'),
           '+1804' || (2000000 + (g / 2) % 200000)::text,
           '+18045550100',
           at, at + interval '2 seconds', at + interval '95 seconds', 95,
           CASE WHEN (g / 2) % 5 = 0 THEN 'es' ELSE 'en' END,
           CASE WHEN b >= 97 THEN 'failed' ELSE 'completed' END,
           CASE WHEN b < 35 THEN 'reached' WHEN b < 47 THEN 'not-answered'
                WHEN b < 82 THEN 'listened' WHEN b < 97 THEN 'hung-up' ELSE 'failed' END,
           CASE WHEN b < 47 THEN ({CONTACTS})[1 + g % 4] END,
           CASE WHEN b < 47 THEN '+18048287999' END,
           CASE WHEN b < 35 THEN 'completed'
                WHEN b < 47 THEN (ARRAY['busy', 'no-answer', 'failed'])[1 + g % 3] END,
           CASE WHEN b < 47 THEN 'reach'
                WHEN b < 82 THEN (ARRAY['why', 'prepare', 'disagree', 'directories'])[1 + g % 4]
                ELSE 'main' END,
           'benchflowhash',
           CASE WHEN b < 47 THEN 'main>3>reach' WHEN b < 82 THEN 'main>1>why' ELSE 'main' END,
           at + interval '95 seconds', at + interval '95 seconds', at + interval '96 seconds'
    FROM generate_series({STAFF_CALLS}, 1, -1) AS g,
         LATERAL (SELECT now() - g * interval '30 seconds' AS at, (g * 37) % 100 AS b) AS pick
    """,
    """
    INSERT INTO call_events (call_id, at, kind, node, detail)
    SELECT c.id, c.started_at + e.n * interval '5 seconds', e.kind, e.node, e.detail
    FROM calls AS c
    CROSS JOIN LATERAL (VALUES
        (0, 'menu', 'main', NULL),
        (1, CASE WHEN c.outcome NOT IN ('hung-up', 'failed') THEN 'key' END, 'main',
            CASE WHEN c.transferred_contact IS NULL THEN '1' ELSE '3' END),
        (2, CASE WHEN c.outcome = 'listened' THEN 'key' END, 'why', (1 + c.id % 4)::text),
        (2, CASE WHEN c.transferred_contact IS NOT NULL THEN 'dial' END, 'reach',
            c.transferred_contact),
        (3, CASE WHEN c.transferred_contact IS NOT NULL THEN 'dial_result' END, 'reach',
            c.dial_outcome),
        (4, CASE WHEN c.outcome = 'not-answered' AND c.id % 3 = 0 THEN 'callback_request' END,
            'reach', c.transferred_contact)
    ) AS e (n, kind, node, detail)
    WHERE e.kind IS NOT NULL
    ORDER BY c.id, e.n
    """,
    # Texts: a conversation every 5 minutes, each texter one of the callers; four messages.
    f"""
    INSERT INTO conversations (id, phone, line, language, node, state, started_at,
                               last_activity_at, flow_hash)
    SELECT {CONVERSATIONS} + 1 - n,
           '+1804' || (2000000 + (n * 2) % 200000)::text,
           '+18045550100',
           CASE WHEN n % 5 = 1 THEN 'es' ELSE 'en' END,
           (ARRAY['main', 'why', 'reach', 'prepare'])[1 + n % 4],
           '{{}}',
           now() - n * interval '5 minutes',
           now() - n * interval '5 minutes' + interval '3 minutes',
           'benchflowhash'
    FROM generate_series({CONVERSATIONS}, 1, -1) AS n
    """,
    """
    INSERT INTO messages (message_sid, conversation_id, direction, phone, line, body, segments,
                          status, intent, created_at, updated_at)
    SELECT 'SM' || lpad(to_hex(c.id * 4 + k), 32, '0'), c.id,
           CASE WHEN k % 2 = 0 THEN 'in' ELSE 'out' END, c.phone, c.line,
           CASE k WHEN 0 THEN 'hi' WHEN 1 THEN 'Second Opinion Line: reply 1 to 4, or MENU.'
                  WHEN 2 THEN CASE WHEN c.id % 20 = 0 THEN 'can I talk to someone'
                                   WHEN c.id % 50 = 1 THEN 'whats the adress pls'
                                   ELSE '2' END
                  ELSE 'A navigator can help you prepare: call 804-828-7999.' END,
           1,
           CASE WHEN k % 2 = 0 THEN 'received' ELSE 'delivered' END,
           CASE WHEN k = 2 AND c.id % 20 = 0 THEN 'asked_for_person'
                WHEN k = 2 AND c.id % 50 = 1 THEN 'not_understood' END,
           c.started_at + k * interval '1 minute', c.started_at + k * interval '1 minute'
    FROM conversations AS c, generate_series(0, 3) AS k
    ORDER BY c.id, k
    """,
    """
    INSERT INTO opt_outs (phone, opted_out, keyword, changed_at)
    SELECT phone, id % 10 <> 0, CASE WHEN id % 10 <> 0 THEN 'STOP' ELSE 'START' END,
           last_activity_at + interval '1 minute'
    FROM conversations WHERE id % 20 = 7
    """,
    # The outbox: texts offered in calls, and a call-back for every call-back asked for
    # (its id the request's event id); 5 % of the call-backs failed.
    """
    INSERT INTO outbox (id, kind, to_number, from_number, body, status, attempts,
                        next_attempt_at, last_error, twilio_sid, created_at, sent_at)
    SELECT e.id, 'call', c.caller, '+18045550100', '<Response><Say>...</Say></Response>',
           CASE WHEN e.id % 20 = 0 THEN 'failed' ELSE 'sent' END, 1,
           e.at + interval '2 minutes',
           CASE WHEN e.id % 20 = 0 THEN 'no answer after 3 attempts' END,
           'CA' || lpad(to_hex(e.id), 32, 'f'), e.at + interval '1 minute',
           CASE WHEN e.id % 20 <> 0 THEN e.at + interval '2 minutes' END
    FROM call_events AS e JOIN calls AS c ON c.id = e.call_id
    WHERE e.kind = 'callback_request'
    ORDER BY e.id
    """,
    f"""
    INSERT INTO outbox (id, kind, to_number, from_number, body, status, attempts,
                        next_attempt_at, last_error, twilio_sid, created_at, sent_at)
    SELECT 10000000 + c.id, 'sms', c.caller, '+18045550100',
           'Second Opinion Line: what to bring to a second opinion visit ...',
           (ARRAY['sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent',
                  'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'suppressed',
                  'failed', 'refused'])[1 + c.id / 10 % 20],
           1, c.started_at + interval '61 seconds', NULL,
           'SM' || lpad(to_hex(c.id), 32, 'f'), c.started_at + interval '60 seconds',
           c.started_at + interval '61 seconds'
    FROM calls AS c WHERE c.id % {STAFF_CALLS // OUTBOX_TEXTS} = 0
    ORDER BY c.id
    """,
    # The worklist: an item for every transfer not answered (its id the call's). The latest of
    # a number's, in the last OPEN_FOR, is open unless the number reached a person after it.
    f"""
    WITH missed AS (
        SELECT c.id, c.caller, c.language, c.started_at,
               row_number() OVER (PARTITION BY c.caller ORDER BY c.started_at DESC) AS latest,
               EXISTS (SELECT FROM calls AS later
                       WHERE later.caller = c.caller AND later.outcome = 'reached'
                         AND later.started_at >= c.started_at) AS reached_later
        FROM calls AS c WHERE c.outcome = 'not-answered'
    ), shaped AS (
        SELECT *, latest = 1 AND NOT reached_later
                  AND started_at >= now() - interval '{OPEN_FOR}' AS open,
               least(started_at + (1 + id % 70) * interval '1 hour',
                     now() - interval '1 minute') AS closing
        FROM missed
    )
    INSERT INTO follow_ups (id, phone, open_phone, reason, language, opened_at,
                            first_attempt_at, last_attempt_at, claimed_by, claimed_at,
                            closed_at, closed_by, outcome)
    SELECT id, caller, CASE WHEN open THEN caller END, 'missed-transfer', language,
           started_at + interval '100 seconds', started_at, started_at,
           CASE WHEN id % 4 = 0 OR NOT open THEN ({NAVIGATORS})[1 + id % 4] END,
           CASE WHEN id % 4 = 0 OR NOT open
                THEN least(started_at + interval '30 minutes', now()) END,
           CASE WHEN NOT open THEN closing END,
           CASE WHEN NOT open AND reached_later THEN 'system'
                WHEN NOT open THEN ({NAVIGATORS})[1 + id % 4] END,
           CASE WHEN NOT open AND reached_later THEN 'reached-a-person'
                WHEN NOT open THEN (ARRAY['reached', 'reached', 'left-voicemail',
                                          'wrong-number', 'no-longer-needed'])[1 + id % 5] END
    FROM shaped
    ORDER BY id
    """,
    """
    INSERT INTO follow_up_sources (follow_up_id, kind, ref_id, call_id, reason, at)
    SELECT id, 'call', id, id, 'missed-transfer', first_attempt_at FROM follow_ups ORDER BY id
    """,
    """
    INSERT INTO follow_up_sources (follow_up_id, kind, ref_id, call_id, reason, at)
    SELECT e.call_id, 'call_event', e.id, e.call_id, 'call-back-asked', c.started_at
    FROM call_events AS e JOIN calls AS c ON c.id = e.call_id
    WHERE e.kind = 'callback_request'
    """,
    """
    INSERT INTO follow_up_sources (follow_up_id, kind, ref_id, call_id, reason, at)
    SELECT e.call_id, 'outbox', o.id, NULL, 'call-back-failed', o.created_at
    FROM outbox AS o JOIN call_events AS e ON e.id = o.id
    WHERE o.kind = 'call' AND o.status = 'failed'
    """,
    # Texts that asked for a person or were not understood: items of their own (ids from
    # 2,000,000 + the message's), open when recent and the number has no open item already.
    f"""
    INSERT INTO follow_ups (id, phone, open_phone, reason, language, opened_at,
                            first_attempt_at, last_attempt_at, claimed_by, claimed_at,
                            closed_at, closed_by, outcome)
    SELECT 2000000 + m.id, m.phone, CASE WHEN open THEN m.phone END,
           CASE m.intent WHEN 'asked_for_person' THEN 'text-asked-person'
                ELSE 'text-not-understood' END,
           c.language, m.created_at + interval '5 seconds', m.created_at, m.created_at,
           CASE WHEN NOT open THEN ({NAVIGATORS})[1 + m.id % 4] END,
           CASE WHEN NOT open THEN m.created_at + interval '30 minutes' END,
           CASE WHEN NOT open THEN least(m.created_at + (1 + m.id % 50) * interval '1 hour',
                                         now() - interval '1 minute') END,
           CASE WHEN NOT open THEN ({NAVIGATORS})[1 + m.id % 4] END,
           CASE WHEN NOT open THEN 'reached' END
    FROM messages AS m
    JOIN conversations AS c ON c.id = m.conversation_id
    CROSS JOIN LATERAL (
        SELECT m.created_at >= now() - interval '{OPEN_FOR}'
               AND NOT EXISTS (SELECT FROM follow_ups AS f WHERE f.open_phone = m.phone)
               AND NOT EXISTS (SELECT FROM calls AS later
                               WHERE later.caller = m.phone AND later.outcome = 'reached'
                                 AND later.started_at >= m.created_at) AS open
    ) AS state
    WHERE m.intent IN ('asked_for_person', 'not_understood')
    ORDER BY m.id
    """,
    """
    INSERT INTO follow_up_sources (follow_up_id, kind, ref_id, call_id, reason, at)
    SELECT id, 'message', id - 2000000, NULL, reason, first_attempt_at
    FROM follow_ups WHERE id > 2000000 ORDER BY id
    """,
    f"""
    INSERT INTO follow_up_notes (follow_up_id, at, author, text)
    SELECT f.id, coalesce(f.claimed_at, f.opened_at) + k * interval '10 minutes',
           ({NAVIGATORS})[1 + (f.id + k) % 4],
           (ARRAY['Left a voicemail with the clinic number.',
                  'Spoke to her daughter; she will call back after 3 pm.',
                  'Wants the Spanish-speaking navigator. Records from VCU requested.'])[1 + k]
    FROM follow_ups AS f, generate_series(0, 2) AS k
    WHERE (f.claimed_by IS NOT NULL AND f.closed_at IS NULL) OR (f.id % 3 = 0 AND k < 2)
    ORDER BY f.id, k
    """,
]
SEQUENCES = (
    "calls",
    "call_events",
    "conversations",
    "messages",
    "outbox",
    "follow_ups",
    "follow_up_sources",
    "follow_up_notes",
)
TABLES = (*SEQUENCES, "opt_outs")


def schema_url(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class KeptSchema:
    """A benchmark's data, loaded into a schema of its own and kept between runs."""

    name: str
    shape: int
    """Raise it whenever `load` changes: a kept schema of another shape is loaded again."""
    load: Callable[[Connection], None]
    """Fills the migrated, empty schema (in one transaction)."""
    sequences: tuple[str, ...]
    """Tables whose id sequence is set past the ids loaded."""
    tables: tuple[str, ...]
    """Tables analysed after the load, and counted for the report."""


def _load_million(connection: Connection) -> None:
    for statement in LOAD:
        connection.execute(text(statement))


MILLION = KeptSchema(STAFF_SCHEMA, SHAPE, _load_million, SEQUENCES, TABLES)
"""A million calls: the call list, the follow-ups and an item's page are timed on it."""


def _marker(connection: Connection, schema: str) -> dict[str, object]:
    comment = connection.execute(
        text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :s"),
        {"s": schema},
    ).scalar()
    try:
        found = json.loads(comment or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _outdated(marker: dict[str, object], shape: int) -> str | None:
    """Why the kept schema must be loaded again (None: it is current)."""
    if not marker:
        return "not loaded yet"
    if marker.get("shape") != shape:
        return f"its shape is {marker.get('shape')}, the loader's is {shape}"
    loaded = datetime.fromisoformat(str(marker.get("loaded_at")))
    if datetime.now(UTC) - loaded > MAX_AGE:
        return f"its data is from {loaded:%Y-%m-%d}"
    return None


def prepare_staff_schema(
    base: str, work: Path, kept: KeptSchema = MILLION
) -> tuple[str, float, dict[str, int]]:
    """The schema, loaded when outdated, and a staff admin; returns its URL, the seconds spent
    loading (0 when it was current) and the rows of each table."""
    schema = kept.name
    url = schema_url(base, schema)
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as connection:
        reason = _outdated(_marker(connection, schema), kept.shape)
        if reason:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    env = phoneline_env(url, work / f"var-{schema}")
    subprocess.run([PHONELINE, "db", "upgrade"], env=env, check=True, capture_output=True)
    loaded = 0.0
    engine = create_engine(url, poolclass=NullPool)
    if reason:
        print(f"  loading schema {schema} ({reason}); a few minutes...", flush=True)
        started = time.perf_counter()
        with engine.begin() as connection:
            kept.load(connection)
            for table in kept.sequences:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in kept.tables:
                connection.execute(text(f"VACUUM ANALYZE {table}"))
        marker = {"shape": kept.shape, "loaded_at": datetime.now(UTC).isoformat()}
        with admin.begin() as connection:
            connection.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{json.dumps(marker)}'"))
        loaded = time.perf_counter() - started
        print(f"  loaded in {loaded:.0f} s", flush=True)
    # The overview's rollup, as the server keeps it: days added since the last run, and the
    # whole year after a load (the server alone would add a month of days every few seconds).
    started = time.perf_counter()
    subprocess.run([PHONELINE, "staff", "rollup"], env=env, check=True, capture_output=True)
    print(f"  overview rollup: {time.perf_counter() - started:.1f} s", flush=True)
    with engine.connect() as connection:
        rows = {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in kept.tables
        }
        rows["follow_ups_open"] = int(
            connection.execute(
                text("SELECT count(*) FROM follow_ups WHERE open_phone IS NOT NULL")
            ).scalar_one()
        )
    engine.dispose()
    admin.dispose()
    add = subprocess.run(
        [PHONELINE, "staff", "add", STAFF_USER, "--role", "admin", "--password-stdin"],
        env=env,
        input=STAFF_PASSWORD + "\n",
        capture_output=True,
        text=True,
    )
    if add.returncode != 0 and "already" not in (add.stdout + add.stderr):
        raise RuntimeError(f"phoneline staff add failed: {add.stdout}{add.stderr}")
    return url, loaded, rows
