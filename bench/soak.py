"""Soak: 1,000 concurrent streams for ten minutes while the care team works, against real processes.

    .venv/bin/python bench/soak.py                    # 10 minutes, 1,000 streams (950 live + 50 replaying)
    .venv/bin/python bench/soak.py --minutes 2 --streams 200 --worker-processes 2

A fresh database on the local test cluster (BEIDOU_TEST_PG_PORT), a `beidou api` and a
`beidou worker --processes N` (pushes go to the FCM emulator), and from this process:
  * background streams: each sends a frame of readings every --frame-every seconds, at wall-clock time;
  * sentinel people (--sentinels): generated histories, some falling ill near the end, replayed at an
    accelerated clock through the same simulated phones as `beidou demo`, so alerts and pushes happen:
    they are backfilling weeks of history all the time;
  * live people (--live): three weeks of history uploaded at the start, then streaming as it happens
    (each a few minutes to an hour behind the wall clock, as a watch syncing now and then); each falls ill
    so that the night that completes the illness ends while the soak runs, spread over it;
  * a care agent working the queue (claim, reach out, close) and a second one reading charts.
Printed every 30 s: acknowledged readings, the API's memory; at the end: throughput, ack latency
p50/p99, reading-to-alert latency p50/p99 for live and for backfilling people separately, errors, memory
first vs last minute, and acked == stored.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (command_line, cpu_seconds, fresh_database, pct, postgres_cpu, server,  # noqa: E402
                          start_api, tree_cpu)
from tests.support import start_process, stop_process  # noqa: E402


class LaggedClock:
    """The wall clock, ``lag_s`` behind: a phone that sends each reading that long after it was taken."""

    def __init__(self, lag_s: float) -> None:
        self.lag_s = lag_s

    def now(self) -> float:
        return time.time() - self.lag_s


def live_person(name: str, *, seed: int, days: int, alert_at: float):
    """A person streaming live whose illness completes at ``alert_at`` (wall clock): ``(person, lag_s)``.

    The detector closes a night at 07:00 local time, so the person gets a whole-hour time zone in which the
    whole UTC hour before ``alert_at`` is 07:00, and a phone that sends readings ``alert_at`` minus that
    hour behind (under an hour: fresh, not backfill). Ill from the local midnight a day before: a feverish
    night, a quieter feverish day and a second feverish night, which ends in the alert."""
    from app.demo.people import synthetic_person
    night_end = alert_at - alert_at % 3600
    offset = (7 - datetime.fromtimestamp(night_end, timezone.utc).hour) % 24
    if offset > 14:
        offset -= 24
    tz = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    person = synthetic_person(name, seed=seed, days=days, tz=tz,
                              now=datetime.fromtimestamp(night_end + 3 * 3600, timezone.utc))
    ill_from = night_end - 31 * 3600
    person.readings = [(ts, m, (round(v + 10, 1) if m == "heart_rate" else round(v * 0.3))) if ts >= ill_from
                       else (ts, m, v) for ts, m, v in person.readings]
    person.story = "streams live, falls ill during the soak"
    return person, alert_at - night_end


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counters:
    def __init__(self) -> None:
        self.acked = 0
        self.sent = 0
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.reconnects = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def background_stream(url: str, token: str, counters: Counters, stop_at: float, frame_every: float,
                            per_frame: int, index: int) -> None:
    rng = random.Random(index)
    headers = {"Authorization": f"Bearer {token}"}
    sent_at: dict[int, float] = {}
    seq = 0
    await asyncio.sleep(rng.uniform(0, frame_every))
    while time.monotonic() < stop_at:
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=60, max_queue=32) as ws:
                async def reader() -> None:
                    async for message in ws:
                        m = json.loads(message)
                        if m.get("type") == "ack":
                            counters.latencies.append(time.perf_counter() - sent_at.pop(m["seq"]))
                            counters.acked += m["accepted"] + m["duplicate"]
                        elif m.get("type") == "error":
                            counters.error(m.get("code", "error"))
                task = asyncio.create_task(reader())
                while time.monotonic() < stop_at:
                    seq += 1
                    now = datetime.now(timezone.utc)
                    readings = [{"metric": "heart_rate", "value": round(rng.gauss(72, 6), 1), "source": "soak",
                                 "time": (now - timedelta(milliseconds=(per_frame - i) * 200)).isoformat()}
                                for i in range(per_frame)]
                    sent_at[seq] = time.perf_counter()
                    await ws.send(json.dumps({"seq": seq, "readings": readings}))
                    counters.sent += per_frame
                    await asyncio.sleep(frame_every)
                deadline = time.monotonic() + 30
                while sent_at and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                task.cancel()
                return
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            counters.reconnects += 1
            counters.error(type(exc).__name__)
            await asyncio.sleep(1)


async def chart_reader(base_url: str, token: str, people: list[str], counters: Counters, stop_at: float) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        while time.monotonic() < stop_at:
            person = random.choice(people)
            response = await http.get(f"/v1/care/people/{person}/readings", params={"metric": "heart_rate",
                                                                                   "bucket": "1h", "why": "soak"})
            if response.status_code != 200:
                counters.error(f"chart_{response.status_code}")
            await asyncio.sleep(1.0)


async def run(args, svc, tenant, emulator) -> dict:
    from app.auth import issue_token
    from app.demo.people import synthetic_person
    from app.demo.simulator import CareAgent, Clock, Phone, Stats

    counters = Counters()
    settings = svc.settings
    token = lambda subject, role="policyholder": issue_token(settings, tenant_id=tenant.id, subject=subject,  # noqa: E731
                                                             role=role, ttl_s=24 * 3600)
    background = args.streams - args.sentinels
    print(f"granting consent to {background} background people ...", flush=True)
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=60) as http:
        sem = asyncio.Semaphore(20)

        async def consent(i: int) -> None:
            async with sem:
                r = await http.put("/v1/me/consents/heart_rate", headers={"Authorization": f"Bearer {token(f'bg-{i}')}"})
                r.raise_for_status()
        await asyncio.gather(*(consent(i) for i in range(background)))

    stop_at = time.monotonic() + args.minutes * 60  # the soak's clock starts once every stream may send
    rng = random.Random(7)
    sentinels = [synthetic_person(f"sentinel-{i:03d}", seed=rng.randrange(1 << 30), days=args.days,
                                  ill=i % 3 == 0) for i in range(args.sentinels)]
    # The sentinels' histories replay in about 80 % of the soak, so illnesses surface while it runs.
    speed = args.days * 86400 / (args.minutes * 60 * 0.8)
    clock = Clock(start=min(p.readings[0][0] for p in sentinels), speed=speed)
    stats = Stats()
    tasks = [asyncio.create_task(background_stream(svc.ws_url, token(f"bg-{i}"), counters, stop_at,
                                                   args.frame_every, args.per_frame, i)) for i in range(background)]
    phones = [Phone(p, token(p.name), svc.base_url, emulator, clock, stats, rng=random.Random(i))
              for i, p in enumerate(sentinels)]
    # Live people: their illnesses complete from a minute after the start (their history uploaded by then)
    # to 80 % of the soak, spread evenly.
    soak_s = args.minutes * 60
    first, last = time.time() + min(90.0, soak_s * 0.3), time.time() + soak_s * 0.8
    for i in range(args.live):
        at = first + (last - first) * (i / max(1, args.live - 1))
        person, lag = live_person(f"live-{i:03d}", seed=rng.randrange(1 << 30), days=args.live_days, alert_at=at)
        phones.append(Phone(person, token(person.name), svc.base_url, emulator, LaggedClock(lag), stats,
                            rng=random.Random(10_000 + i)))
    extra = [asyncio.create_task(phone.run()) for phone in phones]
    extra.append(asyncio.create_task(CareAgent(svc.base_url, token("agent-soak", "care_agent"), rng=rng).run()))
    extra.append(asyncio.create_task(chart_reader(svc.base_url, token("sup-charts", "care_supervisor"),
                                                  [p.name for p in sentinels], counters, stop_at)))
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    while time.monotonic() < stop_at:
        await asyncio.sleep(10)
        memory.append((time.monotonic() - started, rss_mib(svc.process.pid)))
        if len(memory) % 3 == 0:
            print(f"[{memory[-1][0]:5.0f} s] acked {counters.acked + stats.readings_acked:>10,}  "
                  f"API RSS {memory[-1][1]:6.0f} MiB  errors {sum(counters.errors.values())}  "
                  f"pushes seen {stats.pushes_seen}", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in extra:
        task.cancel()
    await asyncio.gather(*extra, return_exceptions=True)
    elapsed = time.monotonic() - started
    return {"counters": counters, "stats": stats, "memory": memory, "elapsed": elapsed, "speed": speed}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams in all")
    parser.add_argument("--sentinels", type=int, default=50, help="of which replaying generated histories")
    parser.add_argument("--days", type=int, default=30, help="history each sentinel replays")
    parser.add_argument("--frame-every", type=float, default=2.0, help="seconds between background frames")
    parser.add_argument("--per-frame", type=int, default=10, help="readings per background frame")
    parser.add_argument("--live", type=int, default=20, help="people streaming live who fall ill during the soak")
    parser.add_argument("--live-days", type=int, default=21, help="history each live person uploads first")
    parser.add_argument("--worker-processes", type=int, default=os.cpu_count() or 1,
                        help="`beidou worker --processes N` (default: the machine's cores)")
    args = parser.parse_args()

    from alerts.push.emulator import FcmEmulator
    admin, _ = server(local=True)
    db = fresh_database(admin, "beidou_soak")
    with FcmEmulator() as emulator:
        svc = start_api(db, "soak", BEIDOU_POOL_MAX="20")
        worker = start_process(svc, "worker", "--processes", str(args.worker_processes),
                               BEIDOU_FCM_ENDPOINT=emulator.url, BEIDOU_FCM_PROJECT_ID="soak",
                               BEIDOU_OUTREACH_WEEKLY_CAP="100")
        try:
            tenant = svc.new_tenant("soak")
            cpu0 = (cpu_seconds(svc.process.pid), tree_cpu(worker.pid), postgres_cpu(admin))
            result = asyncio.run(run(args, svc, tenant, emulator))
            cpu1 = (cpu_seconds(svc.process.pid), tree_cpu(worker.pid), postgres_cpu(admin))
            from app.summary import summarise
            summary = summarise(db.app_url, tenant.id)
            by_group = alert_latency_by_group(db.admin_url, tenant.id)
            with psycopg.connect(db.admin_url) as conn:
                stored = conn.execute("SELECT count(*) FROM readings_hot").fetchone()[0]
            report(args, result, summary, by_group, stored, cpu0, cpu1, emulator)
        finally:
            stop_process(worker)
            svc.stop()
            db.drop()


def alert_latency_by_group(admin_url: str, tenant_id) -> dict[str, list[tuple[float, float, float]]]:
    """Per alert, for live people (``live-``) and for backfilling ones (the sentinels replaying their
    histories): ``(reading → alert, reading → event stored, event stored → alert)`` in seconds, measured
    from the arrival of the reading that revealed the alert's first event. A live person's alert revealed by
    the history they uploaded at the start (its episode ended more than six hours before that reading
    arrived: the worker's backfill) is counted apart."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            """SELECT DISTINCT ON (a.id) p.external_id, extract(epoch FROM a.opened_at - e.source_received_at),
                      extract(epoch FROM e.created_at - e.source_received_at),
                      extract(epoch FROM a.opened_at - e.created_at),
                      e.source_received_at - e.end_time > interval '6 hours'
                 FROM alerts a JOIN people p ON p.id = a.person_id
                 JOIN alert_evidence v ON v.alert_id = a.id JOIN anomaly_events e ON e.id = v.anomaly_event_id
                WHERE a.tenant_id = %s AND e.source_received_at IS NOT NULL
                  AND e.created_at <= a.opened_at + interval '1 second'
                ORDER BY a.id, e.source_received_at""", (tenant_id,)).fetchall()
    groups: dict[str, list[tuple[float, float, float]]] = {"live": [], "live history": [], "backfilling": []}
    for person, *latency, old in rows:
        group = ("live history" if old else "live") if person.startswith("live-") else "backfilling"
        groups[group].append(tuple(map(float, latency)))
    return groups


def report(args, result, summary, by_group, stored, cpu0, cpu1, emulator) -> None:
    c, stats, memory = result["counters"], result["stats"], result["memory"]
    acked = c.acked + stats.readings_acked
    first = [m for t, m in memory if t <= 60]
    last = [m for t, m in memory if t >= memory[-1][0] - 60]
    api_cpu, worker_cpu, pg_cpu = (b - a for a, b in zip(cpu0, cpu1))
    print(f"\n== Soak: {args.streams} streams ({args.streams - args.sentinels} live + {args.sentinels} replaying at "
          f"{result['speed']:,.0f}x) + {args.live} live people falling ill, {result['elapsed'] / 60:.1f} min, "
          f"{args.worker_processes} worker processes, care API in use")
    print(f"readings acknowledged   {acked:>12,}  ({acked / result['elapsed']:,.0f}/s); stored {stored:,}: "
          f"{'OK' if stored == acked else 'MISMATCH'}")
    print(f"ack latency p50 / p99   {pct(c.latencies, 0.5) * 1000:8.1f} / {pct(c.latencies, 0.99) * 1000:.1f} ms "
          f"(background frames, {len(c.latencies):,})")
    lat = summary.latency_p50_s, summary.latency_p99_s
    print(f"reading → alert p50/p99 {'n/a' if lat[0] is None else f'{lat[0]:.2f} / {lat[1]:.2f} s'} "
          f"({summary.alerts_opened} alerts, {summary.pushes_sent} pushes sent, "
          f"{sum(1 for m in emulator.messages() if m['outcome'] == 'delivered')} delivered, {stats.replies} answers)")
    for group, alerts in by_group.items():
        def figures(i: int) -> str:
            values = [a[i] for a in alerts]
            return f"{pct(values, 0.5):.2f} / {pct(values, 0.99):.2f} s" if values else "n/a"
        note = f" of {args.live} people" if group == "live" else ""
        print(f"  {group:<12} p50/p99 {figures(0)} ({len(alerts)} alerts{note}); of which detection "
              f"{figures(1)}, alerting {figures(2)}")
    print(f"errors                  {sum(c.errors.values())} {c.errors or ''} reconnects {c.reconnects}")
    print(f"API memory (RSS)        first minute {sum(first) / len(first):.0f} MiB, last minute "
          f"{sum(last) / len(last):.0f} MiB, peak {max(m for _, m in memory):.0f} MiB")
    print(f"CPU s: API {api_cpu:.0f}, worker {worker_cpu:.0f}, PostgreSQL {pg_cpu:.0f} "
          f"of {result['elapsed'] * os.cpu_count():.0f} available")


if __name__ == "__main__":
    main()
