"""The worker process: detection, alerting and notification sending.

Woken by LISTEN/NOTIFY (never a busy poll), with a slow periodic sweep that catches anything a lost
notification would have left behind. Runs on its own (`beidou worker`) or inside `beidou up`. Timed jobs
(escalations, data-gap checks, packing history) belong to the scheduler, which runs each in one process only.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
import logging
from datetime import timedelta
from uuid import UUID

from alerts.consumer import AlertConsumer
from alerts.push import registry
from alerts.sender import NotificationSender
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
        self._dirty: set[UUID] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(listen_forever(self.listen_url, [c.name for c in _LISTENS_TO], self._on_notify,
                                               on_connect=self._sweep_all), name="worker-listen"),
            asyncio.create_task(self._detect_loop(), name="worker-detect"),
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
            self._dirty.add(channels.INGEST.decode(payload))
            self._wake.set()
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
            self._anomalies.update(tenants)
            self._outbox.update(tenants)  # pushes left due by a crash, or queued while we were not listening
            self._wake.set()
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

    async def _detect(self, tenant_id: UUID):
        return await (await self._detection_for(tenant_id)).process_tenant(tenant_id)

    def _more_to_detect(self, result) -> bool:
        # More waiting: more people than one pass takes, or someone's backlog is longer than one pass reads
        # (else the rest would wait for the next sweep). Go round again.
        config = self.detection.config
        return result.people >= config.batch_people or result.more

    async def _detect_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain(self._dirty, self._detect, "detection", again=self._more_to_detect)

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
    """The detection worker's event-time settings (allowed lateness, watermark hold)."""
    return ConsumerConfig(allowed_lateness=timedelta(hours=settings.detection_allowed_lateness_hours),
                          watermark_hold=timedelta(hours=settings.detection_watermark_hold_hours))


def build_sender(db: Database, settings) -> NotificationSender:
    """The sender with the configured push providers (none configured: messages fail visibly as undeliverable)."""
    providers = registry.configured(settings)
    return NotificationSender(db, providers or None, max_attempts=settings.push_max_attempts,
                              backoff_base_s=settings.push_backoff_base_s, lease_s=settings.push_lease_s)


async def run_worker(url: str, *, pool_max: int = 5) -> None:
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
