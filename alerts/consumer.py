"""Turns stored anomaly events into alerts, in the worker. Each event is handled exactly once."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from uuid import UUID

from alerts import service
from alerts import repository as repo
from app.core.db import Database

log = logging.getLogger(__name__)


class AlertConsumer:
    def __init__(self, db: Database, *, batch: int = 200):
        self.db = db
        self.batch = batch

    async def process_tenant(self, tenant_id: UUID) -> int:
        """Open or extend alerts for every unhandled event of the tenant; events are marked handled in the
        same transaction, so a crash repeats nothing and loses nothing."""
        handled = 0
        while True:
            async with self.db.transaction(tenant_id=tenant_id) as conn:
                events = await repo.unhandled_events(conn, self.batch)
                for event in events:
                    alert_id = await service.open_from_anomaly(conn, tenant_id=tenant_id, event=event)
                    await repo.mark_handled(conn, event.id)
                    if alert_id is None:
                        log.info("alerts.event_dropped event=%s reason=no_monitoring_consent", event.id)
            handled += len(events)
            if len(events) < self.batch:
                return handled

    async def escalate(self, tenant_id: UUID, now: datetime | None = None) -> int:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            return await service.escalate_due(conn, tenant_id=tenant_id, now=now or datetime.now(timezone.utc))

    async def break_glass_digest(self, tenant_id: UUID) -> int:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            return await service.send_break_glass_digest(conn, tenant_id=tenant_id)

    async def consent_withdrawn(self, tenant_id: UUID, person_id: UUID, metric: str) -> int:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            closed = await service.close_for_withdrawn_consent(conn, person_id=person_id, metric=metric)
        if closed:
            log.info("alerts.closed_for_consent person=%s metric=%s closed=%s", person_id, metric, closed)
        return closed
