"""Ingest benchmark: drives a real service over loopback and prints what it sustains, against the storage limit.

    .venv/bin/python bench/ingest.py                       # limit, HTTP and WebSocket, 20 s each
    .venv/bin/python bench/ingest.py --only http --seconds 30 --workers 2
    .venv/bin/python bench/ingest.py --only ws --streams 1000 --stream-rate 20
    .venv/bin/python bench/ingest.py --only idle --idle-streams 10000

First it measures the storage limit in the same run: binary COPY of heart-rate rows (made before the clock
starts) straight into the `readings` hypertable of a fresh copy of the schema, by ``--limit-writers`` writers
(2), no validation, consent, row-level security or HTTP. Then it starts its own `beidou api --workers N` on a
fresh database of the local test cluster (or of BEIDOU_TEST_ADMIN_URL's server); the load comes from this
separate process, on uvloop as the API is (it shares the two cores). Printed per scenario: readings/s accepted
and as a ratio of the limit, acknowledgement latency p50/p99, the API processes' peak memory (VmHWM, summed),
and CPU seconds used by the API processes, PostgreSQL and this load generator. At the end every acknowledged
reading is checked to be stored exactly once.
The idle scenario opens ``--idle-streams`` WebSocket streams that send nothing and prints the API's memory per
stream (VmRSS growth).
"""
from __future__ import annotations

import asyncio
import itertools
import math
import os
import struct
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import msgspec
import psycopg
import uvloop
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (command_line, cpu_seconds, fresh_database, pct, postgres_cpu, server,  # noqa: E402
                          start_api, tree_cpu, tree_memory_mib)

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def copy_payload(start: datetime, n: int, tenant_no: int, person_no: int) -> bytes:
    """``n`` heart-rate rows one second apart in PostgreSQL's binary COPY format for the lean hot table (time,
    tenant_no, person_no, metric_no, value, source_no, utc_offset_min), made with struct so the limit measures
    PostgreSQL, not the client."""
    t0 = int((start - _PG_EPOCH).total_seconds() * 1_000_000)
    head = struct.pack("!h", 7)
    ids = struct.pack("!ihiiih", 2, tenant_no, 4, person_no, 2, 1)  # metric_no 1: heart_rate
    after = struct.pack("!ihih", 2, 1, 2, 0)                           # source_no 1, offset 0
    parts = [b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)]
    for i in range(n):
        parts.append(head + struct.pack("!iq", 8, t0 + i * 1_000_000) + ids
                     + struct.pack("!if", 4, float(60 + i % 30)) + after)
    parts.append(struct.pack("!h", -1))
    return b"".join(parts)


def storage_limit(admin_url: str, seconds: float, writers: int, batch: int) -> tuple[float, float]:
    """Rows/s that binary COPY writes into a fresh copy of the schema's hot table, ``writers`` at once, and
    PostgreSQL's CPU µs per row meanwhile."""
    db = fresh_database(admin_url, "beidou_limit", app_login=False)
    try:
        placeholder = 0x7FFFFFF0  # a person number no run reaches (and a NaN as a float4 value: never a reading)
        field = struct.pack("!ii", 4, placeholder)
        base = datetime.now(timezone.utc) - timedelta(days=400)
        # One payload per writer; each transaction gives it a new person (a plain bytes replace), so every row
        # is a new key and the client spends next to nothing.
        templates = [copy_payload(base + timedelta(seconds=w * batch), batch, 1, placeholder)
                     for w in range(writers)]
        done = [0] * writers
        people = itertools.count(1)
        stop_at = time.monotonic() + seconds

        def write(w: int) -> None:
            with psycopg.connect(db.admin_url, autocommit=True) as conn:
                while time.monotonic() < stop_at:
                    payload = templates[w].replace(field, struct.pack("!ii", 4, next(people)))
                    with conn.transaction(), conn.cursor() as cur:
                        with cur.copy("COPY readings_hot (time, tenant_no, person_no, metric_no, value, source_no, "
                                      "utc_offset_min) FROM STDIN (FORMAT BINARY)") as copy:
                            copy.write(payload)
                    done[w] += batch

        t0, pg0 = time.monotonic(), postgres_cpu(admin_url)
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = sum(done)
        return rows / (time.monotonic() - t0), (postgres_cpu(admin_url) - pg0) / max(1, rows) * 1e6
    finally:
        db.drop()


def readings(start: datetime, n: int, step_ms: int = 1000, source: str = "watch") -> list[dict]:
    return [{"metric": "heart_rate", "time": (start + timedelta(milliseconds=i * step_ms)).isoformat(),
             "value": 60 + (i % 30), "source": source} for i in range(n)]


def body_bytes(start: datetime, n: int) -> bytes:
    """A batch body, built with string formatting: the load generator shares the machine's two cores."""
    t0 = int(start.timestamp())
    items = ",".join(
        '{"metric":"heart_rate","time":"%s","value":%d,"source":"watch"}'
        % (datetime.fromtimestamp(t0 + i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), 60 + i % 30)
        for i in range(n))
    return ('{"readings":[%s]}' % items).encode()


def http_bodies(seconds: float, batch: int, concurrency: int) -> list[list[bytes]]:
    """Bodies are made before the clock starts, so the figure measures the service, not json.dumps."""
    base = datetime.now(timezone.utc) - timedelta(days=400)
    per_worker = int(seconds * 400 / concurrency) + 10
    return [[body_bytes(base + timedelta(seconds=w * 2_000_000 + k * batch), batch) for k in range(per_worker)]
            for w in range(concurrency)]


async def http_scenario(svc, tokens: list[str], seconds: float, bodies: list[list[bytes]]) -> dict:
    concurrency = len(bodies)
    latencies: list[float] = []
    accepted = 0
    stop_at = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal accepted
        token = tokens[w % len(tokens)]
        async with httpx.AsyncClient(base_url=svc.base_url, headers={
                "Authorization": f"Bearer {token}", "content-type": "application/json"}, timeout=60) as client:
            k = 0
            while time.monotonic() < stop_at and k < len(bodies[w]):
                body = bodies[w][k]
                t0 = time.perf_counter()
                response = await client.post("/v1/readings", content=body)
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()
                accepted += response.json()["accepted"]
                k += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.monotonic() - t0
    return {"accepted": accepted, "elapsed": elapsed, "latencies": latencies}


def ws_frames(streams: int, seconds: float, rate: float, frame_size: int, source: str = "watch") -> list[list[str]]:
    """Every stream's frames, made before the clock starts (the load generator shares the two cores). Each
    stream sends live readings, ``1 / rate`` seconds apart, ending about now: what a watch streaming its heart
    rate sends (a reading for an hour already past would also mark that hour of the chart roll-up again). Each
    scenario of a sweep names its own ``source``, so their readings never share a key."""
    count = int(seconds * rate / frame_size) + 2
    base_ms = int((time.time() - count * frame_size / rate - 30) * 1000)
    step_ms = 1000 / rate
    frames = []
    for _ in range(streams):
        own = []
        for seq in range(count):
            t0 = base_ms + seq * frame_size * step_ms
            items = ",".join('{"metric":"heart_rate","time":"%s","value":%d,"source":"%s"}'
                             % (datetime.fromtimestamp((t0 + i * step_ms) / 1000, timezone.utc)
                                .isoformat(timespec="milliseconds").replace("+00:00", "Z"), 60 + i % 30, source)
                             for i in range(frame_size))
            own.append('{"seq":%d,"readings":[%s]}' % (seq, items))
        frames.append(own)
    return frames


async def ws_scenario(svc, tokens: list[str], seconds: float, rate: float, frame_size: int,
                      frames: list[list[str]]) -> dict:
    """Each stream sends ``rate`` readings/s in frames of ``frame_size``, paced, and waits for acks. Every stream
    is connected before any sends (a thousand handshakes are not the sustained load being measured); the clock
    starts then."""
    decode = msgspec.json.Decoder().decode
    latencies: list[float] = []
    accepted = 0
    errors = slow_down = due = 0
    interval = frame_size / rate
    connected = 0
    go = asyncio.Event()
    stop_at = 0.0

    async def stream(i: int) -> None:
        sent: dict[int, float] = {}
        own = frames[i]
        async with websockets.connect(svc.ws_url, additional_headers={"Authorization": f"Bearer {tokens[i]}"},
                                      max_queue=64, open_timeout=60, compression=None) as ws:
            async def reader() -> None:
                nonlocal accepted, errors, slow_down
                async for message in ws:
                    m = decode(message)
                    if m["type"] == "ack":
                        latencies.append(time.perf_counter() - sent.pop(m["seq"]))
                        accepted += m["accepted"]
                    elif m["type"] == "error":
                        errors += 1
                        sent.pop(m.get("seq"), None)
                    elif m["type"] == "slow_down":
                        slow_down += 1
            task = asyncio.create_task(reader())
            nonlocal connected, stop_at, t0
            connected += 1
            if connected == len(tokens):
                t0 = time.monotonic()
                stop_at = t0 + seconds
                go.set()
            await go.wait()
            await asyncio.sleep((i % 100) / 100 * interval)  # spread the streams over the interval
            nonlocal due
            due += min(len(own), max(0, math.ceil((stop_at - time.monotonic()) / interval)))  # frames the pace asks
            seq = 0
            next_at = time.monotonic()
            while time.monotonic() < stop_at and seq < len(own):
                sent[seq] = time.perf_counter()
                await ws.send(own[seq])
                seq += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            deadline = time.monotonic() + 30
            while sent and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            task.cancel()

    t0 = time.monotonic()
    await asyncio.gather(*(stream(i) for i in range(len(tokens))))
    # Throughput over the sending window (the final wait for the last acks is not counted as sending time).
    return {"accepted": accepted, "elapsed": min(time.monotonic() - t0, seconds + interval), "latencies": latencies,
            "errors": errors, "slow_down": slow_down, "due": due}


async def idle_scenario(svc, tokens: list[str], streams: int) -> dict:
    """Open ``streams`` WebSocket streams that send nothing; the API's memory growth per stream."""
    before = tree_memory_mib(svc.process.pid, "VmRSS:")
    sem = asyncio.Semaphore(200)
    opened: list = []

    async def one(i: int) -> None:
        async with sem:
            opened.append(await websockets.connect(
                svc.ws_url, additional_headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                open_timeout=120, compression=None, ping_interval=None))

    await asyncio.gather(*(one(i) for i in range(streams)))
    await asyncio.sleep(2)
    after = tree_memory_mib(svc.process.pid, "VmRSS:")
    for ws in opened:
        await ws.close()
    return {"streams": len(opened), "before": before, "after": after}


def report(name: str, result: dict, svc, cpu_before: tuple, cpu_after: tuple, limit: float | None) -> None:
    lat = result["latencies"]
    api_cpu, pg_cpu, me_cpu, commits = (a - b for a, b in zip(cpu_after, cpu_before))
    rate = result["accepted"] / result["elapsed"]
    print(f"\n== {name}")
    print(f"readings accepted      {result['accepted']:>12,}  in {result['elapsed']:.1f} s")
    print(f"throughput             {rate:>12,.0f} readings/s"
          + (f"   = {rate / limit:.2f} of the storage limit" if limit else ""))
    print(f"ack latency p50 / p99  {pct(lat, 0.5) * 1000:>8.1f} / {pct(lat, 0.99) * 1000:.1f} ms   "
          f"({len(lat):,} acks{', errors: %d' % result['errors'] if result.get('errors') else ''}"
          f"{', slow_down: %d' % result['slow_down'] if result.get('slow_down') else ''})")
    print(f"DB transactions        {commits:>12,}  (every transaction in the database; "
          f"{result['accepted'] / max(1, commits):,.0f} readings per transaction)")
    print(f"API peak memory        {tree_memory_mib(svc.process.pid):>12.0f} MiB (VmHWM, all API processes)")
    print(f"CPU s: API {api_cpu:.1f}, PostgreSQL {pg_cpu:.1f}, load generator {me_cpu:.1f} "
          f"(of {result['elapsed'] * os.cpu_count():.0f} available)"
          + (f"; CPU µs per reading: API {api_cpu / result['accepted'] * 1e6:.0f}, "
             f"PostgreSQL {pg_cpu / result['accepted'] * 1e6:.0f}" if result["accepted"] else ""))


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--only", choices=["limit", "http", "ws", "idle"], help="run one scenario (the storage "
                        "limit is measured first unless --no-limit)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=0, help="API processes (0: one per CPU core)")
    parser.add_argument("--batch", type=int, default=500, help="readings per HTTP batch")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent WebSocket streams")
    parser.add_argument("--stream-rate", type=float, default=20, help="readings/s per stream")
    parser.add_argument("--stream-rates", default=None,
                        help="several rates per stream, e.g. 10,20,40: one WebSocket run each, then the highest "
                             "sustained total rate (≥ 98 %% of the frames the pace called for acknowledged, "
                             "ack p99 < 250 ms)")
    parser.add_argument("--frame-size", type=int, default=10, help="readings per WebSocket frame")
    parser.add_argument("--idle-streams", type=int, default=0, help="idle WebSocket streams to open (idle scenario)")
    parser.add_argument("--limit-writers", type=int, default=2, help="COPY writers measuring the storage limit")
    parser.add_argument("--limit-batch", type=int, default=5000, help="rows per COPY transaction for the limit")
    parser.add_argument("--no-limit", action="store_true", help="skip measuring the storage limit")
    args = parser.parse_args()

    admin, _ = server()

    limit = None
    if not args.no_limit:
        print(f"storage limit: binary COPY into a fresh schema, {args.limit_writers} writers, "
              f"{args.limit_batch:,} rows per transaction, {args.seconds:.0f} s ...", flush=True)
        limit, pg_us = storage_limit(admin, args.seconds, args.limit_writers, args.limit_batch)
        print(f"\n== storage limit\nthroughput             {limit:>12,.0f} rows/s   "
              f"(PostgreSQL CPU {pg_us:.1f} µs per row)")
        if args.only == "limit":
            return

    db = fresh_database(admin, "beidou_bench")
    workers = args.workers or os.cpu_count() or 1
    extra = {k: v for k, v in os.environ.items() if k.startswith("BEIDOU_") and k not in ("BEIDOU_TEST_PG_PORT",)}
    svc = start_api(db, "bench", **{"BEIDOU_POOL_MAX": "20", **extra, "BEIDOU_API_WORKERS": str(workers)})
    print(f"API: {workers} process(es)", flush=True)
    try:
        tenant = svc.new_tenant("bench")
        scenarios = [args.only] if args.only else ["http", "ws"] + (["idle"] if args.idle_streams else [])
        n_people = max(args.streams if "ws" in scenarios else 0, args.concurrency, 1)
        tokens = [tenant.person_token(f"p{i}") for i in range(n_people)]
        print(f"granting consent to {n_people} people ...", flush=True)

        async def consent_all() -> None:
            sem = asyncio.Semaphore(20)
            async with httpx.AsyncClient(base_url=svc.base_url, timeout=60) as client:
                async def one(t: str) -> None:
                    async with sem:
                        r = await client.put("/v1/me/consents/heart_rate", headers={"Authorization": f"Bearer {t}"})
                        r.raise_for_status()
                await asyncio.gather(*(one(t) for t in tokens))
        asyncio.run(consent_all())

        def cpu() -> tuple:
            with psycopg.connect(db.admin_url, autocommit=True) as conn:
                commits = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                       ).fetchone()[0]
            return tree_cpu(svc.process.pid), postgres_cpu(admin), cpu_seconds(os.getpid()), commits

        total_acked = 0
        if "http" in scenarios:
            print(f"HTTP: {args.concurrency} clients, batches of {args.batch}, {args.seconds:.0f} s ...", flush=True)
            bodies = http_bodies(args.seconds, args.batch, args.concurrency)
            before = cpu()
            result = uvloop.run(http_scenario(svc, tokens, args.seconds, bodies))
            report(f"HTTP batches of {args.batch}, {args.concurrency} concurrent clients", result, svc, before, cpu(),
                   limit)
            total_acked += result["accepted"]
        if "ws" in scenarios:
            rates = [float(r) for r in args.stream_rates.split(",")] if args.stream_rates else [args.stream_rate]
            sustained = []
            for k, rate in enumerate(rates):
                print(f"\nWebSocket: {args.streams} streams × {rate:g} readings/s, frames of "
                      f"{args.frame_size}, {args.seconds:.0f} s ...", flush=True)
                frames = ws_frames(args.streams, args.seconds, rate, args.frame_size, source=f"watch-{k + 1}")
                before = cpu()
                result = uvloop.run(ws_scenario(svc, tokens[:args.streams], args.seconds, rate,
                                                 args.frame_size, frames))
                offered = args.streams * rate
                report(f"{args.streams} WebSocket streams × {rate:g} readings/s (offered {offered:,.0f}/s)",
                       result, svc, before, cpu(), limit)
                total_acked += result["accepted"]
                # Kept up: (nearly) every frame the pace called for was sent and acknowledged, quickly.
                if len(result["latencies"]) >= 0.98 * result["due"] and pct(result["latencies"], 0.99) < 0.25:
                    sustained.append(offered)
            if len(rates) > 1:
                print("\nhighest sustained WebSocket rate: "
                      + (f"{max(sustained):,.0f} readings/s" if sustained else "none of the rates tried")
                      + (f" = {max(sustained) / limit:.2f} of the storage limit" if sustained and limit else ""))
        if "idle" in scenarios:
            count = args.idle_streams or 1000
            print(f"\nidle: opening {count:,} streams ...", flush=True)
            result = uvloop.run(idle_scenario(svc, tokens, count))
            grown = result["after"] - result["before"]
            print(f"\n== {result['streams']:,} idle WebSocket streams\nAPI memory             "
                  f"{result['before']:.0f} → {result['after']:.0f} MiB (VmRSS, all API processes): "
                  f"{grown * 1024 / max(1, result['streams']):.1f} KiB per idle stream")
        with psycopg.connect(db.admin_url) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (person_no, metric_no, source_no, time)) FROM readings_hot").fetchone()
        ok = stored == distinct == total_acked
        print(f"\nacknowledged {total_acked:,}, stored {stored:,} ({distinct:,} distinct): "
              f"{'OK, each acknowledged reading stored exactly once' if ok else 'MISMATCH'}")
    finally:
        svc.stop()
        db.drop()


if __name__ == "__main__":
    main()
