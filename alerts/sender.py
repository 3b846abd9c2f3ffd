"""The notification sender: claims due outbox rows, re-checks consent and quiet hours, sends through the
configured push provider (or, for a webhook row, to the insurer's endpoint), and records the result.

Claiming marks a row ``sending`` with a lease (``not_before`` a minute ahead) and commits before any network
call; the result is recorded in a second transaction. A crash in between leaves the lease to expire and the
row is sent again: at least once, and the collapse key (or the webhook id) makes the receiver show it once.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from alerts import outbox_repository as outbox
from alerts.messages import text_for
from alerts.outreach import quiet_until
from alerts.push.provider import PushMessage, PushProvider, SendResult, backoff_delay
from alerts.webhooks import WebhookClient, secrets_in_force
from app.core.db import Database
from consent import repository as consent_repo
from consent.catalog import OUTREACH

log = logging.getLogger(__name__)

CALL_INSTEAD = "could not reach the person by push — call instead"
WEBHOOK = "webhook"


@dataclass
class Claimed:
    notification: dict
    devices: list[dict]
    language: str | None
    endpoint: dict | None = None


class NotificationSender:
    def __init__(self, db: Database, providers: dict[str, PushProvider] | PushProvider | None, *,
                 max_attempts: int = 6, lease_s: float = 60,
                 batch: int = 50, backoff_base_s: float = 2.0, backoff_cap_s: float = 600.0,
                 webhooks: WebhookClient | None = None, webhook_max_attempts: int = 10):
        self.db = db
        # Devices name their provider ("fcm", "gateway" for phones without Google services); each is a PushProvider
        # registered here by the process that wires the sender, so adding one never touches this package.
        if providers is None:
            providers = {}
        elif not isinstance(providers, dict):
            providers = {"fcm": providers}
        self.providers = providers
        self.webhooks = webhooks or WebhookClient()
        self.max_attempts = max_attempts
        self.webhook_max_attempts = webhook_max_attempts
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
            for n in await outbox.claim_due(conn, self.batch):
                if n["recipient_kind"] == WEBHOOK:
                    endpoint = await outbox.endpoint_for_delivery(conn, n["endpoint_id"])
                    if endpoint is None or not endpoint["enabled"]:
                        await outbox.set_status(conn, n, status="cancelled", status_detail="the endpoint is disabled")
                        continue
                    await outbox.mark_sending(conn, n["id"], now + self.lease)
                    n["attempts"] += 1
                    claimed.append(Claimed(n, [], None, endpoint))
                    continue
                verdict = await self._still_wanted(conn, n, now)
                if verdict is not None:
                    status, detail, not_before = verdict
                    await outbox.set_status(conn, n, status=status, status_detail=detail, not_before=not_before,
                                            held_reason=detail if status == "held" else None)
                    continue
                devices = await outbox.devices_for(conn, n)
                if not devices:
                    await outbox.set_status(conn, n, status="failed",
                                            status_detail=f"no device registered: {CALL_INSTEAD}")
                    continue
                devices = [d for d in devices if d["provider"] in self.providers]
                if not devices:
                    await outbox.set_status(conn, n, status="failed",
                                            status_detail=f"push is not configured: {CALL_INSTEAD}")
                    continue
                await outbox.mark_sending(conn, n["id"], now + self.lease)
                n["attempts"] += 1
                language = None
                if n["recipient_kind"] == "person":
                    person = await outbox.person_for_outreach(conn, n["person_id"])
                    language = person["language"] if person else None
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
            person = await outbox.person_for_outreach(conn, n["person_id"])
            # The weekly cap was decided when the message was queued; quiet hours may have begun since.
            until = None if n["critical"] else quiet_until(now, person["time_zone"], person["quiet_start"],
                                                           person["quiet_end"])
            if until is not None:
                return "held", "quiet_hours", until
        return None

    async def _send(self, item: Claimed) -> list[tuple[dict | None, SendResult]]:
        n = item.notification
        if item.endpoint is not None:
            try:
                result = await asyncio.to_thread(self.webhooks.deliver, url=item.endpoint["url"], msg_id=f"msg_{n['id']}",
                                                 payload=n["payload"], secrets=secrets_in_force(item.endpoint))
            except Exception as exc:  # a bug must not lose the row: treat as retryable
                log.exception("webhook.send_crashed notification=%s", n["id"])
                result = SendResult.failed("SENDER_ERROR", retryable=True, detail=str(exc)[:200])
            return [(None, result)]
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

    async def _record(self, tenant_id: UUID, item: Claimed, results: list[tuple[dict | None, SendResult]]) -> None:
        n = item.notification
        now = datetime.now(timezone.utc)
        webhook = item.endpoint is not None
        max_attempts = self.webhook_max_attempts if webhook else self.max_attempts
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            for device, result in results:
                await outbox.record_delivery(
                    conn, notification_id=n["id"], device_id=device["id"] if device else None, tenant_id=tenant_id,
                    person_id=n["person_id"], attempt=n["attempts"], ok=result.ok,
                    provider_message_id=result.provider_message_id, error_code=result.error_code,
                    detail=result.detail, provider=device["provider"] if device else WEBHOOK)
                if device and result.drop_token:
                    await outbox.disable_device(conn, device["id"], result.error_code)
            if any(r.ok for _, r in results):
                status, detail, not_before = "sent", None, None
            elif any(r.retryable for _, r in results) and n["attempts"] < max_attempts:
                retry_after = max((r.retry_after or 0 for _, r in results), default=0) or None
                delay = backoff_delay(n["attempts"], retry_after, base=self.backoff_base_s, cap=self.backoff_cap_s)
                status, detail = "queued", f"retrying: {_errors(results)}"
                not_before = now + timedelta(seconds=delay)
            elif webhook:
                status, detail, not_before = "failed", f"dead letter after {n['attempts']} attempts: {_errors(results)}", None
            else:
                status, detail, not_before = "failed", f"{_errors(results)}: {CALL_INSTEAD}", None
            await outbox.set_status(conn, n, status=status, status_detail=detail, not_before=not_before,
                                    held_reason=None)
            log.info("%s.%s notification=%s attempt=%s detail=%s", WEBHOOK if webhook else "push", status, n["id"],
                     n["attempts"], detail)


def _errors(results: list[tuple[dict | None, SendResult]]) -> str:
    return ", ".join(sorted({r.error_code or "error" for _, r in results})) or "no result"
