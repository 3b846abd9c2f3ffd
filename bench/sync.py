"""Native sync beside plain ingest, in the same run: readings per second through `/v1/sync/health-connect`
(Health Connect heart-rate records of 60 samples, 8 records a request) and through `/v1/readings` (batches of
480 readings, the same readings per request), each with the same number of concurrent clients; then what a
reading costs in the hot tier either way (table and every index, the extra table's share, after VACUUM): half
a day of one-per-second heart rate sent by one client each way, in chunks of their own.

    .venv/bin/python bench/sync.py                  # 15 s per path, 8 clients (about a minute in all)
    .venv/bin/python bench/sync.py --seconds 20 --concurrency 16
    .venv/bin/python bench/sync.py --storage-only   # only the bytes per reading (about 20 s)

Starts its own `beidou api` on a fresh database of the local test cluster (BEIDOU_TEST_PG_PORT, or
BEIDOU_TEST_ADMIN_URL's server). Stored readings are counted at the end.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (command_line, cpu_seconds, fresh_database, pct, postgres_cpu, server,  # noqa: E402
                          start_api)
from bench.ingest import body_bytes  # noqa: E402

SAMPLES, RECORDS = 60, 8


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def hc_body(start: datetime, worker: int | str, k: int) -> bytes:
    changes = []
    for r in range(RECORDS):
        t0 = start + timedelta(seconds=(k * RECORDS + r) * SAMPLES)
        changes.append({"upsertionChange": {"record": {
            "recordType": "HeartRateRecord",
            "metadata": {"id": f"w{worker}-{k}-{r}", "dataOrigin": {"packageName": "com.example.watch"},
                         "lastModifiedTime": _iso(t0 + timedelta(minutes=2))},
            "startTime": _iso(t0), "endTime": _iso(t0 + timedelta(seconds=SAMPLES - 1)), "startZoneOffset": "+08:00",
            "endZoneOffset": "+08:00",
            "samples": [{"time": _iso(t0 + timedelta(seconds=i)), "beatsPerMinute": 60 + i % 30}
                        for i in range(SAMPLES)]}}})
    return json.dumps({"changes": changes}).encode()


async def drive(base_url: str, tokens: list[str], path: str, bodies: list[list[bytes]], seconds: float) -> dict:
    latencies: list[float] = []
    stored = 0
    stop_at = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal stored
        async with httpx.AsyncClient(base_url=base_url, timeout=60, headers={
                "Authorization": f"Bearer {tokens[w]}", "content-type": "application/json"}) as client:
            for body in bodies[w]:
                if time.monotonic() >= stop_at:
                    break
                t0 = time.perf_counter()
                response = await client.post(path, content=body)
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()
                answer = response.json()
                stored += answer["accepted"] if "accepted" in answer else sum(
                    r.get("readings", 0) for r in answer["results"] if r["status"] == "inserted")

    t0 = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(len(bodies))))
    return {"readings": stored, "elapsed": time.monotonic() - t0, "latencies": latencies}


def hot_bytes_per_reading(svc, admin_url: str, readings: int) -> dict[str, tuple[float, float, int]]:
    """Bytes per reading in the hot tier, plain and record-owned, as (in all, of them in indexes, readings):
    ``readings`` of each sent in order by one client, each kind on days no other reading of the run is on (so
    its chunks hold only it)."""
    tenant = svc.new_tenant("storage")
    requests = max(readings // (SAMPLES * RECORDS), 1)
    first = (datetime.now(timezone.utc) - timedelta(days=250)).replace(hour=0, minute=0, second=0, microsecond=0)
    spans = {}
    with httpx.Client(base_url=svc.base_url, timeout=60) as client:
        for n, kind in enumerate(("plain", "record-owned")):
            start = first + timedelta(days=2 * n)
            headers = {"Authorization": f"Bearer {tenant.person_token('storage-' + str(n))}",
                       "content-type": "application/json"}
            client.put("/v1/me/consents/heart_rate", headers=headers).raise_for_status()
            for k in range(requests):
                if kind == "plain":
                    path = "/v1/readings"
                    body = body_bytes(start + timedelta(seconds=k * SAMPLES * RECORDS), SAMPLES * RECORDS)
                else:
                    path, body = "/v1/sync/health-connect", hc_body(start, "storage", k)
                client.post(path, content=body, headers=headers).raise_for_status()
            spans[kind] = (start, start + timedelta(seconds=requests * SAMPLES * RECORDS))
    out = {}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings_hot, readings_hot_extra")
        extra_rows, extra_bytes = conn.execute(
            "SELECT count(*), pg_total_relation_size('readings_hot_extra') FROM readings_hot_extra").fetchone()
        for kind, (start, end) in spans.items():
            chunks = conn.execute(
                """SELECT coalesce(sum(s.total_bytes), 0), coalesce(sum(s.index_bytes), 0)
                     FROM chunks_detailed_size('readings_hot') s
                     JOIN timescaledb_information.chunks c ON c.chunk_schema = s.chunk_schema
                                                          AND c.chunk_name = s.chunk_name
                    WHERE c.hypertable_name = 'readings_hot' AND c.range_start < %s AND c.range_end > %s""",
                (end, start)).fetchone()
            rows = conn.execute("SELECT count(*) FROM readings_hot WHERE time >= %s AND time < %s",
                                (start, end)).fetchone()[0]
            extras = conn.execute("SELECT count(*) FROM readings_hot_extra WHERE time >= %s AND time < %s",
                                  (start, end)).fetchone()[0]
            share = extra_bytes * extras / extra_rows if extra_rows else 0
            out[kind] = ((int(chunks[0]) + share) / max(rows, 1), int(chunks[1]) / max(rows, 1), rows)
    return out


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--storage-readings", type=int, default=43_200,
                        help="readings of each kind for the bytes per reading (default: half a day at 1 Hz)")
    parser.add_argument("--storage-only", action="store_true", help="measure only the bytes per reading")
    args = parser.parse_args()

    admin, _ = server()
    db = fresh_database(admin, "beidou_bench")
    svc = start_api(db, "bench", BEIDOU_POOL_MAX="20")
    try:
        tenant = svc.new_tenant("bench")
        tokens = [tenant.person_token(f"p{i}") for i in range(args.concurrency)]
        with httpx.Client(base_url=svc.base_url, timeout=60) as client:
            for token in tokens:
                client.put("/v1/me/consents/heart_rate", headers={"Authorization": f"Bearer {token}"}
                           ).raise_for_status()
        if not args.storage_only:
            throughput(svc, admin, db, tokens, args)
        sizes = hot_bytes_per_reading(svc, db.admin_url, args.storage_readings)
        print("hot tier, bytes per reading (table and indexes, the extra table's share, after VACUUM): "
              + ", ".join(f"{kind} {size:.1f} B ({index:.1f} of them the index; {rows:,} readings)"
                          for kind, (size, index, rows) in sizes.items())
              + "  (target: at most 120)")
    finally:
        svc.stop()
        db.drop()


def throughput(svc, admin: str, db, tokens: list[str], args) -> None:
    """Readings per second through each path, all clients at once; the stored readings counted at the end."""
    per_worker = int(args.seconds * 60) + 10
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=300)
    sync_bodies = [[hc_body(base + timedelta(days=w), w, k) for k in range(per_worker)]
                   for w in range(args.concurrency)]
    plain_bodies = [[body_bytes(base - timedelta(days=100 - w) + timedelta(seconds=k * SAMPLES * RECORDS),
                                SAMPLES * RECORDS) for k in range(per_worker)] for w in range(args.concurrency)]
    results = {}
    for name, path, bodies in (("/v1/readings", "/v1/readings", plain_bodies),
                               ("/v1/sync/health-connect", "/v1/sync/health-connect", sync_bodies)):
        before = cpu_seconds(svc.process.pid), postgres_cpu(admin)
        result = asyncio.run(drive(svc.base_url, tokens, path, bodies, args.seconds))
        api_cpu, pg_cpu = (a - b for a, b in zip((cpu_seconds(svc.process.pid), postgres_cpu(admin)), before))
        results[name] = rate = result["readings"] / result["elapsed"]
        lat = result["latencies"]
        print(f"{name:<26} {rate:>10,.0f} readings/s  ack p50 {pct(lat, .5) * 1000:.0f} ms, p99 "
              f"{pct(lat, .99) * 1000:.0f} ms  ({result['readings']:,} readings, {len(lat):,} requests; "
              f"CPU s: API {api_cpu:.1f}, PostgreSQL {pg_cpu:.1f})", flush=True)
    ratio = results["/v1/sync/health-connect"] / results["/v1/readings"]
    print(f"native sync / plain ingest: {ratio:.2f}")
    with psycopg.connect(db.admin_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings_hot").fetchone()[0]
        owned = conn.execute("SELECT count(*) FROM readings_hot WHERE record_no <> 0").fetchone()[0]
    print(f"stored {stored:,} readings, {owned:,} of them owned by records")


if __name__ == "__main__":
    main()
