"""Recording what happened to an alert: the timeline row, and the insurer's webhooks it triggers, written in
the same transaction (so a webhook is sent exactly when the change commits, and never for a rolled-back one)."""
from __future__ import annotations

from uuid import UUID

import psycopg

from alerts import repository as repo
from alerts import webhooks


async def add(conn: psycopg.AsyncConnection, *, alert_id: UUID, tenant_id: UUID, person_id: UUID, actor_kind: str,
              actor_id: str, action: str, from_status: str | None = None, to_status: str | None = None,
              detail: dict | None = None) -> None:
    await repo.add_timeline(conn, alert_id=alert_id, tenant_id=tenant_id, person_id=person_id, actor_kind=actor_kind,
                            actor_id=actor_id, action=action, from_status=from_status, to_status=to_status,
                            detail=detail)
    await webhooks.on_alert_action(conn, tenant_id=tenant_id, alert_id=alert_id, action=action,
                                   actor_kind=actor_kind, actor_id=actor_id, detail=detail or {})
