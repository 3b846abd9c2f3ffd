"""The worker process: detection now, alerting and notification sending as they are wired in.

Woken by LISTEN/NOTIFY (never a busy poll), with a slow periodic sweep that catches anything a lost
notification would have left behind. Runs on its own (`beidou worker`) or inside `beidou up`.
"""
from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from alerts.consumer import AlertConsumer
from alerts.push.provider import PushProvider
from alerts.sender import NotificationSender
from alerts.webhooks import WebhookClient
from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from app.core.listen import listen_forever
from consent.service import CONSENT_CHANNEL, ConsentChange
from consent.catalog import MONITORING
from streaming.consumer import DetectionConsumer
from streaming.ingest import INGEST_CHANNEL
from streaming.repository import ANOMALY_CHANNEL

FEEDBACK_CHANNEL = "beidou_feedback"
OUTBOX_CHANNEL = "beidou_outbox"

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, db: Database, listen_url: str, *, sender: NotificationSender | None = None,
                 sweep_s: float = 30.0, gap_check_s: float = 600.0, outbox_poll_s: float = 5.0):
        self.db = db
        self.listen_url = listen_url
        self.detection = DetectionConsumer(db)
        self.alerts = AlertConsumer(db)
        self._anomalies: set[UUID] = set()
        self._anomaly_wake = asyncio.Event()
        self.sender = sender
        self.outbox_poll_s = outbox_poll_s
        self._outbox: set[UUID] = set()
        self._outbox_wake = asyncio.Event()
        self.sweep_s = sweep_s
        self.gap_check_s = gap_check_s
        self._dirty: set[UUID] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(listen_forever(
                self.listen_url, [INGEST_CHANNEL, CONSENT_CHANNEL, ANOMALY_CHANNEL, FEEDBACK_CHANNEL, OUTBOX_CHANNEL],
                self._on_notify, on_connect=self._sweep_all), name="worker-listen"),
            asyncio.create_task(self._detect_loop(), name="worker-detect"),
            asyncio.create_task(self._alert_loop(), name="worker-alerts"),
            asyncio.create_task(self._send_loop(), name="worker-send"),
            asyncio.create_task(self._periodic(self._sweep_all, self.sweep_s), name="worker-sweep"),
            asyncio.create_task(self._periodic(self._check_gaps, self.gap_check_s), name="worker-gaps"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_notify(self, channel: str, payload: str) -> None:
        if channel == INGEST_CHANNEL:
            self._dirty.add(UUID(payload))
            self._wake.set()
        elif channel == ANOMALY_CHANNEL:
            self._anomalies.add(UUID(payload))
            self._anomaly_wake.set()
        elif channel == OUTBOX_CHANNEL:
            self._outbox.add(UUID(payload))
            self._outbox_wake.set()
        elif channel == FEEDBACK_CHANNEL:
            tenant_id, person_id = payload.split("|")
            await self.detection.apply_feedback(UUID(tenant_id), UUID(person_id))
        elif channel == CONSENT_CHANNEL:
            change = ConsentChange.parse(payload)
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

    async def _check_gaps(self) -> None:
        for tenant_id in await self.detection.tenants():
            emitted = await self.detection.check_gaps(tenant_id)
            if emitted:
                log.info("detection.gap_events tenant=%s emitted=%s", tenant_id, emitted)

    async def _periodic(self, job, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await job()
            except Exception:
                log.exception("worker.periodic_failed job=%s", getattr(job, "__name__", job))

    async def _detect_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                tenant_id = self._dirty.pop()
                try:
                    result = await self.detection.process_tenant(tenant_id)
                except DatabaseUnavailable as exc:
                    log.warning("detection.pass_failed tenant=%s error=%s", tenant_id, exc)
                    self._dirty.add(tenant_id)
                    await asyncio.sleep(2)
                    continue
                except Exception:
                    log.exception("detection.pass_crashed tenant=%s", tenant_id)
                    continue
                config = self.detection.config
                if result.people >= config.batch_people or result.readings >= config.max_readings_per_pass:
                    # More waiting: more people than one pass takes, or someone's backlog is longer than one
                    # pass reads (else the rest would wait for the next sweep). Go round again.
                    self._dirty.add(tenant_id)


    async def _alert_loop(self) -> None:
        while True:
            await self._anomaly_wake.wait()
            self._anomaly_wake.clear()
            while self._anomalies:
                tenant_id = self._anomalies.pop()
                try:
                    await self.alerts.process_tenant(tenant_id)
                except DatabaseUnavailable as exc:
                    log.warning("alerts.pass_failed tenant=%s error=%s", tenant_id, exc)
                    self._anomalies.add(tenant_id)
                    await asyncio.sleep(2)
                except Exception:
                    log.exception("alerts.pass_crashed tenant=%s", tenant_id)


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
            while self._outbox:
                tenant_id = self._outbox.pop()
                try:
                    await self.sender.process_tenant(tenant_id)
                except DatabaseUnavailable as exc:
                    log.warning("push.pass_failed tenant=%s error=%s", tenant_id, exc)
                    await asyncio.sleep(2)
                except Exception:
                    log.exception("push.pass_crashed tenant=%s", tenant_id)


def build_providers(settings) -> dict[str, PushProvider]:
    """The provider registry: every push provider that is configured, by the name devices register with."""
    providers: dict[str, PushProvider] = {}
    if settings.fcm_endpoint or settings.fcm_credentials_file:
        from alerts.push.fcm import FcmProvider
        providers["fcm"] = FcmProvider.from_settings(settings.fcm_project_id, settings.fcm_credentials_file,
                                                     settings.fcm_endpoint, settings.push_timeout_s)
    if settings.push_gateway_url and settings.push_gateway_secret:
        from alerts.push.gateway import GatewayProvider
        providers["gateway"] = GatewayProvider(settings.push_gateway_url, settings.push_gateway_secret,
                                               timeout_s=settings.push_timeout_s)
    return providers


def build_sender(db: Database, settings) -> NotificationSender:
    """The sender with the configured push providers (a device whose provider is not configured: its messages
    fail visibly as undeliverable) and the webhook client."""
    return NotificationSender(db, build_providers(settings), max_attempts=settings.push_max_attempts,
                              backoff_base_s=settings.push_backoff_base_s, lease_s=settings.push_lease_s,
                              webhooks=WebhookClient(settings.webhook_timeout_s),
                              webhook_max_attempts=settings.webhook_max_attempts)


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
