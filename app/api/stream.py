"""WebSocket streaming ingest: ``GET /v1/stream``.

Protocol (JSON text frames):

* client → server: ``{"seq": 17, "readings": [ ...same items as POST /v1/readings... ]}``
* server → client: ``{"type": "ack", "seq": 17, "results": [...], "accepted": n, "duplicate": n, "rejected": n}``
  sent only after the frame's readings are committed. Frames are committed together with other frames
  that arrive at the same time, so acks may come back out of order; match them by ``seq``.
* server → client: ``{"type": "error", "seq": 17 | null, "code": ..., "detail": ...}`` for a malformed,
  oversized or over-long frame (nothing of it is stored; the connection stays open), or ``code:
  "unavailable"`` with ``retry_after`` when the database is down (resend that frame later; the connection
  stays open), or ``code: "rate_limited"`` with ``retry_after`` (seconds) for a frame beyond
  BEIDOU_WS_MAX_FRAMES_PER_S (burst BEIDOU_WS_FRAME_BURST): nothing of it is stored, resend it later.
* server → client: ``{"type": "consent", "data_type": ..., "purpose": ..., "granted": false}`` when the
  person's consent changes, from any device or process.
* A stream opened while the database is down is refused with HTTP 503, ``Retry-After`` and the same
  ``{"detail", "code": "unavailable"}`` body as any HTTP route (a bad token: 403), as ``GET /v1/care/live`` is.
* The stream closes when its token expires (``exp`` plus BEIDOU_JWT_LEEWAY_S) with close code 4401 and reason
  ``token_expired``; frames after that are not stored. Reconnect with a fresh token.

At most BEIDOU_WS_MAX_INFLIGHT_FRAMES frames per connection wait for their commit; beyond that the server
stops reading the socket, so a slow database slows the client instead of growing memory.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.api.deps import Services, close_at_expiry, websocket_caller
from app.api.problems import error_frame
from app.core.errors import DatabaseUnavailable, Internal, Invalid, RateLimited, TooLarge
from app.core.observability import WS_CONNECTIONS
from streaming import validation
from streaming.receive import receive, summarise

log = logging.getLogger(__name__)
router = APIRouter(tags=["readings"])
_encoder = msgspec.json.Encoder()


class _SeqOnly(msgspec.Struct):
    seq: int | None = None


_seq_decoder = msgspec.json.Decoder(_SeqOnly)
# Stop reading a client that does not read its answers (a flood of bad frames) once this many wait to be sent.
_MAX_OUTBOX = 256


class FrameRate:
    """Token bucket per connection: ``rate`` frames per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(1, burst)
        self.tokens = float(self.burst)
        self.at = time.monotonic()

    def take(self) -> float:
        """0 if a frame may pass now (and count it), else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _seq_of(data: str | bytes) -> int | None:
    try:
        return _seq_decoder.decode(data).seq
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    if (caller := await websocket_caller(ws, staff=False, refusal="streaming is for policyholders")) is None:
        return
    svc, who, until = caller
    await ws.accept()
    WS_CONNECTIONS.inc()
    outbox: asyncio.Queue = asyncio.Queue()
    svc.streams.add(who.person_id, outbox)
    sender = asyncio.create_task(_send_loop(ws, outbox))
    expiry = asyncio.create_task(close_at_expiry(ws, until))
    inflight = asyncio.Semaphore(svc.settings.ws_max_inflight_frames)
    rate = FrameRate(svc.settings.ws_max_frames_per_s, svc.settings.ws_frame_burst)
    pending: set[asyncio.Task] = set()
    try:
        while True:
            while outbox.qsize() > _MAX_OUTBOX and not sender.done():  # a client not reading its answers
                await asyncio.sleep(0.01)
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if time.time() >= until:  # nothing more is taken on an expired token; the close is on its way
                await expiry
                break
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > svc.settings.max_frame_bytes:
                outbox.put_nowait(error_frame(TooLarge(
                    f"frame larger than {svc.settings.max_frame_bytes} bytes; nothing stored", code="frame_too_large")))
                continue
            wait = rate.take()
            if wait:
                outbox.put_nowait(error_frame(RateLimited(
                    f"more than {svc.settings.ws_max_frames_per_s:g} frames per second on this connection; nothing "
                    "stored, resend after retry_after seconds"), _seq_of(data), retry_after=math.ceil(wait * 10) / 10))
                continue
            try:
                frame = validation.decode_frame(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                outbox.put_nowait(error_frame(Invalid(f"{exc}; nothing stored", code="malformed_frame")))
                continue
            if len(frame.readings) > svc.settings.max_batch_readings:
                outbox.put_nowait(error_frame(TooLarge(f"at most {svc.settings.max_batch_readings} readings per frame",
                                                       code="batch_too_large"), frame.seq))
                continue
            await inflight.acquire()  # back-pressure: stop reading while too many frames await commit
            task = asyncio.create_task(_store_frame(svc, who, frame, outbox))
            pending.add(task)
            task.add_done_callback(lambda t: (pending.discard(t), inflight.release()))
    except WebSocketDisconnect:
        pass
    finally:
        svc.streams.remove(who.person_id, outbox)
        # Frames already handed to the writer still commit; their acks just have nowhere to go.
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        sender.cancel()
        expiry.cancel()
        WS_CONNECTIONS.dec()


async def _store_frame(svc: Services, who, frame: validation.DecodedFrame, outbox: asyncio.Queue) -> None:
    try:
        results = await receive(svc.ingest, tenant_id=who.tenant_id, person_id=who.person_id,
                                items=frame.readings, limits=svc.limits)
    except DatabaseUnavailable as exc:
        outbox.put_nowait(error_frame(exc, frame.seq))
        return
    except Exception:
        log.exception("stream.frame_failed seq=%s", frame.seq)
        outbox.put_nowait(error_frame(Internal("not stored: internal error, please resend"), frame.seq))
        return
    outbox.put_nowait({"type": "ack", "seq": frame.seq, **summarise(results)})


async def _send_loop(ws: WebSocket, outbox: asyncio.Queue) -> None:
    try:
        while True:
            message = await outbox.get()
            await ws.send_text(_encoder.encode(message).decode())
    except asyncio.CancelledError:
        raise
    except Exception:  # the client went away; the receive loop notices and cleans up
        return
