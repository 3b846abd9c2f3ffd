"""The insurer's own push gateway: for phones without Google services.

FCM does not reach most phones in mainland China. Insurers there already run a push gateway (or an
aggregator) in front of Huawei Push Kit, Xiaomi, OPPO, vivo and Honor. :class:`GatewayProvider` hands each
notification to that gateway as a signed webhook (Standard Webhooks, the same signing as our event webhooks)
and maps the gateway's answer to what the outbox acts on:

====================================================  =================  =========  ==========
gateway answer                                        ``error_code``     retryable  drop_token
====================================================  =================  =========  ==========
2xx (optional JSON ``{"id": "..."}``)                 —, delivered       —          —
410, or any 4xx with JSON ``{"error": "invalid_token"}``  ``INVALID_TOKEN``  no     **yes**
429 or 503 (``Retry-After`` honoured)                 ``HTTP_429/503``   yes        no
other 5xx, timeout, refused connection                ``HTTP_5xx`` ...   yes        no
other 4xx (our request or credentials are wrong)      ``HTTP_4xx``       no         no
====================================================  =================  =========  ==========

The exact request is in docs/push.md. ``send`` blocks; the sender calls it in a thread.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timezone

import httpx

from alerts.push.provider import PushMessage, SendResult, parse_retry_after
from alerts.signing import signed_headers, valid_secret
from alerts.webhooks import check_url

log = logging.getLogger(__name__)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class GatewayProvider:
    """:class:`~alerts.push.provider.PushProvider` that POSTs to the insurer's push gateway."""

    name = "gateway"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0):
        # The same rule as event webhooks: https, or plain http to loopback only.
        self.url = check_url(url)
        if not valid_secret(secret):
            raise ValueError("the push gateway secret must be a Standard Webhooks secret (whsec_ + base64)")
        self._secret = secret
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def request_for(self, msg: PushMessage, *, now: datetime | None = None) -> tuple[str, dict]:
        """The body and headers of the request for ``msg`` (documented in docs/push.md)."""
        now = now or datetime.now(timezone.utc)
        message_id = msg.data.get("message_id")
        # Stable across retries of the same message to the same device, so the gateway can deduplicate.
        msg_id = f"push_{message_id}_{_fingerprint(msg.token)}" if message_id else f"push_{uuid.uuid4().hex}"
        body = json.dumps({"type": "push.send", "timestamp": now.isoformat(), "data": {
            "token": msg.token, "token_kind": msg.token_kind, "platform": msg.platform, "title": msg.title,
            "body": msg.body, "data": dict(msg.data), "collapse_key": msg.collapse_key, "priority": msg.priority,
            "ttl_seconds": msg.ttl_seconds}}, separators=(",", ":"), ensure_ascii=False)
        return body, signed_headers(msg_id, body, [self._secret], now=now)

    def send(self, msg: PushMessage) -> SendResult:
        body, headers = self.request_for(msg)
        token = _fingerprint(msg.token)
        try:
            response = self._http.post(self.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            log.warning("push.gateway.timeout token=%s", token)
            return SendResult.failed("TIMEOUT", retryable=True, detail="the push gateway did not answer in time")
        except httpx.HTTPError as exc:
            log.warning("push.gateway.unreachable token=%s error=%s", token, type(exc).__name__)
            return SendResult.failed("UNREACHABLE", retryable=True, detail=type(exc).__name__)
        status = response.status_code
        answer = _json(response)
        if 200 <= status < 300:
            gateway_id = answer.get("id") if isinstance(answer.get("id"), str) and answer.get("id") else None
            return SendResult.sent(gateway_id or f"gateway-{status}")
        detail = answer.get("detail") if isinstance(answer.get("detail"), str) else f"the push gateway answered {status}"
        if status == 410 or (400 <= status < 500 and answer.get("error") == "invalid_token"):
            log.info("push.gateway.invalid_token token=%s", token)
            return SendResult.failed("INVALID_TOKEN", retryable=False, drop_token=True, detail=detail)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status in (429, 503) or status >= 500:
            return SendResult.failed(f"HTTP_{status}", retryable=True, retry_after=retry_after, detail=detail)
        log.error("push.gateway.rejected status=%s token=%s", status, token)
        return SendResult.failed(f"HTTP_{status}", retryable=False, detail=detail)


def _json(response: httpx.Response) -> dict:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
