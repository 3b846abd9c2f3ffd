"""The scheduler: ONE APScheduler per deployment, running idempotent jobs guarded by Postgres locks.

Several schedulers (or several `beidou up` processes) may run by mistake: each job takes a session-level
advisory lock first, so a job never runs twice at the same time, and every job is safe to repeat anyway.
Timers live in the database (``alerts.next_escalation_at``), so a restart loses none: the escalation job
is both the timer and the sweep that catches any missed step.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import psycopg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alerts.consumer import AlertConsumer
from app.core.db import Database, try_advisory_lock
from streaming import history, rollup
from streaming.consumer import DetectionConsumer

log = logging.getLogger(__name__)


def _lock_key(name: str) -> int:
    return zlib.crc32(f"beidou.job.{name}".encode())


class Scheduler:
    def __init__(self, db: Database, url: str, *, escalation_s: float = 30, gap_check_s: float = 600,
                 hot_days: int = 30, owner_url: str | None = None):
        self.db = db
        self.url = url
        self.owner_url = owner_url
        self.alerts = AlertConsumer(db)
        self.detection = DetectionConsumer(db)
        self.hot_days = hot_days
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
        now = datetime.now(timezone.utc)
        self.scheduler.add_job(self._guarded("escalations", self.run_escalations), "interval", seconds=escalation_s,
                               id="escalations", next_run_time=now + timedelta(seconds=1))
        self.scheduler.add_job(self._guarded("gap_check", self.run_gap_check), "interval", seconds=gap_check_s,
                               id="gap_check")
        # Hourly, so a deployment that was down at midnight still sends yesterday's digest; each day once.
        self.scheduler.add_job(self._guarded("break_glass_digest", self.run_break_glass_digest), "interval", hours=1,
                               id="break_glass_digest", next_run_time=now + timedelta(seconds=5))
        # History past the hot window is packed (and its hot chunks dropped), chunk by chunk.
        self.scheduler.add_job(self._guarded("pack_history", self.run_pack_history), "interval", hours=1,
                               id="pack_history", next_run_time=now + timedelta(seconds=30))
        # Closed hours are rolled up for charts, and hours that changed since are rolled up again.
        self.scheduler.add_job(self._guarded("roll_up", self.run_roll_up), "interval", hours=1,
                               id="roll_up", next_run_time=now + timedelta(seconds=60))
        # Closed hot days' indexes are compacted: only the schema owner may rebuild them.
        if owner_url is not None:
            self.scheduler.add_job(self._guarded("compact_hot", self.run_compact_hot), "interval", hours=1,
                                   id="compact_hot", next_run_time=now + timedelta(seconds=90))
        else:
            log.info("scheduler.job_off job=compact_hot reason=no_owner_url")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

    def _guarded(self, name: str, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    if not await try_advisory_lock(conn, _lock_key(name)):
                        log.info("scheduler.job_skipped job=%s reason=running_elsewhere", name)
                        return
                    try:
                        result = await job()
                        if result:
                            log.info("scheduler.job_done job=%s result=%s", name, result)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(name),))
            except Exception:
                log.exception("scheduler.job_failed job=%s", name)
        run.__name__ = f"job_{name}"
        return run

    async def run_escalations(self) -> int:
        return sum([await self.alerts.escalate(t) for t in await self.detection.tenants()])

    async def run_gap_check(self) -> int:
        return sum([await self.detection.check_gaps(t) for t in await self.detection.tenants()])

    async def run_break_glass_digest(self) -> int:
        """Tell each insurer's supervisors about yesterday's break-the-glass looks (once per day)."""
        return sum([await self.alerts.break_glass_digest(t) for t in await self.detection.tenants()])

    async def run_pack_history(self) -> int:
        """Pack hot readings past the hot window into compact history, then drop their chunks (idempotent;
        a crash leaves nothing lost or twice: see ``streaming.history``)."""
        result = await history.pack_history(self.db, hot_days=self.hot_days)
        return result.readings

    async def run_roll_up(self) -> int:
        """Roll up closed hours for the care chart, and hours that changed since (idempotent, resumable: see
        ``streaming.rollup``)."""
        result = await rollup.roll_up(self.db, await self.detection.tenants(), hot_days=self.hot_days)
        return result.rows + result.dirty

    async def run_compact_hot(self) -> int:
        """Rebuild closed hot day chunks' indexes that arrival order left loose (see ``streaming.history``)."""
        assert self.owner_url is not None
        result = await history.compact_hot_indexes(self.owner_url, hot_days=self.hot_days)
        return result.bytes_before - result.bytes_after


async def run_scheduler(url: str, *, hot_days: int = 30, owner_url: str | None = None) -> None:
    import asyncio
    db = Database(url, min_size=1, max_size=3, application_name="beidou-scheduler")
    await db.open()
    scheduler = Scheduler(db, url, hot_days=hot_days, owner_url=owner_url)
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.stop()
        await db.close()
