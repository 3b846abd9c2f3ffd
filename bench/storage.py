"""Storage benchmark: what a reading costs hot, what a person-year costs packed, and how fast charts read both.

    .venv/bin/python bench/storage.py                                  # small: 20 synthetic people (a minute)
    .venv/bin/python bench/storage.py --people 10000 --dev-days 365    # the full-size figure (tens of minutes)

On a fresh database of the local test cluster (BEIDOU_TEST_PG_PORT, or BEIDOU_TEST_ADMIN_URL's server):
1. loads a development person's real Fitbit history (heart rate every 5–60 s, steps per minute) from
   ../shared/data/wearables-covid-dev, repeated back in time to cover ``--dev-days`` days ending now;
2. prints bytes per reading in the hot table (table + index, after VACUUM);
3. packs everything past the hot window (30 days) exactly as the scheduler does, and prints the packed bytes
   per person-year (table + TOAST + index) for that person;
4. loads ``--people`` synthetic people × ``--days`` days ending now at a reduced rate — heart rate every
   ``--interval-s`` seconds (default every 30 minutes) from a watch, steps every ``--steps-interval-s`` seconds
   (default hourly) from 07 to 22 h UTC from a phone; 63 readings a person-day by default, a day per statement,
   each person's day together — and prints the load time and their hot bytes per reading; packs the days past
   the hot window (60 of the default 90) as the scheduler does and prints the packing throughput (readings and
   person-days a second) and their packed bytes per person-year;
5. compacts the hot window's closed days' indexes as the scheduler does (``streaming.history``), printing the
   hot window's bytes per reading before and after;
6. rolls up closed hours for charts as the scheduler does (``streaming.rollup``) and prints the roll-up's bytes
   per person-year: for the synthetic people on a subset of ``--rollup-people`` (a tenant of their own; the
   roll-up of 10,000 people would take longer than everything else), then for the dev person;
7. times the care chart's query (``alerts.repository.reading_series``) for the dev person over 1 day,
   30 days and 1 year: p50 and p99 of ``--repeat`` runs.
The database is dropped at the end unless ``--keep``.
"""
from __future__ import annotations

import asyncio
import csv
import gzip
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import command_line, fresh_database, pct, server  # noqa: E402

# ../shared/data beside the checkout (or one folder further up)
DATA = next((d for d in (ROOT.parent / "shared" / "data" / "wearables-covid-dev",
                         ROOT.parent.parent / "shared" / "data" / "wearables-covid-dev") if d.exists()),
            ROOT.parent / "shared" / "data" / "wearables-covid-dev")
HOT_DAYS = 30


def load_dev(folder: Path, participant: str) -> tuple[list[tuple[float, str, float]], int]:
    """(seconds since the first day's midnight, metric, value) of the participant's history, and its days."""
    rows: list[tuple[float, str, float]] = []
    first: datetime | None = None
    for metric, column, name in (("heart_rate", "bpm", "hr"), ("steps", "steps", "steps")):
        with gzip.open(folder / f"{participant}_{name}.csv.gz", "rt") as fh:
            for row in csv.DictReader(fh):
                at = datetime.fromisoformat(row["time"])
                if first is None:
                    first = at.replace(hour=0, minute=0, second=0)
                value = float(row[column])
                if metric == "steps" and value == 0:
                    continue  # phones send no zero-step minutes
                rows.append(((at - first).total_seconds(), metric, value))
    days = int(max(r[0] for r in rows) // 86400) + 1
    return rows, days


def copy_dev(conn: psycopg.Connection, tenant_id, person_id, rows, real_days: int, cover_days: int,
             end: datetime) -> int:
    """The real days repeated back in time until ``cover_days`` days ending at ``end`` are covered."""
    start = end - timedelta(days=cover_days)
    n = 0
    # Straight into the lean hot table (migration 0017), with the person's, tenant's, type's and source's numbers.
    conn.execute("INSERT INTO sources (tenant_id, person_id, source) VALUES (%s, %s, 'fitbit')", (tenant_id, person_id))
    person_no, tenant_no, source_no = conn.execute(
        """SELECT p.person_no, t.tenant_no, s.source_no FROM people p JOIN tenants t ON t.id = p.tenant_id
             JOIN sources s ON s.person_id = p.id AND s.source = 'fitbit' WHERE p.id = %s""", (person_id,)).fetchone()
    code = dict(conn.execute("SELECT name, code FROM data_types").fetchall())
    with conn.cursor().copy("COPY readings_hot (time, tenant_no, person_no, metric_no, value, source_no, "
                            "utc_offset_min) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["timestamptz", "int2", "int4", "int2", "float4", "int2", "int2"])
        for k in range(0, cover_days, real_days):
            base = start + timedelta(days=k)
            for seconds, metric, value in rows:
                at = base + timedelta(seconds=seconds)
                if at >= end or seconds >= (cover_days - k) * 86400:
                    continue
                copy.write_row((at, tenant_no, person_no, code[metric], value, source_no, 0))
                n += 1
    return n


def hot_bytes_per_reading(conn: psycopg.Connection) -> tuple[float, int]:
    conn.execute("VACUUM ANALYZE readings_hot, readings_hot_extra")
    rows = conn.execute("SELECT count(*) FROM readings_hot").fetchone()[0]
    size = conn.execute("SELECT coalesce(hypertable_size('readings_hot'), 0) "
                        "+ pg_total_relation_size('readings_hot_extra')").fetchone()[0]
    return size / max(rows, 1), rows


def packed_bytes(conn: psycopg.Connection) -> int:
    conn.execute("VACUUM ANALYZE readings_packed")
    return conn.execute("SELECT pg_total_relation_size('readings_packed')").fetchone()[0]


def pack(app_url: str) -> tuple[int, float]:
    from app.core.db import Database
    from streaming import history

    async def run():
        db = Database(app_url, min_size=1, max_size=2, statement_timeout_ms=0)
        await db.open()
        try:
            started = time.perf_counter()
            result = await history.pack_history(db, hot_days=HOT_DAYS, max_chunks=100_000)
            return result.readings, time.perf_counter() - started
        finally:
            await db.close()
    return asyncio.run(run())


def compact(admin_url: str):
    """The scheduler's compaction of closed hot days' indexes (``streaming.history.compact_hot_indexes``)."""
    from streaming import history
    started = time.perf_counter()
    result = asyncio.run(history.compact_hot_indexes(admin_url, hot_days=HOT_DAYS))
    return result, time.perf_counter() - started


def roll_up(app_url: str, tenant_id) -> tuple[int, float]:
    """The scheduler's roll-up job (closed hours, back to the oldest packed day) for the whole tenant."""
    from app.core.db import Database
    from streaming import rollup

    async def run():
        db = Database(app_url, min_size=1, max_size=2, statement_timeout_ms=0)
        await db.open()
        try:
            started = time.perf_counter()
            result = await rollup.roll_up(db, [tenant_id], hot_days=HOT_DAYS, max_days=100_000)
            return result.rows, time.perf_counter() - started
        finally:
            await db.close()
    return asyncio.run(run())


def chart_latency(app_url: str, tenant_id, person_id, end: datetime, repeat: int) -> dict[str, tuple[float, float]]:
    from alerts import repository as repo

    async def run():
        out = {}
        async with await psycopg.AsyncConnection.connect(app_url, autocommit=True) as conn:
            await conn.execute("SELECT set_config('beidou.tenant_id', %s, false)", (str(tenant_id),))
            for label, days, bucket in (("1 day", 1, "5 minutes"), ("30 days", 30, "1 hour"),
                                        ("1 year", 365, "1 day")):
                times = []
                for metric in ["heart_rate", "steps"] * repeat:
                    started = time.perf_counter()
                    await repo.reading_series(conn, person_id=person_id, metric=metric, bucket=bucket,
                                              start=end - timedelta(days=days), end=end)
                    times.append((time.perf_counter() - started) * 1000)
                out[label] = (pct(times, 0.5), pct(times, 0.99))
        return out
    return asyncio.run(run())


def load_synthetic(conn: psycopg.Connection, tenants: list, start: datetime, days: int, hr_s: int,
                   steps_s: int) -> int:
    """The synthetic people's readings, a day per statement, person by person (each person's day arrives
    together, as a phone's sync of it would): heart rate every ``hr_s`` seconds from the watch, steps every
    ``steps_s`` seconds between 07:00 and 22:00 UTC from the phone. Straight into the lean hot table."""
    n = 0
    for k in range(days):
        day = start + timedelta(days=k)
        cur = conn.execute(
            """INSERT INTO readings_hot (time, tenant_no, person_no, metric_no, value, source_no, utc_offset_min)
               SELECT r.time, t.tenant_no, p.person_no, r.metric_no, r.value, r.source_no, 480
                 FROM tenants t JOIN people p ON p.tenant_id = t.id
                CROSS JOIN LATERAL (
                  SELECT s AS time, (SELECT code FROM data_types WHERE name = 'heart_rate') AS metric_no,
                         55 + (extract(epoch FROM s)::bigint / %(hr)s + p.person_no) %% 37 AS value, 1 AS source_no
                    FROM generate_series(%(day)s, %(day)s + interval '1 day' - interval '1 microsecond',
                                         make_interval(secs => %(hr)s)) s
                  UNION ALL
                  SELECT s, (SELECT code FROM data_types WHERE name = 'steps'),
                         (extract(epoch FROM s)::bigint / 60 + p.person_no) %% 900, 2
                    FROM generate_series(%(day)s, %(day)s + interval '1 day' - interval '1 microsecond',
                                         make_interval(secs => %(steps)s)) s
                   WHERE extract(hour FROM s AT TIME ZONE 'UTC') BETWEEN 7 AND 21) r
                WHERE t.id = ANY(%(tenants)s)""",
            {"hr": hr_s, "steps": steps_s, "day": day, "tenants": tenants})
        n += cur.rowcount
    return n


def synthetic(db, args, end: datetime) -> None:
    """Step 4 (and the synthetic half of 6): load, pack and roll up ``--people`` synthetic people."""
    began = time.perf_counter()
    subset = min(args.people, args.rollup_people)
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        # The first ``subset`` people are a tenant of their own: the roll-up runs per tenant, so it can be
        # measured on them alone when rolling up everyone would take too long.
        tenants = []
        for name, count in (("synthetic roll-up subset", subset), ("synthetic", args.people - subset)):
            if not count:
                continue
            tid = conn.execute("INSERT INTO tenants (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]
            conn.execute(
                """WITH p AS (INSERT INTO people (tenant_id, external_id)
                              SELECT %s, 'syn-' || i FROM generate_series(1, %s) i RETURNING id)
                   INSERT INTO sources (tenant_id, person_id, source, source_no)
                   SELECT %s, p.id, src, no FROM p, (VALUES ('watch', 1), ('phone', 2)) v(src, no)""",
                (tid, count, tid))
            tenants.append(tid)
        hot_before = conn.execute("SELECT coalesce(hypertable_size('readings_hot'), 0)").fetchone()[0]
        started = time.perf_counter()
        loaded = load_synthetic(conn, tenants, end - timedelta(days=args.days), args.days, args.interval_s,
                                args.steps_interval_s)
        seconds = time.perf_counter() - started
        conn.execute("ANALYZE readings_hot")
        hot = conn.execute("SELECT hypertable_size('readings_hot')").fetchone()[0] - hot_before
        print(f"synthetic: {args.people:,} people x {args.days} days (heart rate every {args.interval_s} s, steps "
              f"every {args.steps_interval_s} s from 07 to 22 h), {loaded:,} readings loaded in {seconds:.1f} s "
              f"({loaded / max(seconds, 1e-9):,.0f}/s); hot: {hot / max(loaded, 1):,.0f} bytes per reading "
              f"(table + index)")
        before = packed_bytes(conn)
    packed_n, seconds = pack(db.app_url)
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        grown = packed_bytes(conn) - before
        person_days = conn.execute("SELECT count(*) FROM (SELECT DISTINCT person_id, day FROM readings_packed "
                                   "WHERE tenant_id = ANY(%s)) d", (tenants,)).fetchone()[0]
    print(f"packed: {packed_n:,} readings, {person_days:,} person-days in {seconds:.1f} s "
          f"({packed_n / max(seconds, 1e-9):,.0f} readings/s, {person_days / max(seconds, 1e-9):,.0f} person-days/s); "
          f"{grown / max(person_days, 1) * 365 / 1e6:.3f} MB per person-year (synthetic, table + TOAST + index)")

    if not subset:
        print(f"synthetic part: {time.perf_counter() - began:.0f} s in all")
        return
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        hourly_before = conn.execute("SELECT pg_total_relation_size('readings_hourly')").fetchone()[0]
    rolled, seconds = roll_up(db.app_url, tenants[0])
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings_hourly")
        size = conn.execute("SELECT pg_total_relation_size('readings_hourly')").fetchone()[0] - hourly_before
        person_days = conn.execute("SELECT count(*) FROM (SELECT DISTINCT person_id, day FROM readings_hourly "
                                   "WHERE tenant_id = %s) d", (tenants[0],)).fetchone()[0]
    who = ("all the synthetic people" if subset == args.people
           else f"a subset: {subset:,} of the {args.people:,} synthetic people")
    print(f"roll-up: {rolled:,} day rows in {seconds:.1f} s for {who}; "
          f"{size / max(person_days, 1) * 365 / 1e6:.3f} MB per person-year (table + index)")
    print(f"synthetic part: {time.perf_counter() - began:.0f} s in all (load, pack, roll-up)")


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the development data set")
    parser.add_argument("--participant", default="A36HR6Y", help="whose history (the densest by default)")
    parser.add_argument("--dev-days", type=int, default=120, help="days of the dev person's history (real days, "
                        "repeated back in time)")
    parser.add_argument("--people", type=int, default=20, help="synthetic people")
    parser.add_argument("--days", type=int, default=90, help="days per synthetic person")
    parser.add_argument("--interval-s", type=int, default=1800, help="synthetic heart rate: one reading every N s "
                        "(default: every 30 minutes, a reduced rate)")
    parser.add_argument("--steps-interval-s", type=int, default=3600, help="synthetic steps: one reading every N s "
                        "from 07 to 22 h (default: hourly)")
    parser.add_argument("--rollup-people", type=int, default=50, help="synthetic people the roll-up is measured on "
                        "(a tenant of their own)")
    parser.add_argument("--repeat", type=int, default=25, help="chart queries per window and data type")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    admin, _ = server()
    db = fresh_database(admin, "beidou_storage")
    try:
        end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            tenant_id = conn.execute("INSERT INTO tenants (name) VALUES ('bench') RETURNING id").fetchone()[0]
            dev = conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, 'dev') RETURNING id",
                               (tenant_id,)).fetchone()[0]
            rows, real_days = load_dev(args.data, args.participant)
            started = time.perf_counter()
            n = copy_dev(conn, tenant_id, dev, rows, real_days, args.dev_days, end)
            print(f"dev person {args.participant}: {real_days} real days, {len(rows) / real_days:,.0f} readings/day; "
                  f"loaded {n:,} readings over {args.dev_days} days in {time.perf_counter() - started:.1f} s")
            per_reading, hot_rows = hot_bytes_per_reading(conn)
            print(f"hot:    {per_reading:,.0f} bytes per reading (table + index), {hot_rows:,} readings")

        packed_n, seconds = pack(db.app_url)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            size = packed_bytes(conn)
            days = conn.execute("SELECT count(DISTINCT day) FROM readings_packed").fetchone()[0]
            rowwise = conn.execute("SELECT coalesce(sum(pg_column_size(p.*)), 0) FROM readings_packed p").fetchone()[0]
            rows_n = conn.execute("SELECT count(*) FROM readings_packed").fetchone()[0]
        print(f"packed: {packed_n:,} readings in {seconds:.1f} s ({packed_n / max(seconds, 1e-9):,.0f}/s) into "
              f"{rows_n:,} rows; {size / max(days, 1) * 365 / 1e6:.2f} MB per person-year "
              f"(dev person, {days} days packed, table + TOAST + index; target <= 5 MB); the rows alone "
              f"{rowwise / max(days, 1) * 365 / 1e6:.2f} MB (what a long history tends to: fixed pages amortised)")

        if args.people:
            synthetic(db, args, end)

        # The scheduler's compaction of closed days' indexes, on the hot window packing left (as the owner).
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            loose, window_rows = hot_bytes_per_reading(conn)
        compacted, seconds = compact(db.admin_url)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            tight, _ = hot_bytes_per_reading(conn)
        print(f"hot window: {window_rows:,} readings of the last {HOT_DAYS} days (dev person and synthetic people): "
              f"{loose:,.0f} bytes per reading; {tight:,.0f} after compacting {compacted.indexes} closed days' "
              f"indexes in {seconds:.1f} s (table + index; target <= 120)")

        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            before = conn.execute("SELECT pg_total_relation_size('readings_hourly')").fetchone()[0]
        rolled, seconds = roll_up(db.app_url, tenant_id)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE readings_hourly")
            size = conn.execute("SELECT pg_total_relation_size('readings_hourly')").fetchone()[0] - before
        per_year = size / args.dev_days * 365
        print(f"roll-up: {rolled:,} day rows (24 hourly slots each) in {seconds:.1f} s; {per_year / 1e6:.2f} MB "
              f"per person-year (dev person, table + index)")
        for label, (p50, p99) in chart_latency(db.app_url, tenant_id, dev, end, args.repeat).items():
            print(f"chart {label:>8}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (target p99 < 100 ms)")
    finally:
        if not args.keep:
            db.drop()
        else:
            print(f"kept database {db.name}")


if __name__ == "__main__":
    main()
