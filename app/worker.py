"""The worker process: detection, alerting and notification sending.

Woken by LISTEN/NOTIFY (never a busy poll), with a slow periodic sweep that catches anything a lost
notification would have left behind. Detection runs in two loops: one for people with fresh readings, one
that works through backfill in the background, so a person uploading weeks of history never holds up
another person's fresh reading. Runs on its own (`beidou worker`) or inside `beidou up`. Timed jobs
(escalations, data-gap checks, packing history) belong to the scheduler, which runs each in one process only.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import replace
import logging
from datetime import timedelta
from uuid import UUID

from alerts.consumer import AlertConsumer
from alerts.push import registry
from alerts.sender import NotificationSender
from alerts.webhooks import WebhookClient
from app.core import channels
from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from app.core.listen import listen_forever
from consent.catalog import MONITORING
from streaming import settings_repository as detection_settings
from streaming.consumer import ConsumerConfig, DetectionConsumer
from streaming.detection import DetectorConfig
from streaming.detection.operating_points import threshold_for

log = logging.getLogger(__name__)

_LISTENS_TO = (channels.INGEST, channels.CONSENT, channels.ANOMALY, channels.FEEDBACK, channels.OUTBOX)


class Worker:
    def __init__(self, db: Database, listen_url: str, *, sender: NotificationSender | None = None,
                 sweep_s: float = 30.0, outbox_poll_s: float = 5.0, detection_config: ConsumerConfig | None = None):
        from app.core.settings import get_settings
        self.db = db
        self.listen_url = listen_url
        self.detection = DetectionConsumer(db, config=detection_config or detection_config_from(get_settings()))
        self._base_detector_config = self.detection.detector_config
        self.alerts = AlertConsumer(db)
        self._anomalies: set[UUID] = set()
        self._anomaly_wake = asyncio.Event()
        self.sender = sender
        self.outbox_poll_s = outbox_poll_s
        self._outbox: set[UUID] = set()
        self._outbox_wake = asyncio.Event()
        self.sweep_s = sweep_s
        self.contended_retry_s = 1.0
        self._dirty: set[UUID] = set()
        self._wake = asyncio.Event()
        self._backfill: set[UUID] = set()
        self._backfill_wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(listen_forever(self.listen_url, [c.name for c in _LISTENS_TO], self._on_notify,
                                               on_connect=self._sweep_all), name="worker-listen"),
            asyncio.create_task(self._detect_loop(), name="worker-detect"),
            asyncio.create_task(self._backfill_loop(), name="worker-backfill"),
            asyncio.create_task(self._alert_loop(), name="worker-alerts"),
            asyncio.create_task(self._send_loop(), name="worker-send"),
            asyncio.create_task(self._periodic(self._sweep_all, self.sweep_s), name="worker-sweep"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_notify(self, channel: str, payload: str) -> None:
        if channel == channels.INGEST.name:
            self._mark_dirty(channels.INGEST.decode(payload))
        elif channel == channels.ANOMALY.name:
            self._anomalies.add(channels.ANOMALY.decode(payload))
            self._anomaly_wake.set()
        elif channel == channels.OUTBOX.name:
            self._outbox.add(channels.OUTBOX.decode(payload))
            self._outbox_wake.set()
        elif channel == channels.FEEDBACK.name:
            tenant_id, person_id = channels.FEEDBACK.decode(payload)
            consumer = await self._detection_for(tenant_id)
            await consumer.apply_feedback(tenant_id, person_id)
        elif channel == channels.CONSENT.name:
            change = channels.CONSENT.decode(payload)
            if change.purpose == MONITORING and not change.granted:
                tenant_id, person_id = UUID(change.tenant_id), UUID(change.person_id)
                await self.detection.drop_metric(tenant_id, person_id, change.data_type)
                await self.alerts.consent_withdrawn(tenant_id, person_id, change.data_type)

    async def _sweep_all(self) -> None:
        try:
            tenants = await self.detection.tenants()
            self._dirty.update(tenants)
            self._backfill.update(tenants)
            self._anomalies.update(tenants)
            self._outbox.update(tenants)  # pushes left due by a crash, or queued while we were not listening
            self._wake.set()
            self._backfill_wake.set()
            self._anomaly_wake.set()
            self._outbox_wake.set()
        except DatabaseUnavailable as exc:
            log.warning("worker.sweep_failed error=%s", exc)

    async def _periodic(self, job, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await job()
            except Exception:
                log.exception("worker.periodic_failed job=%s", getattr(job, "__name__", job))

    async def _detection_for(self, tenant_id: UUID) -> DetectionConsumer:
        """A detection consumer with the insurer's chosen operating point (read on every pass: a change
        applies from the next one; stored detector state does not depend on it)."""
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            choice = await detection_settings.operating_point(conn)
        config: DetectorConfig = replace(self._base_detector_config, fusion_threshold=threshold_for(choice))
        return DetectionConsumer(self.db, detector_config=config, config=self.detection.config)

    async def _drain(self, pending: set[UUID], process, name: str, *, again=lambda result: False) -> None:
        """Process every tenant in ``pending`` (``again(result)``: the tenant has more waiting, go round once more).
        A tenant whose pass met a database outage stays pending and is retried after a pause; a crash is logged."""
        while pending:
            tenant_id = pending.pop()
            try:
                result = await process(tenant_id)
            except DatabaseUnavailable as exc:
                log.warning("%s.pass_failed tenant=%s error=%s", name, tenant_id, exc)
                pending.add(tenant_id)
                await asyncio.sleep(2)
                continue
            except Exception:
                log.exception("%s.pass_crashed tenant=%s", name, tenant_id)
                continue
            if again(result):
                pending.add(tenant_id)

    async def _detect(self, tenant_id: UUID, *, fresh: bool = True, backfill: bool = False):
        result = await (await self._detection_for(tenant_id)).process_tenant(tenant_id, fresh=fresh,
                                                                              backfill=backfill)
        if result.contended and not result.more:
            # Someone was being processed by another worker (process): the one holding them normally takes any
            # newer work in its next pass, but look again shortly rather than wait for the sweep.
            asyncio.get_running_loop().call_later(self.contended_retry_s, self._mark_dirty, tenant_id)
        return result

    async def _detect_backfill(self, tenant_id: UUID):
        return await self._detect(tenant_id, fresh=False, backfill=True)

    def _mark_dirty(self, tenant_id: UUID) -> None:
        self._dirty.add(tenant_id)
        self._wake.set()
        self._backfill.add(tenant_id)
        self._backfill_wake.set()

    @staticmethod
    def _more_to_detect(result) -> bool:
        # More waiting: more people than one pass takes, backfill left for the next pass, or someone's backlog
        # is longer than one pass reads (else the rest would wait for the next sweep). Go round again.
        return result.more

    async def _detect_loop(self) -> None:
        """Fresh people only: each pass takes whoever has fresh work now, and nothing else."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain(self._dirty, self._detect, "detection", again=self._more_to_detect)

    async def _backfill_loop(self) -> None:
        """Backfilling people, in short passes, beside the fresh loop (their feeding runs in a thread)."""
        while True:
            await self._backfill_wake.wait()
            self._backfill_wake.clear()
            await self._drain(self._backfill, self._detect_backfill, "backfill", again=self._more_to_detect)

    async def _alert_loop(self) -> None:
        while True:
            await self._anomaly_wake.wait()
            self._anomaly_wake.clear()
            await self._drain(self._anomalies, self.alerts.process_tenant, "alerts")

    async def _send_loop(self) -> None:
        """Sends what the outbox holds: woken by NOTIFY, and every few seconds for held or retried messages
        whose time has come (their timers live in the database)."""
        if self.sender is None:
            return
        while True:
            try:
                await asyncio.wait_for(self._outbox_wake.wait(), timeout=self.outbox_poll_s)
            except TimeoutError:
                try:
                    self._outbox.update(await self.detection.tenants())
                except DatabaseUnavailable:
                    continue
            self._outbox_wake.clear()
            await self._drain(self._outbox, self.sender.process_tenant, "push")


def detection_config_from(settings) -> ConsumerConfig:
    """The detection worker's event-time settings (allowed lateness, watermark hold) and when a backlog is
    backfill."""
    return ConsumerConfig(allowed_lateness=timedelta(hours=settings.detection_allowed_lateness_hours),
                          watermark_hold=timedelta(hours=settings.detection_watermark_hold_hours),
                          backfill_after=timedelta(hours=settings.detection_backfill_after_hours))


def build_sender(db: Database, settings) -> NotificationSender:
    """The sender with the configured push providers (a device whose provider is not configured: its messages
    fail visibly as undeliverable) and the webhook client."""
    return NotificationSender(db, registry.configured(settings), max_attempts=settings.push_max_attempts,
                              backoff_base_s=settings.push_backoff_base_s, lease_s=settings.push_lease_s,
                              webhooks=WebhookClient(settings.webhook_timeout_s),
                              webhook_max_attempts=settings.webhook_max_attempts)


async def run_worker(url: str, *, pool_max: int = 6) -> None:
    """Run the worker until cancelled (Ctrl-C)."""
    from app.core.settings import get_settings
    db = Database(url, min_size=1, max_size=pool_max, application_name="beidou-worker")
    await db.open()
    worker = Worker(db, url, sender=build_sender(db, get_settings()))
    await worker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await worker.stop()
        await db.close()


def _worker_process(url: str, parent: int) -> None:
    """One of several worker processes: runs until told to stop, or until its parent is gone."""
    from app.core.observability import configure_logging
    from app.core.settings import get_settings
    configure_logging(get_settings().log_level)

    def orphaned() -> None:  # a supervisor killed outright leaves no worker running behind it
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)
    threading.Thread(target=orphaned, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        asyncio.run(run_worker(url))
    except KeyboardInterrupt:
        pass


def run_worker_processes(url: str, processes: int) -> None:
    """Run ``processes`` worker processes and keep them running (one that dies is started again) until
    SIGTERM or Ctrl-C. They share the work through the database: each person is processed by one at a time."""
    context = multiprocessing.get_context("spawn")
    children: dict[int, multiprocessing.process.BaseProcess] = {}
    started: dict[int, float] = {}
    stopping = threading.Event()

    def start(index: int) -> None:
        child = context.Process(target=_worker_process, args=(url, os.getpid()), name=f"beidou-worker-{index}")
        child.start()
        children[index], started[index] = child, time.monotonic()
        log.info("worker.process_started index=%s pid=%s", index, child.pid)

    def stop(*_args) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(processes):
        start(index)
    try:
        while not stopping.wait(0.5):
            for index, child in list(children.items()):
                # One that keeps dying (the database unreachable at start) is started at most every 5 s.
                if not child.is_alive() and not stopping.is_set() and time.monotonic() - started[index] >= 5:
                    log.warning("worker.process_exited index=%s pid=%s code=%s: starting it again",
                                index, child.pid, child.exitcode)
                    start(index)
    finally:
        for child in children.values():
            if child.is_alive():
                child.terminate()
        for child in children.values():
            child.join(10)
            if child.is_alive():
                child.kill()
