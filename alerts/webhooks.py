"""Webhooks to the insurer's own systems (CRM, call centre): which changes become which events, what a payload
carries, and the signed HTTP delivery.

Events are written to the notification outbox (``recipient_kind = 'webhook'``) in the transaction of the change,
one row per subscribed endpoint, and leave through the same sender as pushes: at least once, in order per alert
(or per person for consent changes), with exponential backoff and a dead letter after the last attempt.
Payloads carry ids and states only; the detector's wording (which quotes values) is added only for endpoints
whose tenant opted in with ``include_health_values``.
"""
from __future__ import annotations

import ipaddress
import json
import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import psycopg

from alerts import outbox_repository as outbox
from alerts import repository as repo
from alerts.push.provider import SendResult, parse_retry_after
from alerts.signing import signed_headers
from app.core.db import tenant_wide
from app.core.errors import Invalid

log = logging.getLogger(__name__)

EVENTS = ("alert.opened", "alert.claimed", "alert.contacted", "alert.resolved", "member.replied", "consent.changed")
# Timeline actions that are events for the insurer's systems.
ACTION_EVENTS = {"opened": "alert.opened", "claim": "alert.claimed", "reassign": "alert.claimed",
                 "contact": "alert.contacted", "reach_out": "alert.contacted", "resolve": "alert.resolved",
                 "person_replied": "member.replied"}
MAX_URL = 2048


def check_url(url: str) -> str:
    """HTTPS only, except plain HTTP to this machine's loopback (local receivers and tests)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise Invalid("the webhook URL cannot be read", code="invalid_webhook_url") from None
    if parts.scheme not in ("https", "http") or not host or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise Invalid("the webhook URL must be an absolute https:// URL", code="invalid_webhook_url")
    if parts.username or parts.password:
        raise Invalid("the webhook URL must not carry credentials (the signature authenticates us)",
                      code="invalid_webhook_url")
    if parts.scheme == "http" and not _loopback(host):
        raise Invalid("the webhook URL must use https (plain http only to 127.0.0.1, ::1 or localhost)",
                      code="invalid_webhook_url")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def on_alert_action(conn: psycopg.AsyncConnection, *, tenant_id: UUID, alert_id: UUID, action: str,
                          actor_kind: str, actor_id: str, detail: dict) -> int:
    """Queue the event a timeline action is, for every endpoint subscribed to it. Returns rows queued."""
    event = ACTION_EVENTS.get(action)
    if event is None:
        return 0
    # The member's own answer runs in their person-scoped transaction; endpoints are the insurer's rows.
    async with tenant_wide(conn):
        endpoints = await outbox.endpoints_for_event(conn, event)
        if not endpoints:
            return 0
        alert = await repo.alert_view(conn, alert_id)
        data = {"alert_id": str(alert_id), "person": alert["person"], "status": alert["status"],
                "kind": alert["kind"], "feature": alert["feature"], "severity": alert["severity"],
                "urgent": alert["urgent"], "assignee": alert["assignee"], "resolution": alert["resolution"],
                "actor": {"kind": actor_kind, "id": actor_id}}
        if event == "member.replied":
            data["answer"] = detail.get("answer")
        if event == "alert.contacted":
            data["channel"] = "push" if action == "reach_out" else "care_team"
        now = datetime.now(timezone.utc).isoformat()
        for endpoint in endpoints:
            body = dict(data)
            # Health values only where the tenant opted in AND the person's monitoring consent is in force.
            if endpoint["include_health_values"] and not alert.get("data_hidden"):
                body["summary"] = alert["summary"]
            await outbox.queue_webhook(conn, tenant_id=tenant_id, endpoint_id=endpoint["id"], event=event,
                                       order_key=f"alert:{alert_id}", alert_id=alert_id,
                                       payload={"type": event, "timestamp": now, "data": body})
    return len(endpoints)


def secrets_in_force(endpoint: dict, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(timezone.utc)
    found = [endpoint["secret"]]
    if endpoint.get("previous_secret") and endpoint.get("previous_secret_until") and \
            endpoint["previous_secret_until"] > now:
        found.append(endpoint["previous_secret"])
    return found


class WebhookClient:
    """POSTs one signed event. Any answer but 2xx, a timeout or a refused connection is retried by the outbox;
    redirects are not followed (the endpoint's URL is the one the tenant admin registered)."""

    def __init__(self, timeout_s: float = 10.0):
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def deliver(self, *, url: str, msg_id: str, payload: dict, secrets: list[str]) -> SendResult:
        try:
            check_url(url)
        except Invalid as exc:
            return SendResult.failed("INVALID_URL", retryable=False, detail=str(exc))
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        headers = signed_headers(msg_id, body, secrets)
        try:
            response = self._http.post(url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            return SendResult.failed("TIMEOUT", retryable=True)
        except httpx.HTTPError as exc:
            return SendResult.failed("UNREACHABLE", retryable=True, detail=type(exc).__name__)
        if 200 <= response.status_code < 300:
            return SendResult.sent(f"HTTP {response.status_code}")
        return SendResult.failed(f"HTTP_{response.status_code}", retryable=True,
                                 retry_after=parse_retry_after(response.headers.get("retry-after")))
