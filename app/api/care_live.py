"""``GET /v1/care/live`` (WebSocket): the care page's live feed of alert changes at the staff member's insurer.

Server → client: ``{"type": "alert", "alert_id": ..., "action": "opened" | "claimed" | ...}``; the page
then fetches what it needs over the normal authenticated routes. No health data travels on this feed, and an
alert whose monitoring consent is not in force is never named: ``{"type": "alert", "alert_id": null,
"action": "hidden"}`` only tells the page to reload its queue.

The connection closes when the staff member's token expires (plus the configured leeway), with close code
4401 and reason ``token_expired``: the page gets a fresh token and reconnects.
"""
from __future__ import annotations

import asyncio
from uuid import UUID

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.fanout import Subscribers
from app.api.deps import Services, authenticate_until, close_at_expiry, websocket_token
from app.auth import AuthError
from app.core.errors import DatabaseUnavailable

router = APIRouter(tags=["care team"])
_encoder = msgspec.json.Encoder()


class CareFeed(Subscribers):
    """Open care-page connections per tenant."""

    def publish(self, payload: str) -> None:
        tenant_id, alert_id, action, *shown = payload.split("|")
        if shown != ["shown"]:
            message = {"type": "alert", "alert_id": None, "action": "hidden"}
        else:
            message = {"type": "alert", "alert_id": alert_id, "action": action}
        for queue in self.of(UUID(tenant_id)):
            if queue.qsize() < 1000:  # a stalled page must not grow memory; it reloads on reconnect
                queue.put_nowait(message)


@router.websocket("/v1/care/live")
async def live(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    feed: CareFeed = ws.app.state.care_feed
    try:
        token = websocket_token(ws)
        if not token:
            raise AuthError("missing bearer token")
        who, until = await authenticate_until(token, svc)
    except AuthError as exc:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(exc)[:120])
        return
    except DatabaseUnavailable:
        await ws.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="database unavailable")
        return
    if who.staff is None:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="the live feed is for care staff")
        return
    await ws.accept()
    queue: asyncio.Queue = asyncio.Queue()
    feed.add(who.tenant_id, queue)

    async def pump() -> None:
        while True:
            await ws.send_text(_encoder.encode(await queue.get()).decode())

    sender = asyncio.create_task(pump())
    expiry = asyncio.create_task(close_at_expiry(ws, until))
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass  # the client has nothing to say; pings are handled by the protocol
    except WebSocketDisconnect:
        pass
    finally:
        feed.remove(who.tenant_id, queue)
        sender.cancel()
        expiry.cancel()
