"""History tiers: packing past the hot window keeps every reader's answer, loses and duplicates nothing."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from app.core.db import Database
from streaming import history
from streaming.history import repository as history_repo
from tests.support import ROOT

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _person(service, tenant, external: str):
    client = tenant.client(tenant.person_token(external))
    for data_type in ("heart_rate", "steps", "blood_pressure"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    with service.admin_conn() as conn:
        pid = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                           (tenant.id, external)).fetchone()[0]
    return client, pid


def _history(service, tenant, pid, days: int) -> None:
    """``days`` days of history ending yesterday: heart rate every 20 s for two hours a day (three readings a
    minute), steps from a watch and a phone, a blood pressure a day with its diastolic."""
    with service.admin_conn() as conn:
        conn.execute(
            """INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
               SELECT %(today)s - make_interval(days => d) + interval '8 hours' + make_interval(secs => 20 * i),
                      %(t)s, %(p)s, 'heart_rate', 55 + (i * 7 + d) %% 40, 'watch', 480
                 FROM generate_series(1, %(days)s) d, generate_series(0, 359) i""",
            {"today": TODAY, "t": tenant.id, "p": pid, "days": days})
        conn.execute(
            """INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
               SELECT %(today)s - make_interval(days => d) + make_interval(mins => 15 * i), %(t)s, %(p)s, 'steps',
                      CASE WHEN s = 'watch' THEN 40 + i %% 9 ELSE 10 END, s, 480
                 FROM generate_series(1, %(days)s) d, generate_series(0, 95) i, unnest(ARRAY['watch', 'phone']) s""",
            {"today": TODAY, "t": tenant.id, "p": pid, "days": days})
        conn.execute(
            """INSERT INTO readings (time, tenant_id, person_id, metric, value, value2, source, utc_offset_min)
               SELECT %(today)s - make_interval(days => d) + interval '7 hours 13 minutes 7 seconds',
                      %(t)s, %(p)s, 'blood_pressure', 115 + d %% 10, 75 + d %% 5, 'cuff', 480
                 FROM generate_series(1, %(days)s) d""",
            {"today": TODAY, "t": tenant.id, "p": pid, "days": days})


def _pack(service, **kwargs) -> history.PackResult:
    async def run():
        db = Database(service.db.app_url, min_size=1, max_size=2)
        await db.open()
        try:
            return await history.pack_history(db, hot_days=30, max_chunks=400, **kwargs)
        finally:
            await db.close()
    return asyncio.run(run())


def _chart(supervisor, external: str, metric: str, start: datetime, end: datetime, bucket: str = "1h"):
    answer = supervisor.get(f"/v1/care/people/{external}/readings",
                            params={"metric": metric, "from": start.isoformat(), "to": end.isoformat(),
                                    "bucket": bucket})
    assert answer.status_code == 200, answer.text
    return [(p["time"], round(p["avg"], 3), p["min"], p["max"], p["count"]) for p in answer.json()["points"]]


def _fhir_observations(client) -> list[dict]:
    answer = client.get("/v1/me/export", params={"format": "fhir"})
    assert answer.status_code == 200
    return [e["resource"] for e in json.loads(answer.content)["entry"]
            if e["resource"]["resourceType"] == "Observation"]


def _counts(service, pid) -> tuple[int, int]:
    with service.admin_conn() as conn:
        hot = conn.execute("SELECT count(*) FROM readings WHERE person_id = %s", (pid,)).fetchone()[0]
        packed = conn.execute("SELECT coalesce(sum(reading_count), 0) FROM readings_packed WHERE person_id = %s",
                              (pid,)).fetchone()[0]
    return hot, packed


def test_packing_sixty_days_keeps_the_care_chart_and_the_export(service, tenant):
    client, pid = _person(service, tenant, "wang")
    _history(service, tenant, pid, 60)
    supervisor = tenant.client(tenant.staff_token("sup-tiers", role="care_supervisor"))
    start, end = TODAY - 61 * DAY, TODAY
    before = {(m, b): _chart(supervisor, "wang", m, start, end, b)
              for m in ("heart_rate", "steps", "blood_pressure") for b in ("1h", "1d")}
    fhir_before = _fhir_observations(client)
    total = sum(_counts(service, pid))

    result = _pack(service)
    assert result.readings >= 30 * (360 + 192 + 1)
    hot, packed = _counts(service, pid)
    assert hot + packed == total and packed >= 30 * (360 + 192 + 1)   # nothing lost, nothing twice
    with service.admin_conn() as conn:
        # the packed days' hot chunks are gone; the hot window's stay
        oldest_hot = conn.execute("SELECT min(time) FROM readings WHERE person_id = %s", (pid,)).fetchone()[0]
        assert oldest_hot >= TODAY - 30 * DAY
        assert conn.execute("SELECT count(*) FROM readings WHERE time < %s", (TODAY - 31 * DAY,)).fetchone()[0] == 0

    after = {(m, b): _chart(supervisor, "wang", m, start, end, b)
             for m in ("heart_rate", "steps", "blood_pressure") for b in ("1h", "1d")}
    assert after == before   # averages, extremes and counts per bucket, steps one source an hour

    fhir_after = _fhir_observations(client)
    # Blood pressure is kept exactly (time to the second, diastolic); heart rate becomes a minute's average.
    bp = lambda obs: sorted(json.dumps(o, sort_keys=True) for o in obs  # noqa: E731
                            if o["code"]["coding"][0]["code"] == "85354-9")
    assert bp(fhir_after) == bp(fhir_before) and len(bp(fhir_after)) == 60
    hr_before = [o for o in fhir_before if o["code"]["coding"][0]["code"] == "8867-4"]
    hr_after = [o for o in fhir_after if o["code"]["coding"][0]["code"] == "8867-4"]
    assert len(hr_before) == 60 * 360 and len(hr_after) == 30 * 360 + 30 * 120   # three readings a minute → one

    own = client.get("/v1/me/readings", params={"metric": "blood_pressure", "from": start.isoformat(),
                                                "to": end.isoformat(), "limit": 100})
    assert own.status_code == 200, own.text
    assert len(own.json()["readings"]) == 60


def test_a_whole_year_shows_in_the_chart_and_the_export_after_packing(service, tenant):
    client, pid = _person(service, tenant, "zhao")
    with service.admin_conn() as conn:
        conn.execute(
            """INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
               SELECT %(today)s - make_interval(days => d) + interval '12 hours', %(t)s, %(p)s, 'heart_rate',
                      60 + d %% 20, 'watch', 480 FROM generate_series(1, 365) d""",
            {"today": TODAY, "t": tenant.id, "p": pid})
    _pack(service)
    assert _counts(service, pid) == (30, 335)
    supervisor = tenant.client(tenant.staff_token("sup-year", role="care_supervisor"))
    points = _chart(supervisor, "zhao", "heart_rate", TODAY - 366 * DAY, TODAY, "1d")
    assert len(points) == 365 and sum(p[4] for p in points) == 365
    export = json.loads(client.get("/v1/me/export").content)
    assert export["counts"]["readings"] == 30 and export["counts"]["readings_packed"] == 335
    assert sum(r["reading_count"] for r in export["data"]["readings_packed"]) == 335
    assert len([o for o in _fhir_observations(client) if o["code"]["coding"][0]["code"] == "8867-4"]) == 365
    # The person's own page: 90 days back, 30 hot and 60 packed, one reading a day.
    mine = client.get("/v1/me/data/heart_rate", params={"days": 90, "bucket": "1d"})
    assert mine.status_code == 200, mine.text
    assert sum(p["count"] for p in mine.json()["points"]) in (89, 90)   # the window starts mid-day


def test_packing_twice_or_after_a_crash_duplicates_nothing(service, tenant):
    client, pid = _person(service, tenant, "sun")
    _history(service, tenant, pid, 40)
    total = sum(_counts(service, pid))
    # A crash between packing and dropping: the emptied chunks stay; the next run drops them, packs nothing twice.
    _pack(service, stop_before_drop=True)
    assert sum(_counts(service, pid)) == total
    _pack(service)
    _pack(service)
    assert sum(_counts(service, pid)) == total
    with service.admin_conn() as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT (metric, day, source)) FROM readings_packed "
                            "WHERE person_id = %s", (pid,)).fetchone()
        assert rows[0] == rows[1] == 10 * (1 + 2 + 1)

    # A crash inside a batch (the connection dies before its commit) leaves the hot rows where they were.
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        VALUES (%s, %s, %s, 'heart_rate', 99, 'watch', 480)""",
                     (TODAY - 35 * DAY + timedelta(hours=8, seconds=5), tenant.id, pid))
    day = TODAY - 35 * DAY
    # The chunk that holds it is never dropped before it is packed.
    with service.app_conn() as conn, pytest.raises(psycopg.errors.RaiseException, match="still holds 1 readings"):
        conn.execute("SELECT beidou_drop_packed_chunk(%s, %s)", (day, day + DAY))
    hot, before, after = asyncio.run(_pack_in(service, tenant.id, pid, day, crash=True))
    assert (hot, after) == (1, hot + before)
    assert sum(_counts(service, pid)) == total + 1
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(*) FROM readings WHERE person_id = %s AND time < %s",
                            (pid, TODAY - 31 * DAY)).fetchone()[0] == 1
    # The late reading's day is packed again with it: merged into the same minute, counted once.
    _pack(service)
    assert sum(_counts(service, pid)) == total + 1
    supervisor = tenant.client(tenant.staff_token("sup-crash", role="care_supervisor"))
    minute = _chart(supervisor, "sun", "heart_rate", day + timedelta(hours=8), day + timedelta(hours=8, minutes=1),
                    "1m")
    assert minute[0][4] == 4 and minute[0][3] == 99


async def _pack_in(service, tenant_id, pid, day, *, crash: bool):
    """One packing batch in its own transaction; with ``crash`` the connection is closed before the commit."""
    conn = await psycopg.AsyncConnection.connect(service.db.app_url)
    try:
        await conn.execute("SELECT set_config('beidou.tenant_id', %s, true)", (str(tenant_id),))
        counts = await history_repo.pack(conn, [pid], day, day + DAY)
        if crash:
            await conn.close()   # no commit: the server rolls the transaction back
        return counts
    finally:
        if not conn.closed:
            await conn.close()


def test_packing_keeps_every_digit_where_the_session_prints_floats_short(service, tenant):
    """Packing goes through text (a hot value, the per-minute arrays): a role or database set to print floats
    with fewer digits (extra_float_digits = 0, six significant digits) must not round what is kept."""
    client, pid = _person(service, tenant, "feng")
    day = TODAY - 40 * DAY
    values = [61.23457, 1234.567, 0.1234567]   # seven significant digits each
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT %s + make_interval(mins => i::int - 1), %s, %s, 'heart_rate', v, 'watch', 480
                          FROM unnest(%s::float8[]) WITH ORDINALITY AS u(v, i)""",
                     (day + timedelta(hours=9), tenant.id, pid, values))

    async def pack_printing_short():
        conn = await psycopg.AsyncConnection.connect(service.db.app_url)
        async with conn:
            await conn.execute("SET extra_float_digits = 0")
            await conn.execute("SELECT set_config('beidou.tenant_id', %s, true)", (str(tenant.id),))
            counts = await history_repo.pack(conn, [pid], day, day + DAY)
            await conn.commit()
            return counts
    assert asyncio.run(pack_printing_short()) == (3, 0, 3)
    with service.admin_conn() as conn:
        kept = conn.execute("SELECT total[541:543] = %s::real[] FROM readings_packed WHERE person_id = %s",
                            (values, pid)).fetchone()
    assert kept == (True,)


def test_erasure_leaves_nothing_in_either_tier(service, tenant):
    client, pid = _person(service, tenant, "qian")
    _history(service, tenant, pid, 35)
    _pack(service)
    assert all(_counts(service, pid))
    assert client.delete("/v1/me").status_code == 200
    assert _counts(service, pid) == (0, 0)


def _hc_heart_rate(native_id: str, start: datetime, version: int, minutes: range, bpm: int) -> dict:
    """A Health Connect heart-rate record: a sample at each of ``minutes`` past ``start``."""
    return {"upsertionChange": {"record": {
        "recordType": "HeartRateRecord",
        "metadata": {"id": native_id, "dataOrigin": {"packageName": "com.example.watch"},
                     "lastModifiedTime": (start + version * DAY).isoformat(), "clientRecordVersion": version},
        "startTime": (start + timedelta(minutes=minutes[0])).isoformat(),
        "endTime": (start + timedelta(minutes=minutes[-1])).isoformat(),
        "startZoneOffset": "+08:00", "endZoneOffset": "+08:00",
        "samples": [{"time": (start + timedelta(minutes=m)).isoformat(), "beatsPerMinute": bpm} for m in minutes]}}}


def _held_by_record(client) -> dict[str, list]:
    """What the person's JSON export holds of each record (by its id on the phone): the times of its readings,
    hot and packed alike."""
    export = json.loads(client.get("/v1/me/export").content)
    native = {r["id"]: r["native_id"] for r in export["data"]["records"]}
    held: dict[str, list] = {}
    for r in export["data"]["readings"]:
        if r["record_id"] is not None:
            held.setdefault(native[r["record_id"]], []).append(datetime.fromisoformat(r["time"]))
    for row in export["data"]["readings_packed"]:
        day = datetime.fromisoformat(row["day"]).replace(tzinfo=timezone.utc)
        for ms, record in zip(row["at_ms"], row["x_record"]):
            if record is not None:
                held.setdefault(native[record], []).append(day + timedelta(milliseconds=ms))
    return {k: sorted(v) for k, v in held.items()}


def test_a_records_readings_follow_it_in_either_tier_through_update_delete_export_and_erasure(service, tenant):
    client, pid = _person(service, tenant, "zhou")
    old, recent = TODAY - 40 * DAY + 9 * HOUR, TODAY - 2 * DAY + 9 * HOUR
    even, odd = range(0, 60, 2), range(1, 60, 2)
    # Two records of one watch interleaved in the same hour, past the hot window and inside it, and a strap's
    # plain readings at the same minutes as the first.
    answer = client.post("/v1/sync/health-connect", json={"changes": [
        _hc_heart_rate("old-a", old, 1, even, 70), _hc_heart_rate("old-b", old, 1, odd, 71),
        _hc_heart_rate("new-a", recent, 1, even, 72), _hc_heart_rate("new-b", recent, 1, odd, 73)]})
    assert [r["status"] for r in answer.json()["results"]] == ["inserted"] * 4, answer.text
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT %s + make_interval(mins => m), %s, %s, 'heart_rate', 60, 'strap', 480
                          FROM generate_series(0, 58, 2) m""", (old, tenant.id, pid))
    _pack(service)
    assert _counts(service, pid) == (60, 90)
    minutes = lambda start, rng: [start + timedelta(minutes=m) for m in rng]  # noqa: E731
    expected = {"old-a": minutes(old, even), "old-b": minutes(old, odd), "new-a": minutes(recent, even),
                "new-b": minutes(recent, odd)}
    assert _held_by_record(client) == expected

    # A new version replaces exactly its own readings (not its neighbour's, not the strap's), in either tier.
    answer = client.post("/v1/sync/health-connect", json={"changes": [
        _hc_heart_rate("old-a", old, 2, range(0, 10), 150), _hc_heart_rate("new-a", recent, 2, range(0, 60, 4), 151)]})
    assert [r["status"] for r in answer.json()["results"]] == ["replaced"] * 2, answer.text
    expected.update({"old-a": minutes(old, range(0, 10)), "new-a": minutes(recent, range(0, 60, 4))})
    assert _held_by_record(client) == expected
    assert _counts(service, pid) == (15 + 30, 10 + 30 + 30)
    supervisor = tenant.client(tenant.staff_token("sup-rec", role="care_supervisor"))
    assert [p[2:] for p in _chart(supervisor, "zhou", "heart_rate", old, old + HOUR)] == [(60, 150, 70)]

    # A deletion removes its readings only, from either tier.
    answer = client.post("/v1/sync/health-connect", json={"changes": [
        {"deletionChange": {"recordId": "old-b"}}, {"deletionChange": {"recordId": "new-a"}}]})
    assert [r["status"] for r in answer.json()["results"]] == ["deleted"] * 2, answer.text
    del expected["old-b"], expected["new-a"]
    assert _held_by_record(client) == expected
    assert _counts(service, pid) == (30, 30 + 10)
    assert [p[2:] for p in _chart(supervisor, "zhou", "heart_rate", old, old + HOUR)] == [(60, 150, 40)]

    # Erasure leaves nothing of the person's readings or records in any tier.
    assert client.delete("/v1/me").status_code == 200
    assert _counts(service, pid) == (0, 0)
    with service.admin_conn() as conn:
        assert conn.execute(
            """SELECT (SELECT count(*) FROM readings_hot h JOIN people p ON p.person_no = h.person_no WHERE p.id = %s),
                      (SELECT count(*) FROM readings_hot_extra x JOIN people p ON p.person_no = x.person_no
                        WHERE p.id = %s),
                      (SELECT count(*) FROM records WHERE person_id = %s),
                      (SELECT count(*) FROM readings_hourly WHERE person_id = %s),
                      (SELECT count(*) FROM readings_hourly_dirty WHERE person_id = %s)""",
            (pid,) * 5).fetchone() == (0, 0, 0, 0, 0)


def test_a_record_synced_for_a_packed_day_is_packed_into_it_and_its_deletion_leaves_it(service, tenant):
    client, pid = _person(service, tenant, "he")
    day = TODAY - 40 * DAY
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT %s + make_interval(mins => i), %s, %s, 'heart_rate', 60, 'watch', 480
                          FROM generate_series(0, 59) i""", (day + timedelta(hours=6), tenant.id, pid))
    _pack(service)
    assert _counts(service, pid) == (0, 60)

    start = day + timedelta(hours=9)
    record = {"recordType": "HeartRateRecord",
              "metadata": {"id": "hr-old", "dataOrigin": {"packageName": "com.example.watch"},
                           "lastModifiedTime": start.isoformat(), "clientRecordVersion": 0},
              "startTime": start.isoformat(), "endTime": (start + timedelta(seconds=90)).isoformat(),
              "startZoneOffset": "+08:00", "endZoneOffset": "+08:00",
              "samples": [{"time": (start + timedelta(seconds=10 * i)).isoformat(), "beatsPerMinute": 80 + i}
                          for i in range(10)]}
    answer = client.post("/v1/sync/health-connect", json={"changes": [{"upsertionChange": {"record": record}}]})
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "inserted", answer.text
    assert _counts(service, pid) == (0, 70)   # packed into the day at once, kept exactly
    supervisor = tenant.client(tenant.staff_token("sup-late", role="care_supervisor"))
    points = _chart(supervisor, "he", "heart_rate", day, day + DAY, "1h")
    assert [(p[4], p[2], p[3]) for p in points] == [(60, 60.0, 60.0), (10, 80.0, 89.0)]

    deletion = {"deletionChange": {"recordId": "hr-old"}}
    answer = client.post("/v1/sync/health-connect", json={"changes": [deletion]})
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "deleted", answer.text
    assert _counts(service, pid) == (0, 60)
    assert [p[4] for p in _chart(supervisor, "he", "heart_rate", day, day + DAY, "1h")] == [60]


def test_a_resend_of_packed_readings_is_a_duplicate_and_new_ones_still_count(service, tenant):
    client, pid = _person(service, tenant, "zhou")
    _history(service, tenant, pid, 40)
    _pack(service)
    total = sum(_counts(service, pid))
    day = TODAY - 35 * DAY
    stamp = lambda delta: (day + delta).isoformat()  # noqa: E731
    resend = [  # exactly what the phone sent then: a heart rate of a packed minute, that day's blood pressure
        {"time": stamp(timedelta(hours=8, seconds=20)), "metric": "heart_rate", "value": 70, "source": "watch"},
        {"time": stamp(timedelta(hours=7, minutes=13, seconds=7)), "metric": "blood_pressure", "systolic": 120,
         "diastolic": 80, "source": "cuff"},
        # and data that is new for that day: a minute with no heart rate yet, a second blood pressure
        {"time": stamp(timedelta(hours=20)), "metric": "heart_rate", "value": 66, "source": "watch"},
        {"time": stamp(timedelta(hours=19)), "metric": "blood_pressure", "systolic": 118, "diastolic": 77,
         "source": "cuff"},
    ]
    answer = client.post("/v1/readings", json={"readings": resend})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["duplicate", "duplicate", "accepted", "accepted"]
    assert sum(_counts(service, pid)) == total + 2
    _pack(service)  # the late ones merge into their packed day, once
    assert sum(_counts(service, pid)) == total + 2


def _interleaved(service, tenant, day: datetime, minutes: range) -> None:
    """Heart rate for every person of the tenant, inserted a minute at a time for all of them together (as group
    commits bring many people's readings): each minute goes into every person's key range."""
    with service.admin_conn() as conn:
        conn.execute(
            """INSERT INTO readings_hot (time, tenant_no, person_no, metric_no, value, source_no, utc_offset_min)
               SELECT %s + make_interval(mins => m), t.tenant_no, p.person_no, d.code, 50 + (p.person_no + m) %% 40,
                      s.source_no, 480
                 FROM generate_series(%s::int, %s::int) m, people p JOIN tenants t ON t.id = p.tenant_id
                 JOIN sources s ON s.person_id = p.id AND s.source = 'watch'
                 JOIN data_types d ON d.name = 'heart_rate'
                WHERE p.tenant_id = %s
                ORDER BY m, p.person_no""",
            (day, minutes.start, minutes.stop - 1, tenant.id))


def _day_index(service, day: datetime) -> tuple[str, int, int]:
    """(name, bytes, invalid indexes) of the hot chunk of ``day``'s unique index."""
    with service.admin_conn() as conn:
        chunk = conn.execute(
            """SELECT format('%%I.%%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
                WHERE hypertable_name = 'readings_hot' AND range_start = %s""", (day,)).fetchone()[0]
        name, size = conn.execute("SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
                                  "WHERE indrelid = %s::regclass AND indisvalid", (chunk,)).fetchone()
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass AND NOT indisvalid",
                               (chunk,)).fetchone()[0]
    return name, size, invalid


def _day_digest(service, tenant, day: datetime) -> str:
    with service.admin_conn() as conn:
        return conn.execute(
            """SELECT md5(string_agg(concat_ws(',', person_id, metric, time, value, source), ';'
                                     ORDER BY person_id, metric, time, source))
                 FROM readings WHERE tenant_id = %s AND time >= %s AND time < %s""",
            (tenant.id, day, day + DAY)).fetchone()[0]


def _compact(service) -> history.CompactResult:
    return asyncio.run(history.compact_hot_indexes(service.db.admin_url, hot_days=30, min_bytes=0))


def _rebuilds(service, index: str) -> int:
    with service.admin_conn() as conn:
        row = conn.execute("SELECT rebuilds FROM beidou_meta.hot_index_compactions WHERE index_name = %s",
                           (index,)).fetchone()
    return row[0] if row else 0


def _scheduled_compaction(service) -> int:
    """The scheduler's hourly job, run once: bytes it saved. A scheduler without the owner's URL has no such
    job (only the owner may rebuild a chunk's index)."""
    from app.scheduler import Scheduler

    async def run() -> int:
        db = Database(service.db.app_url, min_size=1, max_size=2)
        await db.open()
        try:
            assert Scheduler(db, service.db.app_url).scheduler.get_job("compact_hot") is None
            scheduler = Scheduler(db, service.db.app_url, hot_days=30, owner_url=service.db.admin_url)
            assert scheduler.scheduler.get_job("compact_hot") is not None
            return await scheduler.run_compact_hot()
        finally:
            await db.close()
    return asyncio.run(run())


def test_a_closed_days_index_is_compacted_once_and_again_after_late_readings(service, tenant):
    """Many people's readings arriving interleaved leave a day chunk's index pages half full; once the day has
    closed, `beidou db compact` (the scheduler's job) rebuilds it smaller, and every reading stays readable and
    deduplicated. A second run rebuilds nothing; late readings that loosen it again get it rebuilt again."""
    client, _ = _person(service, tenant, "lin")
    with service.admin_conn() as conn:
        conn.execute("""WITH p AS (INSERT INTO people (tenant_id, external_id)
                                   SELECT %s, 'many-' || i FROM generate_series(1, 119) i RETURNING id)
                        INSERT INTO sources (tenant_id, person_id, source) SELECT %s, id, 'watch' FROM p""",
                     (tenant.id, tenant.id))
        conn.execute("""INSERT INTO sources (tenant_id, person_id, source)
                        SELECT %s, id, 'watch' FROM people WHERE tenant_id = %s AND external_id = 'lin'
                        ON CONFLICT DO NOTHING""", (tenant.id, tenant.id))
    day = TODAY - 3 * DAY
    _interleaved(service, tenant, day, range(0, 300))
    supervisor = tenant.client(tenant.staff_token("sup-compact", role="care_supervisor"))
    chart = _chart(supervisor, "lin", "heart_rate", day, day + DAY, bucket="5m")
    digest = _day_digest(service, tenant, day)
    name, loose, _ = _day_index(service, day)

    run = subprocess.run([sys.executable, "-m", "app.cli", "db", "compact"], env=service.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("rebuilt ") and " 0 index" not in run.stdout, run.stdout
    same_name, compact, _ = _day_index(service, day)
    assert same_name == name
    assert compact <= 0.8 * loose, (loose, compact)           # measured: about 0.6
    assert _day_digest(service, tenant, day) == digest
    assert _chart(supervisor, "lin", "heart_rate", day, day + DAY, bucket="5m") == chart
    resend = {"time": (day + timedelta(minutes=7)).isoformat(), "metric": "heart_rate", "value": 70,
              "source": "watch"}
    late = {**resend, "time": (day + timedelta(hours=20)).isoformat()}
    answer = client.post("/v1/readings", json={"readings": [resend, late]})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["duplicate", "accepted"]

    assert _rebuilds(service, name) == 1
    _compact(service)                                         # nothing loosened since: left as it is
    assert _rebuilds(service, name) == 1 and _day_index(service, day)[1] == compact
    _interleaved(service, tenant, day, range(300, 900))       # a late sync of the afternoon, for everyone
    _, loosened, _ = _day_index(service, day)
    _scheduled_compaction(service)
    assert _rebuilds(service, name) == 2 and _day_index(service, day)[1] < loosened


def test_an_interrupted_rebuild_leaves_the_index_in_use_and_the_next_run_clears_it(service, tenant):
    _person(service, tenant, "qiu")
    with service.admin_conn() as conn:
        conn.execute("INSERT INTO sources (tenant_id, person_id, source) SELECT %s, id, 'watch' FROM people "
                     "WHERE tenant_id = %s ON CONFLICT DO NOTHING", (tenant.id, tenant.id))
    day = TODAY - 4 * DAY
    _interleaved(service, tenant, day, range(0, 120))
    name, _, _ = _day_index(service, day)
    with service.admin_conn() as conn:
        chunk = conn.execute("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = %s::regclass",
                             (name,)).fetchone()[0]
        # What REINDEX CONCURRENTLY leaves when it stops while building its copy: an invalid "…_ccnew" index.
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute(f"CREATE INDEX CONCURRENTLY {name.split('.')[1]}_ccnew ON {chunk} ((1 / (value - 60)))")
    assert _day_index(service, day)[2] == 1
    result = _compact(service)
    assert f"{name}_ccnew" in result.leftovers
    assert _day_index(service, day)[:1] == (name,) and _day_index(service, day)[2] == 0
    with service.admin_conn() as conn, pytest.raises(psycopg.errors.UniqueViolation):   # still the key
        conn.execute("INSERT INTO readings_hot SELECT * FROM readings_hot WHERE time >= %s AND time < %s LIMIT 1",
                     (day, day + DAY))
