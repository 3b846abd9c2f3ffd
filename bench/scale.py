"""Scale-out simulation: several `beidou api` and `beidou worker` processes against one database and a replica.

    .venv/bin/python bench/scale.py --smoke                 # 1 and 2 API processes, 3 s each (checks it works)
    .venv/bin/python bench/scale.py --max-api 4 --workers-per-api 1 --seconds 30   # on a quiet machine

On a fresh database of the local test cluster (BEIDOU_TEST_PG_PORT, or BEIDOU_TEST_ADMIN_URL's server) with a
streaming replica (`pg_basebackup` + hot standby, as the replica tests do; ``--no-replica`` to leave it out),
for k = 1 … ``--max-api``: starts k API processes (each with BEIDOU_READ_DATABASE_URL = the replica) and
k × ``--workers-per-api`` detection workers, then for ``--seconds`` drives, from this process,
``--writers`` HTTP clients posting batches of ``--batch`` heart-rate readings and ``--readers`` care-team
clients reading 30-day charts, spread over the API processes round robin. Printed per step: readings/s
accepted, chart reads/s, their p50/p99, and whether the replica served (its lag when checked).

The load generator runs on the same machine: on two cores it competes with what it measures, so the printed
figures are a floor; docs/scaling.md says how to read them.
"""
from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import command_line, fresh_database, pct, server  # noqa: E402
from tests.support import free_port, start_process, start_service, stop_process, with_db  # noqa: E402


def body(person_seq: int, start: float, n: int) -> bytes:
    items = ",".join('{"metric":"heart_rate","time":"%s","value":%d,"source":"watch"}'
                     % (datetime.fromtimestamp(start + i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        60 + (i + person_seq) % 30) for i in range(n))
    return ('{"readings":[%s]}' % items).encode()


async def drive(urls: list[str], person_tokens: list[str], staff_token: str, people: list[str], *, seconds: float,
                writers: int, readers: int, batch: int, clocks: list[float]) -> dict:
    """One step's load. ``clocks``: per person, the time their next batch starts at (moved on here, so the
    next step goes on where this one stopped)."""
    stop_at = time.monotonic() + seconds
    accepted, write_ms, read_ms, failed = [0], [], [], {}

    async def writer(k: int) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            n = 0
            while time.monotonic() < stop_at:
                url = urls[(k + n) % len(urls)]
                who = (k + n * writers) % len(person_tokens)
                start = clocks[who]
                clocks[who] += batch
                began = time.perf_counter()
                answer = await client.post(url + "/v1/readings", content=body(who, start, batch),
                                           headers={"Authorization": f"Bearer {person_tokens[who]}",
                                                    "Content-Type": "application/json"})
                write_ms.append((time.perf_counter() - began) * 1000)
                if answer.status_code == 200:
                    result = answer.json()
                    accepted[0] += result["accepted"]
                    if result["rejected"] or result["duplicate"]:
                        failed["refused or duplicate readings"] = (
                            failed.get("refused or duplicate readings", 0) + result["rejected"] + result["duplicate"])
                else:
                    failed[answer.status_code] = failed.get(answer.status_code, 0) + 1
                n += 1

    async def reader(k: int) -> None:
        async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {staff_token}"}) as client:
            n = 0
            end = datetime.now(timezone.utc)
            while time.monotonic() < stop_at:
                url = urls[(k + n) % len(urls)]
                began = time.perf_counter()
                answer = await client.get(url + f"/v1/care/people/{people[n % len(people)]}/readings",
                                          params={"metric": "heart_rate", "bucket": "1h",
                                                  "from": (end - timedelta(days=30)).isoformat(),
                                                  "to": end.isoformat(), "reason": "capacity test"})
                if answer.status_code == 200:
                    read_ms.append((time.perf_counter() - began) * 1000)
                else:
                    failed[answer.status_code] = failed.get(answer.status_code, 0) + 1
                n += 1

    began = time.monotonic()
    await asyncio.gather(*[writer(k) for k in range(writers)], *[reader(k) for k in range(readers)])
    elapsed = time.monotonic() - began
    return {"readings_s": accepted[0] / elapsed, "write_p50": pct(write_ms, 0.5), "write_p99": pct(write_ms, 0.99),
            "reads_s": len(read_ms) / elapsed, "read_p50": pct(read_ms, 0.5), "read_p99": pct(read_ms, 0.99),
            "failed": failed}


def replica_lag(url: str | None) -> str:
    if not url:
        return "none"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            lag = conn.execute("SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
                               "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END").fetchone()[0]
        return f"{float(lag):.1f} s"
    except psycopg.Error as exc:
        return f"down ({str(exc).strip()[:60]})"


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--max-api", type=int, default=3, help="API processes at the last step")
    parser.add_argument("--workers-per-api", type=int, default=1, help="detection workers per API process")
    parser.add_argument("--seconds", type=float, default=20, help="load per step")
    parser.add_argument("--writers", type=int, default=8, help="concurrent ingest clients")
    parser.add_argument("--readers", type=int, default=4, help="concurrent care-chart clients")
    parser.add_argument("--batch", type=int, default=500, help="readings per POST")
    parser.add_argument("--people", type=int, default=50, help="policyholders sending")
    parser.add_argument("--no-replica", action="store_true", help="reads from the primary only")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run that checks the bench works")
    args = parser.parse_args()
    if args.smoke:
        args.max_api, args.seconds, args.writers, args.readers, args.people = 2, 3, 2, 1, 4

    from app.core import localdb
    admin, cluster = server()
    db = fresh_database(admin, "beidou_scale")
    replica = None
    services, workers = [], []
    try:
        read_url = replica_admin = None
        if not args.no_replica:
            if cluster is None:
                sys.exit("--no-replica is needed with BEIDOU_TEST_ADMIN_URL (the replica is made from the local "
                         "test cluster)")
            replica = localdb.start_replica(cluster, cluster.root.parent / f"{cluster.root.name}-scale-replica",
                                            free_port())
            app_user = db.app_url.split("//", 1)[1].split("@", 1)[0]
            user, password = app_user.split(":", 1)
            read_url = with_db(replica.url(localdb.APP_ROLE, db.name), db.name, user, password)
            replica_admin = with_db(replica.admin_url(db.name), db.name)
        data_dir = ROOT / ".data" / "bench-scale"
        data_dir.mkdir(parents=True, exist_ok=True)
        extra = {"BEIDOU_POOL_MAX": "10"}
        if read_url:
            extra["BEIDOU_READ_DATABASE_URL"] = read_url
        secret = "scale-" + uuid.uuid4().hex
        services.append(start_service(db, secret, data_dir, **extra))
        tenant = services[0].new_tenant("scale")
        people = [f"p{i}" for i in range(args.people)]
        tokens = [tenant.person_token(p, ttl_s=86400) for p in people]
        for token in tokens:
            with httpx.Client(base_url=services[0].base_url, headers={"Authorization": f"Bearer {token}"}) as c:
                c.put("/v1/me/consents/heart_rate").raise_for_status()
        staff = tenant.staff_token("capacity", role="care_supervisor")
        # Each person's readings go on from where their last batch ended (a second apart), starting a week ago: a
        # clock shared by everyone would run days into the future within a step, and those readings are refused.
        clocks = [time.time() - 7 * 86400] * len(people)
        print(f"{'api':>3} {'workers':>7} {'readings/s':>11} {'ack p50':>8} {'ack p99':>8} {'charts/s':>9} "
              f"{'chart p50':>9} {'chart p99':>9}  replica lag")
        for k in range(1, args.max_api + 1):
            while len(services) < k:
                services.append(start_service(db, secret, data_dir, **extra))
            while len(workers) < k * args.workers_per_api:
                workers.append(start_process(services[0], "worker"))
            result = asyncio.run(drive([s.base_url for s in services], tokens, staff, people, seconds=args.seconds,
                                       writers=args.writers, readers=args.readers, batch=args.batch, clocks=clocks))
            print(f"{k:>3} {len(workers):>7} {result['readings_s']:>11,.0f} {result['write_p50']:>6.0f}ms "
                  f"{result['write_p99']:>6.0f}ms {result['reads_s']:>9.1f} {result['read_p50']:>7.0f}ms "
                  f"{result['read_p99']:>7.0f}ms  {replica_lag(replica_admin)}"
                  + (f"  failed: {result['failed']}" if result["failed"] else ""), flush=True)
    finally:
        for w in workers:
            stop_process(w)
        for s in services:
            s.stop()
        if replica is not None:
            localdb.remove(replica)
        db.drop()


if __name__ == "__main__":
    main()
