"""Outcomes benchmark: a year of an insurer's care work (100,000 alerts with their timelines, check-ins,
delivery attempts and consent history), then the outcomes report timed as the API runs it.

    .venv/bin/python bench/outcomes.py                     # 100,000 alerts, 30 runs per bucket size
    .venv/bin/python bench/outcomes.py --alerts 20000 --runs 10

It uses a fresh database on the local test cluster (BEIDOU_TEST_PG_PORT, default 55433) and drops it at the
end. Seeding is done in SQL (generate_series); the report runs as the service role inside a tenant-scoped
transaction, exactly the code behind GET /v1/care/outcomes. Prints p50/p99 per bucket size (day, week,
month) over the whole year, and beside them a plain count(*) of the same alerts timed alike (how busy the
machine was). BENCH_EXPLAIN=1 also times each query once on its own; --keep keeps the database.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, migration_statement, server  # noqa: E402

SEED = """
INSERT INTO tenants (id, name, time_zone) VALUES (%(tenant)s, 'Bench Insurance', 'Asia/Shanghai');
INSERT INTO people (tenant_id, external_id)
  SELECT %(tenant)s, 'p' || g FROM generate_series(0, %(people)s - 1) g;
INSERT INTO staff (tenant_id, external_id, role)
  SELECT %(tenant)s, 'agent-' || g, 'care_agent' FROM generate_series(0, 19) g;
CREATE TEMP TABLE ids AS
  SELECT row_number() OVER (ORDER BY external_id) - 1 AS n, id FROM people WHERE tenant_id = %(tenant)s;
CREATE TEMP TABLE agents AS
  SELECT row_number() OVER (ORDER BY external_id) - 1 AS n, id, external_id FROM staff WHERE tenant_id = %(tenant)s;
-- Two consent grants per person early in the year, a withdrawal for one in ten later.
INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, created_at)
  SELECT %(tenant)s, i.id, t, 'monitoring', 'grant', %(start)s::timestamptz + (i.n %% 60) * interval '1 day'
    FROM ids i CROSS JOIN unnest(ARRAY['heart_rate', 'spo2']) t;
INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, created_at)
  SELECT %(tenant)s, i.id, 'heart_rate', 'monitoring', 'withdraw', %(start)s::timestamptz + interval '200 days'
         + (i.n %% 100) * interval '1 day' FROM ids i WHERE i.n %% 10 = 0;
CREATE TEMP TABLE seeded AS
  SELECT g AS n, gen_random_uuid() AS id, i.id AS person_id,
         (ARRAY['overnight_rhr', 'daily_steps', 'spo2_low', 'hrv_drop', 'sleep_short', 'resting_hr'])
           [1 + (g / %(people)s) %% 6] AS feature,
         (ARRAY['low', 'high', 'critical'])[1 + g %% 3] AS severity,
         %(start)s::timestamptz + (g::float / %(alerts)s) * interval '365 days' AS opened_at,
         a.id AS agent_id, a.external_id AS agent
    FROM generate_series(0, %(alerts)s - 1) g
    JOIN ids i ON i.n = g %% %(people)s JOIN agents a ON a.n = g %% 20;
INSERT INTO alerts (id, tenant_id, person_id, kind, feature, metric, tier, severity, severity_rank, status, summary,
                    episode_start, episode_end, opened_at, assignee_id, claimed_at, resolved_at, resolution, policy)
  SELECT s.id, %(tenant)s, s.person_id, 'health', s.feature, 'heart_rate', 'alert', s.severity, 2,
         CASE WHEN s.n >= %(alerts)s - %(people)s THEN 'open' ELSE 'resolved' END, 'bench', s.opened_at, s.opened_at,
         s.opened_at, CASE WHEN s.n %% 5 <> 0 THEN s.agent_id END,
         CASE WHEN s.n %% 5 <> 0 THEN s.opened_at + (5 + s.n %% 40) * interval '1 minute' END,
         CASE WHEN s.n < %(alerts)s - %(people)s THEN s.opened_at + (1 + s.n %% 30) * interval '1 hour' END,
         CASE WHEN s.n >= %(alerts)s - %(people)s THEN NULL
              ELSE (ARRAY['needed_help', 'false_alarm', 'member_fine', 'no_response'])[1 + s.n %% 4] END,
         '{"steps": []}'
    FROM seeded s;
-- Row by row, the timeline (and delivery) triggers would update each alert (notification) once per row; a
-- year at once is loaded with triggers off and the summaries then filled by migration 0011's own backfill
-- (BACKFILL, run after this seed).
SET LOCAL session_replication_role = replica;
INSERT INTO alert_timeline (alert_id, tenant_id, person_id, at, actor_kind, actor_id, action, detail)
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at, 'system', 'detector', 'opened', '{}'::jsonb FROM seeded s
  UNION ALL
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at + (5 + s.n %% 40) * interval '1 minute', 'staff', s.agent, 'claim',
         '{}' FROM seeded s WHERE s.n %% 5 <> 0
  UNION ALL
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at + (10 + s.n %% 50) * interval '1 minute', 'staff', s.agent,
         'reach_out', '{}' FROM seeded s WHERE s.n %% 2 = 0
  UNION ALL
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at + (30 + s.n %% 90) * interval '1 minute', 'person', 'p',
         'person_replied', jsonb_build_object('answer', (ARRAY['fine', 'help', 'call'])[1 + s.n %% 3])
    FROM seeded s WHERE s.n %% 4 = 0
  UNION ALL
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at + interval '30 minutes', 'system', 'escalation', 'escalated', '{}'
    FROM seeded s WHERE s.n %% 5 = 0
  UNION ALL
  SELECT s.id, %(tenant)s, s.person_id, s.opened_at + (1 + s.n %% 30) * interval '1 hour', 'staff', s.agent, 'resolve',
         '{}' FROM seeded s WHERE s.n < %(alerts)s - %(people)s;
SET LOCAL session_replication_role = origin;
INSERT INTO devices (tenant_id, person_id, provider, token, platform)
  SELECT %(tenant)s, i.id, CASE WHEN i.n %% 3 = 0 THEN 'gateway' ELSE 'fcm' END, 'tok-' || i.n, 'android' FROM ids i;
CREATE TEMP TABLE checkins AS
  SELECT gen_random_uuid() AS nid, s.* FROM seeded s WHERE s.n %% 2 = 0;
INSERT INTO notifications (id, tenant_id, recipient_kind, person_id, alert_id, purpose, status, created_at, opened_at,
                           answered_at, answer, attempts)
  SELECT c.nid, %(tenant)s, 'person', c.person_id, c.id, 'check_in',
         CASE WHEN c.n %% 4 = 0 THEN 'answered' WHEN c.n %% 50 = 2 THEN 'failed' ELSE 'sent' END,
         c.opened_at + interval '10 minutes', CASE WHEN c.n %% 4 = 0 THEN c.opened_at + interval '20 minutes' END,
         CASE WHEN c.n %% 4 = 0 THEN c.opened_at + interval '30 minutes' END,
         CASE WHEN c.n %% 4 = 0 THEN 'fine' END, 1
    FROM checkins c;
SET LOCAL session_replication_role = replica;
INSERT INTO notification_deliveries (notification_id, device_id, tenant_id, person_id, attempt, ok, at, provider)
  SELECT c.nid, d.id, %(tenant)s, c.person_id, 1, c.n %% 50 <> 2, c.opened_at + interval '11 minutes', d.provider
    FROM checkins c JOIN devices d ON d.person_id = c.person_id;
SET LOCAL session_replication_role = origin;
"""
# What the timeline and delivery triggers keep on alerts and notifications, filled from the rows seeded above.
BACKFILL = [migration_statement("0011_outcomes_webhooks.sql", opening)
            for opening in ("UPDATE alerts a SET first_contact_at", "UPDATE notifications n SET attempted")]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed_reports(app_url: str, tenant: uuid.UUID, first: date, end: date, runs: int) -> dict[str, list[float]]:
    from alerts import outcomes
    from app.core.db import Database
    db = Database(app_url, min_size=1, max_size=2, application_name="beidou-bench")
    await db.open(wait=True)
    times: dict[str, list[float]] = {}
    try:
        for bucket in ("day", "week", "month"):
            for i in range(runs + 2):
                async with db.transaction(tenant_id=tenant) as conn:
                    # How busy the machine is right now: a plain count of the same alerts, timed alike.
                    t0 = time.perf_counter()
                    await conn.execute("SELECT count(*) FROM alerts WHERE tenant_id = %s", (tenant,))
                    baseline = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                async with db.transaction(tenant_id=tenant) as conn:
                    report = await outcomes.report(conn, tenant_id=tenant, first_day=first, end_day=end, bucket=bucket,
                                                   db=db)
                if i >= 2:  # two warm-up runs
                    times.setdefault(bucket, []).append((time.perf_counter() - t0) * 1000)
                    times.setdefault("count(*)", []).append(baseline)
            print(f"  {bucket:5}: {len(report['series'])} buckets, {report['funnel']['opened']} alerts, "
                  f"reach rate {report['funnel']['reach_rate']}", flush=True)
    finally:
        await db.close()
    return times


async def explain(app_url: str, tenant: uuid.UUID, first: date, end: date) -> None:
    """Each query's time on its own (BENCH_EXPLAIN=1)."""
    from datetime import datetime, timezone
    from alerts import outcomes_repository as repo
    from app.core.db import Database
    db = Database(app_url, min_size=1, max_size=1)
    await db.open(wait=True)
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc)
    stop = datetime.combine(end, datetime.min.time(), tzinfo=timezone.utc)
    args = {"tenant_id": tenant, "start": start, "end": stop, "bucket": "week", "tz": "Asia/Shanghai"}
    for name, call in (("counts", lambda c: repo.counts(c, **args)), ("times", lambda c: repo.times(c, **args)),
                       ("monitored", lambda c: repo.monitored_changes(c, **args)),
                       ("consents", lambda c: repo.consent_changes(c, **args)),
                       ("pushes", lambda c: repo.pushes(c, tenant_id=tenant, start=start, end=stop))):
        async with db.transaction(tenant_id=tenant) as conn:
            await repo.prepare(conn)
            t0 = time.perf_counter()
            await call(conn)
            print(f"  {name:10} {(time.perf_counter() - t0) * 1000:7.1f} ms")
        if os.environ.get("BENCH_EXPLAIN") == "plan" and name in ("counts", "times"):
            query = repo._COUNTS if name == "counts" else repo._TIMES
            if query:
                async with db.transaction(tenant_id=tenant) as conn:
                    cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query,
                                             {"tenant": tenant, "start": start, "end": stop, "bucket": "week",
                                              "tz": "Asia/Shanghai"})
                    print("\n".join(r[0] for r in await cur.fetchall()))
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    admin, _ = server(local=True)
    db = fresh_database(admin, "beidou_bench")
    try:
        tenant = uuid.uuid4()
        first = date(2025, 12, 1)
        end = first + timedelta(days=365)
        t0 = time.perf_counter()
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            params = {"tenant": tenant, "people": args.people, "alerts": args.alerts,
                      "start": first.isoformat() + "T00:00:00+08:00"}
            with conn.transaction():
                for statement in SEED.split(";\n"):
                    if statement.strip():
                        conn.cursor().execute(statement, params, prepare=False)
                for statement in BACKFILL:
                    conn.execute(statement)
            conn.execute("VACUUM ANALYZE")
            rows = conn.execute("SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alert_timeline), "
                                "(SELECT count(*) FROM notifications), (SELECT count(*) FROM consent_events)").fetchone()
        print(f"seeded {rows[0]:,} alerts, {rows[1]:,} timeline rows, {rows[2]:,} check-ins, {rows[3]:,} consent "
              f"events in {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"tenant {tenant}", flush=True)
        if os.environ.get("BENCH_EXPLAIN"):
            asyncio.run(explain(db.app_url, tenant, first, end))
        times = asyncio.run(timed_reports(db.app_url, tenant, first, end, args.runs))
        print(f"outcomes report over a year ({args.runs} runs each, ms):")
        for bucket, values in times.items():
            print(f"  {bucket:8}  p50 {pct(values, 0.5):7.1f}  p99 {pct(values, 0.99):7.1f}  max {max(values):7.1f}")
    finally:
        if args.keep:
            print(f"kept database {db.name}: {db.admin_url}")
        else:
            db.drop()


if __name__ == "__main__":
    main()
