"""The notification sender: claims due outbox rows, re-checks consent and quiet hours, sends through the
configured push provider, and records the result per device.

Claiming marks a row ``sending`` with a lease (``not_before`` a minute ahead) and commits before any network
call; the result is recorded in a second transaction. A crash in between leaves the lease to expire and the
row is sent again: at least once, and the collapse key makes the phone show it once.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from psycopg.rows import dict_row

from alerts import repository as repo
from alerts.messages import text_for
from alerts.outreach import quiet_until
from alerts.push.provider import PushMessage, PushProvider, SendResult, backoff_delay
from app.core.db import Database
from consent import repository as consent_repo
from consent.catalog import OUTREACH

log = logging.getLogger(__name__)

CALL_INSTEAD = "could not reach the person by push — call instead"


@dataclass
class Claimed:
    notification: dict
    devices: list[dict]
    language: str | None


class NotificationSender:
    def __init__(self, db: Database, providers: dict[str, PushProvider] | PushProvider | None, *,
                 max_attempts: int = 6, lease_s: float = 60,
                 batch: int = 50, backoff_base_s: float = 2.0, backoff_cap_s: float = 600.0):
        self.db = db
        # Devices name their provider ("fcm", or one for phones without Google services); each is a PushProvider
        # registered here by the process that wires the sender, so adding one never touches this package.
        if providers is None:
            providers = {}
        elif not isinstance(providers, dict):
            providers = {"fcm": providers}
        self.providers = providers
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_s)
        self.batch = batch
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s

    async def process_tenant(self, tenant_id: UUID) -> int:
        """Send everything due for one tenant; returns how many notifications were settled or rescheduled."""
        total = 0
        while True:
            claimed = await self._claim(tenant_id)
            for item in claimed:
                results = await self._send(item)
                await self._record(tenant_id, item, results)
            total += len(claimed)
            if len(claimed) < self.batch:
                return total

    async def _claim(self, tenant_id: UUID) -> list[Claimed]:
        now = datetime.now(timezone.utc)
        claimed: list[Claimed] = []
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                """SELECT n.*, a.status AS alert_status, a.severity
                     FROM notifications n LEFT JOIN alerts a ON a.id = n.alert_id
                    WHERE n.status IN ('queued', 'held', 'sending') AND n.not_before <= now()
                    ORDER BY n.critical DESC, n.not_before LIMIT %s FOR UPDATE OF n SKIP LOCKED""",
                (self.batch,),
            )
            for n in await cur.fetchall():
                verdict = await self._still_wanted(conn, n, now)
                if verdict is not None:
                    status, detail, not_before = verdict
                    await _set(conn, n, status=status, status_detail=detail, not_before=not_before,
                               held_reason=detail if status == "held" else None)
                    continue
                devices = await _devices(conn, n)
                if not devices:
                    await _set(conn, n, status="failed", status_detail=f"no device registered: {CALL_INSTEAD}")
                    continue
                devices = [d for d in devices if d["provider"] in self.providers]
                if not devices:
                    await _set(conn, n, status="failed", status_detail=f"push is not configured: {CALL_INSTEAD}")
                    continue
                await conn.execute(
                    """UPDATE notifications SET status = 'sending', attempts = attempts + 1, not_before = %s,
                              updated_at = now() WHERE id = %s""", (now + self.lease, n["id"]))
                n["attempts"] += 1
                language = await _language(conn, n)
                claimed.append(Claimed(n, devices, language))
        return claimed

    async def _still_wanted(self, conn, n: dict, now: datetime) -> tuple[str, str | None, datetime | None] | None:
        """Re-check, at send time, everything that may have changed since the row was queued."""
        if n["alert_id"] and n["alert_status"] == "resolved" and n["purpose"] in ("check_in", "reconnect", "escalation"):
            return "cancelled", "the alert was resolved", None
        if n["recipient_kind"] == "person":
            # In force, not merely granted: outreach needs monitoring of the same data type, and an erased
            # person has nothing in force.
            if n["metric"] and not await consent_repo.in_force(conn, n["person_id"], n["metric"], OUTREACH):
                return "cancelled", "outreach consent withdrawn", None
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT id, time_zone, quiet_start, quiet_end FROM people WHERE id = %s",
                              (n["person_id"],))
            person = await cur.fetchone()
            # The weekly cap was decided when the message was queued; quiet hours may have begun since.
            until = None if n["critical"] else quiet_until(now, person["time_zone"], person["quiet_start"],
                                                           person["quiet_end"])
            if until is not None:
                return "held", "quiet_hours", until
        return None

    async def _send(self, item: Claimed) -> list[tuple[dict, SendResult]]:
        n = item.notification
        title, body = text_for(n["purpose"], item.language)
        results = []
        for device in item.devices:
            message = PushMessage(
                token=device["token"], token_kind=device["token_kind"], platform=device["platform"], title=title,
                body=body, data={"message_id": str(n["id"]), "kind": n["purpose"]},
                collapse_key=f"alert-{n['alert_id']}" if n["alert_id"] else f"msg-{n['id']}",
                priority="high" if n["critical"] or n["recipient_kind"] == "staff" else "normal",
                ttl_seconds=24 * 3600)
            try:
                result = await asyncio.to_thread(self.providers[device["provider"]].send, message)
            except Exception as exc:  # a provider bug must not lose the row: treat as retryable
                log.exception("push.send_crashed notification=%s", n["id"])
                result = SendResult.failed("PROVIDER_ERROR", retryable=True, detail=str(exc)[:200])
            results.append((device, result))
        return results

    async def _record(self, tenant_id: UUID, item: Claimed, results: list[tuple[dict, SendResult]]) -> None:
        n = item.notification
        now = datetime.now(timezone.utc)
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            for device, result in results:
                await conn.execute(
                    """INSERT INTO notification_deliveries (notification_id, device_id, tenant_id, person_id, attempt,
                                                            ok, provider_message_id, error_code, detail)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (n["id"], device["id"], tenant_id, n["person_id"], n["attempts"], result.ok,
                     result.provider_message_id, result.error_code, result.detail))
                if result.drop_token:
                    await conn.execute("UPDATE devices SET disabled_at = now(), disabled_reason = %s WHERE id = %s",
                                       (result.error_code, device["id"]))
            if any(r.ok for _, r in results):
                status, detail, not_before = "sent", None, None
            elif any(r.retryable for _, r in results) and n["attempts"] < self.max_attempts:
                retry_after = max((r.retry_after or 0 for _, r in results), default=0) or None
                delay = backoff_delay(n["attempts"], retry_after, base=self.backoff_base_s, cap=self.backoff_cap_s)
                status, detail = "queued", f"retrying: {_errors(results)}"
                not_before = now + timedelta(seconds=delay)
            else:
                status, detail, not_before = "failed", f"{_errors(results)}: {CALL_INSTEAD}", None
            await _set(conn, n, status=status, status_detail=detail, not_before=not_before, held_reason=None)
            log.info("push.%s notification=%s attempt=%s detail=%s", status, n["id"], n["attempts"], detail)


async def _set(conn, n: dict, *, status: str, status_detail: str | None, not_before: datetime | None = None,
               held_reason: str | None = None) -> None:
    await conn.execute(
        """UPDATE notifications SET status = %s, status_detail = %s, not_before = coalesce(%s, not_before),
                  held_reason = %s, updated_at = now() WHERE id = %s""",
        (status, status_detail, not_before, held_reason, n["id"]))
    if n["alert_id"]:
        await repo.notify_alert_change(conn, tenant_id=n["tenant_id"], alert_id=n["alert_id"],
                                       action=f"notification_{status}")


async def _devices(conn, n: dict) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    column = "person_id" if n["recipient_kind"] == "person" else "staff_id"
    await cur.execute(f"""SELECT id, provider, token, token_kind, platform, language FROM devices
                           WHERE {column} = %s AND disabled_at IS NULL ORDER BY last_seen DESC LIMIT 10""",
                      (n[column],))
    return await cur.fetchall()


async def _language(conn, n: dict) -> str | None:
    if n["recipient_kind"] != "person":
        return None
    cur = await conn.execute("SELECT language FROM people WHERE id = %s", (n["person_id"],))
    row = await cur.fetchone()
    return row[0] if row else None


def _errors(results: list[tuple[dict, SendResult]]) -> str:
    return ", ".join(sorted({r.error_code or "error" for _, r in results})) or "no result"
