"""The chart roll-up: hourly rows give the care chart the answer the raw tiers give, and nothing a writer
changes later (a late reading, a record's replacement or deletion, a repacked day, erasure) ever shows stale."""
from __future__ import annotations

import asyncio
import csv
import gzip
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from alerts import repository as alerts_repo
from app.core.db import Database
from streaming import history, rollup
from streaming.records.repository import SPAN_AGGREGATES, STEPS_SPAN
from tests.support import ROOT

DATA = next((d for d in (ROOT.parent / "shared" / "data" / "wearables-covid-dev",
                         ROOT.parent.parent / "shared" / "data" / "wearables-covid-dev")
             if (d / "labels.csv").exists()), ROOT.parent / "shared" / "data" / "wearables-covid-dev")
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
NOW = datetime.now(timezone.utc)
TODAY = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
METRICS = ("heart_rate", "steps", "blood_pressure")

# The charts' query before the roll-up: every reading and packed minute of the window, bucketed.
_RAW = {"steps": f"SELECT time_bucket(%s::interval, time) AS t, {SPAN_AGGREGATES} FROM {STEPS_SPAN} "
                 "GROUP BY t ORDER BY t",
        "other": f"SELECT time_bucket(%s::interval, time) AS t, {SPAN_AGGREGATES} "
                 "FROM beidou_readings_span(%s, ARRAY[%s], %s, %s) GROUP BY t ORDER BY t"}


def _real_days(days: int) -> list[list[tuple[float, str, float]]]:
    """The first ``days`` days of a real person's raw history (heart rate every few seconds, steps per minute):
    per day, (seconds since midnight, metric, value)."""
    if not (DATA / "labels.csv").exists():
        pytest.fail(f"the development data set is missing: {DATA}")
    out: list[list[tuple[float, str, float]]] = [[] for _ in range(days)]
    first = None
    for metric, name, column in (("heart_rate", "hr", "bpm"), ("steps", "steps", "steps")):
        with gzip.open(DATA / f"A36HR6Y_{name}.csv.gz", "rt") as fh:
            for row in csv.DictReader(fh):
                at = datetime.fromisoformat(row["time"])
                first = first or at.replace(hour=0, minute=0, second=0)
                day, seconds = divmod((at - first).total_seconds(), 86400)
                if day < days and float(row[column]) > 0:
                    out[int(day)].append((seconds, metric, float(row[column])))
    return out


def _person(service, tenant, external: str):
    client = tenant.client(tenant.person_token(external))
    for data_type in METRICS:
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    with service.admin_conn() as conn:
        pid = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                           (tenant.id, external)).fetchone()[0]
    return client, pid


def _load(service, tenant, pid, days: list[datetime]) -> None:
    """Real days of heart rate and watch steps at ``days`` (up to now), a phone's steps every 10 minutes beside
    them, and a blood pressure with its diastolic every 5 hours."""
    real = _real_days(len(days))
    with service.admin_conn() as conn, conn.cursor() as cur:
        with cur.copy("COPY readings (time, tenant_id, person_id, metric, value, source, utc_offset_min) "
                      "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "uuid", "uuid", "text", "float8", "text", "int2"])
            for start, rows in zip(days, real):
                for seconds, metric, value in rows:
                    if start + timedelta(seconds=seconds) < NOW:
                        copy.write_row((start + timedelta(seconds=seconds), tenant.id, pid, metric, value, "watch",
                                        480))
        for start in days:
            cur.execute(
                """INSERT INTO readings (time, tenant_id, person_id, metric, value, value2, source, utc_offset_min)
                   SELECT %(s)s + make_interval(mins => 10 * i), %(t)s, %(p)s, 'steps', 20 + i %% 7, NULL, 'phone', 480
                     FROM generate_series(0, 143) i WHERE %(s)s + make_interval(mins => 10 * i) < now()
                   UNION ALL
                   SELECT %(s)s + make_interval(hours => 5 * i, secs => 17), %(t)s, %(p)s, 'blood_pressure',
                          110 + i, 70 + i, 'cuff', 480
                     FROM generate_series(0, 4) i WHERE %(s)s + make_interval(hours => 5 * i, secs => 17) < now()""",
                {"s": start, "t": tenant.id, "p": pid})


async def _with_db(service, job):
    db = Database(service.db.app_url, min_size=1, max_size=2)
    await db.open()
    try:
        return await job(db)
    finally:
        await db.close()


def _roll(service, tenant, max_days: int = 400, grace: timedelta = timedelta(0)) -> rollup.RollupResult:
    return asyncio.run(_with_db(service, lambda db: rollup.roll_up(
        db, [tenant.id], hot_days=30, grace=grace, max_days=max_days)))


def _pack(service) -> None:
    asyncio.run(_with_db(service, lambda db: history.pack_history(db, hot_days=30, max_chunks=400)))


def _series(service, tenant, pid, cases) -> tuple[dict, dict]:
    """Per (metric, bucket, from, to): the chart's answer and the raw tiers' answer."""
    async def run(db):
        chart, raw = {}, {}
        async with db.transaction(tenant_id=tenant.id) as conn:
            for metric, bucket, start, end in cases:
                key = (metric, bucket, start, end)
                chart[key] = await alerts_repo.reading_series(conn, person_id=pid, metric=metric, bucket=bucket,
                                                              start=start, end=end)
                args = (bucket, pid, start, end) if metric == "steps" else (bucket, pid, metric, start, end)
                cur = await conn.execute(_RAW["steps" if metric == "steps" else "other"], args)
                raw[key] = await cur.fetchall()
        return chart, raw
    return asyncio.run(_with_db(service, run))


def _same(chart: dict, raw: dict) -> None:
    for key in raw:
        assert len(chart[key]) == len(raw[key]), key
        for (t, avg, lo, hi, n), (t2, avg2, lo2, hi2, n2) in zip(chart[key], raw[key]):
            assert (t, lo, hi, n) == (t2, lo2, hi2, n2), key
            assert avg == pytest.approx(avg2, rel=1e-12), key


def _chart(supervisor, external: str, metric: str, start: datetime, end: datetime, bucket: str = "1h"):
    answer = supervisor.get(f"/v1/care/people/{external}/readings",
                            params={"metric": metric, "from": start.isoformat(), "to": end.isoformat(),
                                    "bucket": bucket})
    assert answer.status_code == 200, answer.text
    return {p["time"]: (p["count"], p["min"], p["max"]) for p in answer.json()["points"]}


def _rows(service, pid, table: str) -> int:
    with service.admin_conn() as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE person_id = %s", (pid,)).fetchone()[0]


def test_the_roll_up_answers_every_chart_as_the_raw_tiers_do_on_real_data(service, tenant):
    _, pid = _person(service, tenant, "li")
    # two packed days, two hot days and today so far
    _load(service, tenant, pid, [TODAY - 36 * DAY, TODAY - 35 * DAY, TODAY - 2 * DAY, TODAY - DAY, TODAY])
    _pack(service)
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(DISTINCT day) FROM readings_packed WHERE person_id = %s",
                            (pid,)).fetchone()[0] == 2
    windows = [(TODAY - 37 * DAY, NOW), (TODAY - 36 * DAY + timedelta(minutes=17), TODAY - DAY + timedelta(hours=7,
               minutes=41)), (TODAY - 2 * DAY + timedelta(hours=5, seconds=3), NOW - timedelta(minutes=3))]
    cases = [(m, b, s, e) for m in METRICS for b in ("1 hour", "6 hours", "1 day") for s, e in windows]

    before, raw = _series(service, tenant, pid, cases)
    _same(before, raw)             # nothing rolled up yet: every hour raw
    result = _roll(service, tenant)
    assert result.rows > 0
    rows = _rows(service, pid, "readings_hourly")
    with service.admin_conn() as conn:
        sources = conn.execute("SELECT count(DISTINCT source) FROM readings_hourly WHERE person_id = %s "
                               "AND metric = 'steps'", (pid,)).fetchone()[0]
        rolled_from, rolled_to = conn.execute("SELECT rolled_from, rolled_to FROM readings_hourly_state "
                                              "WHERE tenant_id = %s", (tenant.id,)).fetchone()
    assert sources == 2 and rolled_from <= TODAY - 36 * DAY and rolled_to >= NOW.replace(minute=0, second=0,
                                                                                         microsecond=0)
    after, raw = _series(service, tenant, pid, cases)
    _same(after, raw)
    assert sum(len(v) for v in after.values()) > 100

    # Idempotent: a second run writes nothing and changes no answer.
    assert _roll(service, tenant).rows == 0 and _rows(service, pid, "readings_hourly") == rows
    again, _ = _series(service, tenant, pid, cases)
    assert again == after


def test_hours_changed_after_they_were_rolled_up_never_show_stale(service, tenant):
    client, pid = _person(service, tenant, "chen")
    _load(service, tenant, pid, [TODAY - 35 * DAY, TODAY - 3 * DAY])
    _pack(service)
    _roll(service, tenant)
    supervisor = tenant.client(tenant.staff_token("sup-rollup", role="care_supervisor"))
    day = TODAY - 3 * DAY
    chart = lambda metric="heart_rate", start=day, end=day + DAY: _chart(  # noqa: E731
        supervisor, "chen", metric, start, end)
    first = chart()
    noon = (day + 12 * HOUR).isoformat().replace("+00:00", "Z")

    # The chart trusts the roll-up for a clean hour: a reading written behind every writer's back (even the
    # `readings` view marks the hour it writes: the mark is taken away by hand) stays unseen…
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        VALUES (%s, %s, %s, 'heart_rate', 181, 'strap', 480)""",
                     (day + timedelta(hours=12, minutes=30), tenant.id, pid))
        assert conn.execute("DELETE FROM readings_hourly_dirty WHERE person_id = %s RETURNING metric, hour",
                            (pid,)).fetchall() == [("heart_rate", day + 12 * HOUR)]
    assert chart()[noon] == first[noon]
    # …so every writer marks the hours it changes: a late reading through ingest shows at once.
    late = client.post("/v1/readings", json={"readings": [
        {"time": (day + timedelta(hours=12, minutes=31)).isoformat(), "metric": "heart_rate", "value": 40,
         "source": "strap"}]})
    assert late.status_code == 200 and late.json()["results"][0]["status"] == "accepted", late.text
    n, lo, hi = first[noon]
    assert chart()[noon] == (n + 2, 40, 181) and _rows(service, pid, "readings_hourly_dirty") == 1
    _roll(service, tenant)
    assert chart()[noon] == (n + 2, 40, 181) and _rows(service, pid, "readings_hourly_dirty") == 0
    # A reading deleted through the `readings` view marks its hour too.
    with service.admin_conn() as conn:
        conn.execute("DELETE FROM readings WHERE person_id = %s AND source = 'strap' AND value = 181", (pid,))
    assert chart()[noon] == (n + 1, 40, hi)
    _roll(service, tenant)
    assert chart()[noon] == (n + 1, 40, hi)

    # A record for a rolled-up hour, its replacement and its deletion.
    def record(record_id: str, start: datetime, version: int, bpm: int) -> dict:
        return {"upsertionChange": {"record": {
            "recordType": "HeartRateRecord",
            "metadata": {"id": record_id, "dataOrigin": {"packageName": "com.example.band"},
                         "lastModifiedTime": (start + version * HOUR).isoformat(), "clientRecordVersion": version},
            "startTime": start.isoformat(), "endTime": (start + timedelta(minutes=2)).isoformat(),
            "startZoneOffset": "+08:00", "endZoneOffset": "+08:00",
            "samples": [{"time": (start + timedelta(seconds=10 * i)).isoformat(), "beatsPerMinute": bpm + i}
                        for i in range(6)]}}}
    three = (day + 15 * HOUR).isoformat().replace("+00:00", "Z")
    base, _, _ = first[three]
    start = day + timedelta(hours=15, minutes=2)
    for change, expected in ((record("hr-late", start, 1, 190), (base + 6, 195)),
                             (record("hr-late", start, 2, 200), (base + 6, 205)),
                             ({"deletionChange": {"recordId": "hr-late"}}, (base, first[three][2]))):
        answer = client.post("/v1/sync/health-connect", json={"changes": [change]})
        assert answer.status_code == 200, answer.text
        assert (chart()[three][0], chart()[three][2]) == expected
        _roll(service, tenant)
        assert (chart()[three][0], chart()[three][2]) == expected

    # A record synced for a packed (and rolled-up) day is packed into it; its deletion repacks the day.
    old = TODAY - 35 * DAY
    start = old + timedelta(hours=9, minutes=5)
    hour = (old + 9 * HOUR).isoformat().replace("+00:00", "Z")
    before = chart(start=old, end=old + DAY)
    answer = client.post("/v1/sync/health-connect", json={"changes": [record("hr-old", start, 1, 150)]})
    assert answer.status_code == 200, answer.text
    assert chart(start=old, end=old + DAY)[hour][0] == before[hour][0] + 6
    _roll(service, tenant)
    answer = client.post("/v1/sync/health-connect", json={"changes": [{"deletionChange": {"recordId": "hr-old"}}]})
    assert answer.status_code == 200, answer.text
    assert chart(start=old, end=old + DAY) == before
    _roll(service, tenant)
    assert chart(start=old, end=old + DAY) == before

    # Consent withdrawn: the chart shows nothing, roll-up or not.
    assert client.delete("/v1/me/consents/heart_rate").status_code == 200
    hidden = supervisor.get("/v1/care/people/chen/readings", params={"metric": "heart_rate", "bucket": "1d",
                                                                      "from": (TODAY - 40 * DAY).isoformat()})
    assert hidden.status_code == 200 and hidden.json()["points"] == [] and hidden.json()["data_hidden"]

    # Erasure leaves nothing of the person in the roll-up either.
    assert _rows(service, pid, "readings_hourly") > 0
    client.post("/v1/readings", json={"readings": [
        {"time": (day + HOUR).isoformat(), "metric": "steps", "value": 5, "source": "strap"}]})
    assert _rows(service, pid, "readings_hourly_dirty") == 1
    assert client.delete("/v1/me").status_code == 200
    assert _rows(service, pid, "readings_hourly") == _rows(service, pid, "readings_hourly_dirty") == 0


def test_a_roll_up_that_stops_part_way_leaves_every_chart_right_and_carries_on(service, tenant):
    _, pid = _person(service, tenant, "wu")
    _load(service, tenant, pid, [TODAY - 33 * DAY, TODAY - 6 * DAY, TODAY - DAY])
    _pack(service)
    cases = [(m, b, TODAY - 34 * DAY + timedelta(minutes=5), NOW) for m in METRICS for b in ("1 hour", "1 day")]
    _, raw = _series(service, tenant, pid, cases)
    ranges = []
    for _ in range(6):   # eight days of history per run: the rolled range grows back run by run
        _roll(service, tenant, max_days=8)
        with service.admin_conn() as conn:
            ranges.append(conn.execute("SELECT rolled_from FROM readings_hourly_state WHERE tenant_id = %s",
                                       (tenant.id,)).fetchone()[0])
        chart, now_raw = _series(service, tenant, pid, cases)
        assert now_raw == raw
        _same(chart, raw)
    assert ranges == sorted(ranges, reverse=True) and len(set(ranges)) > 3
    assert ranges[-1] <= TODAY - 33 * DAY


def _day_rows(service, pid) -> dict:
    """(metric, day, source) → the hours of the day row that hold readings."""
    with service.admin_conn() as conn:
        return {(m, d, src): hours for m, d, src, hours in conn.execute(
            """SELECT metric, day, source, array_agg(i - 1 ORDER BY i) FILTER (WHERE k > 0)
                 FROM readings_hourly, unnest(n) WITH ORDINALITY u(k, i) WHERE person_id = %s
                GROUP BY 1, 2, 3""", (pid, )).fetchall()}


def test_a_day_row_takes_hours_as_they_close_and_one_changed_hour_takes_its_day_again(service, tenant):
    client, pid = _person(service, tenant, "zhao")
    _load(service, tenant, pid, [TODAY - 3 * DAY, TODAY - 2 * DAY])
    day = TODAY - 2 * DAY
    cases = [(m, b, TODAY - 3 * DAY, NOW) for m in METRICS for b in ("1 hour", "1 day")]
    _, raw = _series(service, tenant, pid, cases)

    # Up to the middle of a day, then the rest of it: the same day rows take the later hours.
    _roll(service, tenant, grace=NOW - (day + timedelta(hours=11, minutes=30)))
    half = _day_rows(service, pid)
    assert half[("heart_rate", day.date(), "watch")][-1] == 10
    chart, _ = _series(service, tenant, pid, cases)
    _same(chart, raw)
    _roll(service, tenant)
    rows = _day_rows(service, pid)
    assert rows.keys() == half.keys() and rows[("heart_rate", day.date(), "watch")][-1] == 23
    assert rows[("steps", day.date(), "phone")] == list(range(24))
    chart, _ = _series(service, tenant, pid, cases)
    _same(chart, raw)

    # One hour of a rolled day changes: that hour reads raw at once, every other hour of the day stays rolled
    # up, and the next run takes the whole day again.
    supervisor = tenant.client(tenant.staff_token("sup-day", role="care_supervisor"))
    first = _chart(supervisor, "zhao", "heart_rate", day, day + DAY)
    late = client.post("/v1/readings", json={"readings": [
        {"time": (day + timedelta(hours=7, minutes=1)).isoformat(), "metric": "heart_rate", "value": 203.7,
         "source": "strap"}]})
    assert late.status_code == 200 and late.json()["results"][0]["status"] == "accepted", late.text
    seven = (day + 7 * HOUR).isoformat().replace("+00:00", "Z")
    expected = dict(first, **{seven: (first[seven][0] + 1, first[seven][1], 203.7)})
    assert _chart(supervisor, "zhao", "heart_rate", day, day + DAY) == expected
    _roll(service, tenant)
    assert _chart(supervisor, "zhao", "heart_rate", day, day + DAY) == expected
    assert _day_rows(service, pid)[("heart_rate", day.date(), "strap")] == [7]
    assert _rows(service, pid, "readings_hourly_dirty") == 0

    # A source's only readings of a day are deleted: its day row goes, the others stay.
    answer = client.post("/v1/sync/health-connect", json={"changes": [{"upsertionChange": {"record": {
        "recordType": "StepsRecord", "count": 90,
        "metadata": {"id": "walk", "dataOrigin": {"packageName": "com.example.ring"},
                     "lastModifiedTime": (day + 20 * HOUR).isoformat(), "clientRecordVersion": 1},
        "startTime": (day + timedelta(hours=19, minutes=10)).isoformat(),
        "endTime": (day + timedelta(hours=19, minutes=40)).isoformat(),
        "startZoneOffset": "+08:00", "endZoneOffset": "+08:00"}}}]})
    assert answer.status_code == 200, answer.text
    _roll(service, tenant)
    with_ring = _day_rows(service, pid)
    assert [key for key in with_ring if key not in rows and key[0] == "steps"] == \
        [("steps", day.date(), "health-connect:com.example.ring")]
    answer = client.post("/v1/sync/health-connect", json={"changes": [{"deletionChange": {"recordId": "walk"}}]})
    assert answer.status_code == 200, answer.text
    _roll(service, tenant)
    assert ("steps", day.date(), "health-connect:com.example.ring") not in _day_rows(service, pid)
    chart, raw = _series(service, tenant, pid, cases)
    _same(chart, raw)


def test_another_insurer_sees_nothing_of_the_roll_up(service, tenant):
    _, pid = _person(service, tenant, "xu")
    _load(service, tenant, pid, [TODAY - 2 * DAY])
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings_hourly_dirty (tenant_id, person_id, metric, hour)
                        VALUES (%s, %s, 'heart_rate', %s)""", (tenant.id, pid, TODAY - 2 * DAY))
    _roll(service, tenant)
    assert _rows(service, pid, "readings_hourly") > 0
    other = service.new_tenant()
    with service.app_conn(tenant_id=other.id) as conn:
        for table in ("readings_hourly", "readings_hourly_dirty", "readings_hourly_state"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM beidou_hourly_span(%s, ARRAY['heart_rate'], %s, %s)",
                            (pid, TODAY - 3 * DAY, NOW)).fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""INSERT INTO readings_hourly (tenant_id, person_id, metric, day, source, total, lo, hi, n)
                            SELECT %s, %s, 'heart_rate', %s, 'x', a, a, a, array_fill(1, ARRAY[24])
                              FROM array_fill(1.0::float8, ARRAY[24]) a""", (tenant.id, pid, TODAY.date()))


def test_the_scheduler_rolls_up_closed_hours_once_at_a_time(fresh_db):
    from app import directory
    from app.scheduler import Scheduler, _lock_key
    tid = directory.add_tenant(fresh_db.admin_url, "scheduled")
    with psycopg.connect(fresh_db.admin_url, autocommit=True) as conn:   # 211 readings, 1.5–5 hours old
        conn.execute("""WITH p AS (INSERT INTO people (tenant_id, external_id) VALUES (%(t)s, 'p') RETURNING id)
                        INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT %(now)s - make_interval(mins => i), %(t)s, p.id, 'heart_rate', 60 + i %% 30, 'watch', 0
                          FROM p, generate_series(90, 300) i""", {"now": NOW, "t": tid})

    async def run(hold_lock: bool) -> int:
        db = Database(fresh_db.app_url, min_size=1, max_size=2)
        await db.open()
        try:
            scheduler = Scheduler(db, fresh_db.app_url)
            async with await psycopg.AsyncConnection.connect(fresh_db.app_url, autocommit=True) as other:
                if hold_lock:   # another scheduler is rolling up right now
                    await other.execute("SELECT pg_advisory_lock(%s)", (_lock_key("roll_up"),))
                await scheduler._guarded("roll_up", scheduler.run_roll_up)()
        finally:
            await db.close()
        with psycopg.connect(fresh_db.admin_url) as conn:
            return conn.execute("SELECT coalesce(sum(k), 0) FROM readings_hourly, unnest(n) k").fetchone()[0]

    assert asyncio.run(run(hold_lock=True)) == 0
    rolled = asyncio.run(run(hold_lock=False))
    # every reading (all of hours that closed over ten minutes ago), each once, however often it runs
    assert rolled == 211 and asyncio.run(run(hold_lock=False)) == 211
