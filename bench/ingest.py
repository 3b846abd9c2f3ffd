"""Ingest benchmark: drives a real service process over loopback and prints what it sustains.

    .venv/bin/python bench/ingest.py                       # both scenarios, 20 s each
    .venv/bin/python bench/ingest.py --only http --seconds 30
    .venv/bin/python bench/ingest.py --only ws --streams 1000 --stream-rate 20

It starts its own `beidou api` process on a fresh database of the local test cluster (or of
BEIDOU_TEST_ADMIN_URL's server), so nothing else competes for the service; the load comes from this
separate process. Printed per scenario: readings/s accepted, acknowledgement latency p50/p99, the API
process's peak memory (VmHWM), and CPU seconds used by the API process, PostgreSQL and this load
generator (where the time goes). Acknowledged readings are counted in the database at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import msgspec
import psycopg
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import TestDatabase, start_service, use_app_password  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
    return total


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


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


def ws_frames(streams: int, seconds: float, rate: float, frame_size: int) -> list[list[str]]:
    """Every stream's frames, made before the clock starts (the load generator shares the two cores)."""
    base = int((datetime.now(timezone.utc) - timedelta(days=20)).timestamp())
    count = int(seconds * rate / frame_size) + 2
    frames = []
    for _ in range(streams):
        own = []
        for seq in range(count):
            t0 = base + seq * frame_size
            items = ",".join('{"metric":"heart_rate","time":"%s","value":%d,"source":"watch"}'
                             % (datetime.fromtimestamp(t0 + i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                60 + i % 30) for i in range(frame_size))
            own.append('{"seq":%d,"readings":[%s]}' % (seq, items))
        frames.append(own)
    return frames


async def ws_scenario(svc, tokens: list[str], seconds: float, rate: float, frame_size: int,
                      frames: list[list[str]]) -> dict:
    """Each stream sends ``rate`` readings/s in frames of ``frame_size``, paced, and waits for acks."""
    decode = msgspec.json.Decoder().decode
    latencies: list[float] = []
    accepted = 0
    errors = 0
    interval = frame_size / rate
    stop_at = time.monotonic() + seconds

    async def stream(i: int) -> None:
        sent: dict[int, float] = {}
        own = frames[i]
        async with websockets.connect(svc.ws_url, additional_headers={"Authorization": f"Bearer {tokens[i]}"},
                                      max_queue=64, open_timeout=60, compression=None) as ws:
            async def reader() -> None:
                nonlocal accepted, errors
                async for message in ws:
                    m = decode(message)
                    if m["type"] == "ack":
                        latencies.append(time.perf_counter() - sent.pop(m["seq"]))
                        accepted += m["accepted"]
                    elif m["type"] == "error":
                        errors += 1
                        sent.pop(m.get("seq"), None)
            task = asyncio.create_task(reader())
            await asyncio.sleep((i % 100) / 100 * interval)  # spread the streams over the interval
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
            "errors": errors}


def report(name: str, result: dict, svc, cpu_before: tuple, cpu_after: tuple) -> None:
    lat = result["latencies"]
    api_cpu, pg_cpu, me_cpu = (a - b for a, b in zip(cpu_after, cpu_before))
    print(f"\n== {name}")
    print(f"readings accepted      {result['accepted']:>12,}  in {result['elapsed']:.1f} s")
    print(f"throughput             {result['accepted'] / result['elapsed']:>12,.0f} readings/s")
    print(f"ack latency p50 / p99  {pct(lat, 0.5) * 1000:>8.1f} / {pct(lat, 0.99) * 1000:.1f} ms   "
          f"({len(lat):,} acks{', errors: %d' % result['errors'] if result.get('errors') else ''})")
    print(f"API peak memory        {peak_rss_mib(svc.process.pid):>12.0f} MiB (VmHWM)")
    print(f"CPU s: API {api_cpu:.1f}, PostgreSQL {pg_cpu:.1f}, load generator {me_cpu:.1f} "
          f"(of {result['elapsed'] * os.cpu_count():.0f} available)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["http", "ws"], help="run one scenario")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=500, help="readings per HTTP batch")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent WebSocket streams")
    parser.add_argument("--stream-rate", type=float, default=20, help="readings/s per stream")
    parser.add_argument("--frame-size", type=int, default=10, help="readings per WebSocket frame")
    args = parser.parse_args()

    from app.core import localdb
    admin = os.environ.get("BEIDOU_TEST_ADMIN_URL")
    if not admin:
        cluster = localdb.start(localdb.LocalCluster(ROOT / ".data" / "test-pg", 55433))
        admin = cluster.admin_url("postgres")
        use_app_password(cluster.credentials()[localdb.APP_ROLE])
    from app.core import migrate
    db = TestDatabase.create(admin, f"beidou_bench_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(db.admin_url)
    db.ensure_app_login()
    data_dir = ROOT / ".data" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    svc = start_service(db, "bench-" + uuid.uuid4().hex, data_dir, BEIDOU_POOL_MAX="20")
    try:
        tenant = svc.new_tenant("bench")
        n_people = max(args.streams, args.concurrency)
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
            return cpu_seconds(svc.process.pid), postgres_cpu(), cpu_seconds(os.getpid())

        total_acked = 0
        if args.only in (None, "http"):
            print(f"HTTP: {args.concurrency} clients, batches of {args.batch}, {args.seconds:.0f} s ...", flush=True)
            bodies = http_bodies(args.seconds, args.batch, args.concurrency)
            before = cpu()
            result = asyncio.run(http_scenario(svc, tokens, args.seconds, bodies))
            report(f"HTTP batches of {args.batch}, {args.concurrency} concurrent clients", result, svc, before, cpu())
            total_acked += result["accepted"]
        if args.only in (None, "ws"):
            print(f"\nWebSocket: {args.streams} streams × {args.stream_rate:g} readings/s, frames of "
                  f"{args.frame_size}, {args.seconds:.0f} s ...", flush=True)
            frames = ws_frames(args.streams, args.seconds, args.stream_rate, args.frame_size)
            before = cpu()
            result = asyncio.run(ws_scenario(svc, tokens[:args.streams], args.seconds, args.stream_rate,
                                             args.frame_size, frames))
            report(f"{args.streams} WebSocket streams", result, svc, before, cpu())
            total_acked += result["accepted"]
        with psycopg.connect(db.admin_url) as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        print(f"\nacknowledged {total_acked:,}, stored {stored:,}: {'OK' if stored == total_acked else 'MISMATCH'}")
    finally:
        svc.stop()
        db.drop()


if __name__ == "__main__":
    main()
