"""Fresh alerts first: detection work shared by worker processes, fresh readings ahead of backfill.

Real `beidou worker` processes against the test database: one person streams fresh readings while others
upload weeks of history; and two worker processes share people and produce exactly what one would.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg

from tests.integration.test_detection_worker import send_all, synthetic_history
from tests.support import start_process, stop_process, wait_for


def morning_zone() -> ZoneInfo:
    """A fixed-offset zone where it is now between 09:00 and 10:00: a night has just ended there."""
    offset = (9 - datetime.now(timezone.utc).hour) % 24
    if offset > 14:
        offset -= 24
    return ZoneInfo(f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT")


def person(tenant, name: str, zone: ZoneInfo):
    client = tenant.client(tenant.person_token(name))
    for data_type in ("heart_rate", "steps"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code < 300
    with tenant.service.admin_conn() as conn:
        conn.execute("UPDATE people SET time_zone = %s WHERE tenant_id = %s AND external_id = %s",
                     (zone.key, tenant.id, name))
    return client


def store(service, tenant, name: str, items: list[dict]) -> None:
    """Upload a long history through the real ingest writer (HTTP left out: it would take most of the test)."""
    from app.core.db import Database
    from streaming.ingest import IngestWriter
    from streaming.validation import Reading
    with service.admin_conn() as conn:
        person_id, zone = conn.execute("SELECT id, time_zone FROM people WHERE tenant_id = %s AND external_id = %s",
                                       (tenant.id, name)).fetchone()

    async def upload() -> None:
        db = Database(service.db.app_url, min_size=1, max_size=2)
        await db.open()
        writer = IngestWriter(db, writers=1)
        await writer.start()
        try:
            readings = []
            for it in items:
                t = datetime.fromisoformat(it["time"])
                readings.append(Reading(t.astimezone(timezone.utc), it["metric"], it["value"], None, None,
                                        it["source"], int(t.utcoffset().total_seconds() // 60)))
            for i in range(0, len(readings), 20_000):
                outcomes = await writer.store(tenant.id, person_id, readings[i:i + 20_000])
                assert set(outcomes) == {"accepted"}
        finally:
            await writer.stop()
            await db.close()
    asyncio.run(upload())


def seen(service, tenant_id, name: str) -> int:
    with service.admin_conn() as conn:
        row = conn.execute("""SELECT s.readings_seen FROM detector_state s JOIN people p ON p.id = s.person_id
                               WHERE p.tenant_id = %s AND p.external_id = %s""", (tenant_id, name)).fetchone()
    return row[0] if row else 0


def known(service, tenant_id) -> int:
    """How many of the tenant's people the detector has seen."""
    with service.admin_conn() as conn:
        return conn.execute("SELECT count(*) FROM detector_state WHERE tenant_id = %s", (tenant_id,)).fetchone()[0]


def opened_alerts(service, tenant_id, name: str) -> list[datetime]:
    with service.admin_conn() as conn:
        return [r[0] for r in conn.execute(
            """SELECT a.opened_at FROM alerts a JOIN people p ON p.id = a.person_id
                WHERE p.tenant_id = %s AND p.external_id = %s AND a.tier = 'alert'
                ORDER BY a.opened_at""", (tenant_id, name))]


def test_a_fresh_reading_becomes_an_alert_while_others_backfill_weeks_of_history(service, tenant):
    zone = morning_zone()
    end = datetime.now(zone).replace(minute=0, second=0, microsecond=0)  # 09:00 today, there
    live = synthetic_history(days=30, sick_nights=2, seed=21, zone=zone, end=end)
    # The second feverish night (after a feverish day) ends at 07:00 today: what the watch sends from 05:00
    # on completes it.
    cut = next(i for i, it in enumerate(live) if it["time"] >= (end - timedelta(hours=4)).isoformat())
    live_client = person(tenant, "live", zone)
    backfillers = {f"backfill-{i}": (person(tenant, f"backfill-{i}", zone),
                                     synthetic_history(days=30, sick_nights=0, seed=100 + i, zone=zone,
                                                       end=end - timedelta(days=1)))
                   for i in range(6)}
    send_all(live_client, live[:cut])
    worker = start_process(service, "worker")
    try:
        wait_for(lambda: seen(service, tenant.id, "live") == cut, timeout=60)
    finally:
        stop_process(worker)
    assert opened_alerts(service, tenant.id, "live") == []  # not before the night has ended
    for name, (_client, items) in backfillers.items():  # weeks of history arrive for others
        store(service, tenant, name, items)
    worker = start_process(service, "worker")
    try:
        wait_for(lambda: any(seen(service, tenant.id, name) for name in backfillers), timeout=60)  # under way
        sent = datetime.now(timezone.utc)
        send_all(live_client, live[cut:])
        opened = wait_for(lambda: opened_alerts(service, tenant.id, "live"), timeout=30)[0]
        behind = {name: len(items) - seen(service, tenant.id, name) for name, (_c, items) in backfillers.items()}
        # The alert did not wait for the backfill: it is still going, and the alert came within seconds.
        assert sum(behind.values()) > 0, behind
        assert (opened - sent).total_seconds() < 3.0, opened - sent
        # The backfill goes on in the background and completes.
        wait_for(lambda: all(seen(service, tenant.id, name) == len(items)
                             for name, (_c, items) in backfillers.items()), timeout=120)
    finally:
        stop_process(worker)
    assert seen(service, tenant.id, "live") == len(live)


def health_alerts(service, tenant_id, name: str) -> int:
    """The person's alert-tier health events (what becomes an alert)."""
    with service.admin_conn() as conn:
        return conn.execute("""SELECT count(*) FROM anomaly_events e JOIN people p ON p.id = e.person_id
                                WHERE p.tenant_id = %s AND p.external_id = %s AND e.kind = 'health'
                                  AND e.tier = 'alert'""", (tenant_id, name)).fetchone()[0]


def test_a_live_persons_own_backlog_is_caught_up_before_anyone_elses_backfill(service, tenant):
    """Someone who uploads three weeks of history and streams on at once has fresh readings that can only be
    scored after their own history: that history goes ahead of every other person's backfill, even though
    the others' uploads came first, so their fresh reading becomes an alert before anyone else's backfill has
    had a turn; the others' backfill then goes on."""
    from app.core.db import Database
    from streaming.consumer import ConsumerConfig, DetectionConsumer
    zone = morning_zone()
    end = datetime.now(zone).replace(minute=0, second=0, microsecond=0)  # 09:00 today, there
    others = {f"backfill-{i}": synthetic_history(days=10, sick_nights=0, seed=400 + i, zone=zone,
                                                 end=end - timedelta(days=1)) for i in range(3)}
    for name, items in others.items():  # their uploads are queued first
        person(tenant, name, zone)
        store(service, tenant, name, items)
    live = synthetic_history(days=21, sick_nights=2, seed=22, zone=zone, end=end)  # ends in the last hour
    person(tenant, "live", zone)
    store(service, tenant, "live", live)

    async def work() -> int:
        db = Database(service.db.app_url, min_size=1, max_size=2)
        await db.open()
        # Short backfill passes, one person per pass: whoever goes first shows in who has been fed.
        consumer = DetectionConsumer(db, config=ConsumerConfig(backfill_readings_per_pass=4_000,
                                                               backfill_share_s=0.0))
        try:
            for passes in range(1, 60):
                await consumer.process_tenant(tenant.id)
                if health_alerts(service, tenant.id, "live"):
                    return passes
            raise AssertionError("the live person's alert never came")
        finally:
            await db.close()
    passes = asyncio.run(work())
    assert passes >= len(live) // 4_000  # it took several passes through the live person's own history
    assert seen(service, tenant.id, "live") == len(live)
    # (The alert's night ends well before the last 6 hours, so it is raised by a backfill pass of the live
    # person's own history: a pass that reached their fresh readings first would give one other a turn too.)
    assert {name: seen(service, tenant.id, name) for name in others} == {name: 0 for name in others}
    worker = start_process(service, "worker")  # the others' backfill goes on and completes
    try:
        wait_for(lambda: all(seen(service, tenant.id, name) == len(items) for name, items in others.items()),
                 timeout=60)
    finally:
        stop_process(worker)


class Streams:
    """People streaming as they go, through the real ingest writer: one heart-rate reading each, every
    ``every_s``, in a thread of its own until stopped."""

    def __init__(self, service, tenant, names: list[str], every_s: float = 1.0):
        import threading
        with service.admin_conn() as conn:
            self.people = [r[0] for r in conn.execute(
                "SELECT id FROM people WHERE tenant_id = %s AND external_id = ANY(%s)", (tenant.id, names))]
        assert len(self.people) == len(names)
        self.service, self.tenant, self.every_s = service, tenant, every_s
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        from app.core.db import Database
        from streaming.ingest import IngestWriter
        from streaming.validation import Reading
        db = Database(self.service.db.app_url, min_size=1, max_size=2)
        await db.open()
        writer = IngestWriter(db, writers=1)
        await writer.start()
        try:
            while not self._stop.is_set():
                now = datetime.now(timezone.utc)
                await asyncio.gather(*(writer.store(self.tenant.id, person, [
                    Reading(now, "heart_rate", 60.0 + i % 20, None, None, "watch", 0)])
                    for i, person in enumerate(self.people)))
                self.rounds += 1
                await asyncio.sleep(max(0.0, self.every_s - (datetime.now(timezone.utc) - now).total_seconds()))
        finally:
            await writer.stop()
            await db.close()

    def __enter__(self) -> "Streams":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_fresh_reading_becomes_an_alert_promptly_while_hundreds_stream_and_others_backfill(service, tenant):
    """Hundreds of people streaming (each with a reading every second) and a month of history arriving for
    each of four others: the worker keeps up, so a fresh reading that completes a feverish night is an alert
    within seconds (it took 8 when each fresh person had a transaction of their own), while the backfill goes
    on."""
    zone = morning_zone()
    end = datetime.now(zone).replace(minute=0, second=0, microsecond=0)  # 09:00 today, there
    live = synthetic_history(days=21, sick_nights=2, seed=22, zone=zone, end=end)
    cut = next(i for i, it in enumerate(live) if it["time"] >= (end - timedelta(hours=4)).isoformat())
    live_client = person(tenant, "live", zone)
    send_all(live_client, live[:cut])
    streaming = [f"stream-{i:03d}" for i in range(300)]

    def consent(name: str) -> int:
        with tenant.client(tenant.person_token(name)) as client:
            return client.put("/v1/me/consents/heart_rate").status_code
    with ThreadPoolExecutor(8) as pool:
        assert all(status < 300 for status in pool.map(consent, streaming))
    backfill = {f"backfill-{i}": synthetic_history(days=30, sick_nights=0, seed=123 + i, zone=zone,
                                                  end=end - timedelta(days=1)) for i in range(4)}
    for name in backfill:
        person(tenant, name, zone)
    with Streams(service, tenant, streaming) as streams:
        worker = start_process(service, "worker")
        try:
            wait_for(lambda: seen(service, tenant.id, "live") == cut and streams.rounds >= 2
                     and known(service, tenant.id) == len(streaming) + 1, timeout=60)
            for name, items in backfill.items():  # a month of history arrives for others
                store(service, tenant, name, items)
            wait_for(lambda: any(seen(service, tenant.id, name) for name in backfill), timeout=30)  # under way
            assert opened_alerts(service, tenant.id, "live") == []  # not before the night has ended
            # the fresh readings come while the backfill is still under way
            assert sum(seen(service, tenant.id, name) for name in backfill) < sum(map(len, backfill.values()))
            sent = datetime.now(timezone.utc)
            send_all(live_client, live[cut:])
            opened = wait_for(lambda: opened_alerts(service, tenant.id, "live"), timeout=30)[0]
            assert (opened - sent).total_seconds() < 3.0, opened - sent  # ~0.7 s here on a lightly loaded machine
        finally:
            stop_process(worker)
    assert seen(service, tenant.id, "live") == len(live)


def events(service, tenant_id) -> dict[str, list[tuple]]:
    with service.admin_conn() as conn:
        rows = conn.execute(
            """SELECT p.external_id, e.kind, e.feature, e.tier, e.start_time, e.reason FROM anomaly_events e
                 JOIN people p ON p.id = e.person_id WHERE p.tenant_id = %s
                ORDER BY p.external_id, e.start_time, e.feature, e.tier, e.kind""", (tenant_id,)).fetchall()
    out: dict[str, list[tuple]] = {}
    for name, *event in rows:
        out.setdefault(name, []).append(tuple(event))
    return out


def test_two_worker_processes_share_people_and_produce_exactly_the_events_one_would(service):
    from app.core.db import Database
    from streaming.consumer import DetectionConsumer
    zone = ZoneInfo("Asia/Shanghai")
    histories = {f"p{i}": synthetic_history(days=21, sick_nights=4 if i % 2 else 0, seed=300 + i, zone=zone)
                 for i in range(4)}
    shared, alone = service.new_tenant(), service.new_tenant()
    for tenant in (shared, alone):
        clients = {name: person(tenant, name, zone) for name in histories}
        # Each history arrives in a few uploads, so people have work queued again and again.
        for start in range(0, 30_000, 10_000):
            for name, items in histories.items():
                send_all(clients[name], items[start:start + 10_000])
        if tenant is shared:
            worker = start_process(service, "worker", "--processes", "2")
            try:
                with psycopg.connect(service.db.admin_url) as holder:  # as if a third worker had p0 right now
                    held = holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(p.id::text, 7)) "
                                          "FROM people p WHERE tenant_id = %s AND external_id = 'p0'",
                                          (shared.id,)).fetchall()
                    assert held
                    wait_for(lambda: all(seen(service, shared.id, name) == len(histories[name])
                                         for name in ("p1", "p2", "p3")), timeout=120)
                    assert seen(service, shared.id, "p0") == 0  # nobody processes a person someone else has
                # Released: taken up again within seconds (not at the next sweep).
                wait_for(lambda: seen(service, shared.id, "p0") == len(histories["p0"]), timeout=15)
                time.sleep(1)  # anything a second process would wrongly repeat, it would have by now
            finally:
                stop_process(worker)

    async def one_consumer() -> None:  # the same uploads, processed by a single consumer
        db = Database(service.db.app_url, min_size=1, max_size=2)
        await db.open()
        try:
            while (await DetectionConsumer(db).process_tenant(alone.id)).people:
                pass
        finally:
            await db.close()
    asyncio.run(one_consumer())
    together, reference = events(service, shared.id), events(service, alone.id)
    assert any(e[2] == "alert" for name in together for e in together[name])  # the ill ones alerted
    assert together == reference
    for name, items in histories.items():
        assert seen(service, shared.id, name) == len(items)


def worker_processes(pid: int) -> set[int]:
    """The worker processes a `beidou worker --processes N` runs (not the resource tracker beside them)."""
    from pathlib import Path
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_a_worker_process_that_dies_is_started_again_and_the_work_goes_on(service, tenant):
    import os
    import signal
    zone = ZoneInfo("Asia/Shanghai")
    client = person(tenant, "kept", zone)
    items = synthetic_history(days=3, sick_nights=0, seed=5, zone=zone)
    worker = start_process(service, "worker", "--processes", "2")
    try:
        def two(without: int | None = None) -> set[int] | None:
            found = worker_processes(worker.pid)
            return found if len(found) == 2 and without not in found else None
        first = wait_for(two, timeout=20)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        again = wait_for(lambda: two(without=victim), timeout=20)
        assert again - first  # a new process in place of the one that died
        send_all(client, items)
        wait_for(lambda: seen(service, tenant.id, "kept") == len(items), timeout=30)
    finally:
        stop_process(worker)
