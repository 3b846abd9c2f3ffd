"""``GET /v1/care/live`` (WebSocket): the care page's live feed of alert changes at the staff member's insurer.

Server → client: ``{"type": "alert", "alert_id": ..., "action": "opened" | "claimed" | ...}``; the page
then fetches what it needs over the normal authenticated routes. No health data travels on this feed, and an
alert whose monitoring consent is not in force is never named: ``{"type": "alert", "alert_id": null,
"action": "hidden"}`` only tells the page to reload its queue.
A feed opened while the database is down is refused with HTTP 503, ``Retry-After`` and the problem body, the
same answer as ``GET /v1/stream`` and any HTTP route.

The connection closes when the staff member's token expires (plus the configured leeway), with close code
4401 and reason ``token_expired``: the page gets a fresh token and reconnects.
"""
from __future__ import annotations

import asyncio

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.api.deps import close_at_expiry, websocket_caller

router = APIRouter(tags=["care team"])
_encoder = msgspec.json.Encoder()


@router.websocket("/v1/care/live")
async def live(ws: WebSocket) -> None:
    if (caller := await websocket_caller(ws, staff=True, refusal="the live feed is for care staff")) is None:
        return
    feed, who, until = caller[0].care_feed, caller[1], caller[2]
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
