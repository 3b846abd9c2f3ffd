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

* server → client: ``{"type": "slow_down", "detail": ...}`` once when the connection reaches its bound of
  BEIDOU_WS_MAX_INFLIGHT_FRAMES frames awaiting commit, or the process's writer is behind (jobs wait over
  100 ms): the server stops reading the socket until the frames in flight are committed and acknowledged.
  Send less often or in larger frames; nothing is lost.

Frames that arrive while a connection's previous frames are being committed are validated and stored together
(one job for the writer), each still acknowledged on its own; so a slow database slows the client instead of
growing memory or latency.
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
from streaming.receive import all_accepted, receive, summary_json

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
    conn = _Connection(svc, who, outbox)
    rate = FrameRate(svc.settings.ws_max_frames_per_s, svc.settings.ws_frame_burst)
    max_frame = svc.settings.max_frame_bytes
    max_items = svc.settings.max_batch_readings
    try:
        while True:
            while outbox.qsize() > _MAX_OUTBOX and not sender.done():  # a client not reading its answers
                await asyncio.sleep(0.01)
            while conn.full():
                await conn.wait_for_room()  # back-pressure: stop reading while too many frames await commit
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if time.time() >= until:  # nothing more is taken on an expired token; the close is on its way
                await expiry
                break
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > max_frame:
                outbox.put_nowait(error_frame(TooLarge(
                    f"frame larger than {max_frame} bytes; nothing stored", code="frame_too_large")))
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
            if len(frame.readings) > max_items:
                outbox.put_nowait(error_frame(TooLarge(f"at most {max_items} readings per frame",
                                                       code="batch_too_large"), frame.seq))
                continue
            conn.add(frame)
    except WebSocketDisconnect:
        pass
    finally:
        svc.streams.remove(who.person_id, outbox)
        # Frames already handed to the writer still commit; their acks just have nowhere to go.
        await conn.drain()
        sender.cancel()
        expiry.cancel()
        WS_CONNECTIONS.dec()


class _Connection:
    """A stream's frames on their way to the database.

    One store per connection is in flight at a time; frames that arrive meanwhile wait and go to the writer
    together as ONE job (one validation pass, one future), each still acknowledged on its own. At most
    BEIDOU_WS_MAX_INFLIGHT_FRAMES frames wait or are in flight; at that bound, and when the process's writer
    has more queued than it commits in a moment, the client is told ``slow_down`` (once per episode) and the
    server stops reading the socket until the commit in flight is done."""

    __slots__ = ("svc", "who", "outbox", "waiting", "storing", "task", "room", "told", "limit")

    def __init__(self, svc: Services, who, outbox: asyncio.Queue):
        self.svc, self.who, self.outbox = svc, who, outbox
        self.waiting: list[validation.DecodedFrame] = []
        self.storing = 0  # frames handed to the writer, awaiting their commit
        self.task: asyncio.Task | None = None
        self.room: asyncio.Event | None = None
        self.told = False
        self.limit = svc.settings.ws_max_inflight_frames

    def full(self) -> bool:
        """Stop reading? Only while a store is under way or about to start (its end makes room again)."""
        busy = self.task is not None and (self.storing + len(self.waiting) >= self.limit
                                          or (self.storing and self.waiting and self.svc.ingest.overloaded()))
        if busy and not self.told:
            self.told = True
            self.outbox.put_nowait(_SLOW_DOWN)
        elif not busy:
            self.told = False
        return bool(busy)

    async def wait_for_room(self) -> None:
        self.room = asyncio.Event()
        await self.room.wait()

    def add(self, frame: validation.DecodedFrame) -> None:
        self.waiting.append(frame)
        if self.task is None:
            self.task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.waiting:
                frames, self.waiting = self.waiting, []
                self.storing = len(frames)
                await _store_frames(self.svc, self.who, frames, self.outbox)
                self.storing = 0
                if self.room is not None:
                    self.room.set()
                    self.room = None
        finally:
            self.task, self.storing = None, 0
            if self.room is not None:
                self.room.set()

    async def drain(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


async def _store_frames(svc: Services, who, frames: list[validation.DecodedFrame], outbox: asyncio.Queue) -> None:
    items = frames[0].readings if len(frames) == 1 else [item for f in frames for item in f.readings]
    try:
        results = await receive(svc.ingest, tenant_id=who.tenant_id, person_id=who.person_id,
                                items=items, limits=svc.limits)
    except DatabaseUnavailable as exc:
        for frame in frames:
            outbox.put_nowait(error_frame(exc, frame.seq))
        return
    except Exception:
        log.exception("stream.frames_failed seqs=%s", [f.seq for f in frames])
        for frame in frames:
            outbox.put_nowait(error_frame(Internal("not stored: internal error, please resend"), frame.seq))
        return
    if len(frames) == 1:
        outbox.put_nowait(summary_json(results, type="ack", seq=frames[0].seq).decode())
        return
    everything = all(r["status"] == "accepted" for r in results)
    start = 0
    for frame in frames:
        end = start + len(frame.readings)
        part = all_accepted(end - start) if everything else [dict(r, index=i) for i, r in enumerate(results[start:end])]
        outbox.put_nowait(summary_json(part, type="ack", seq=frame.seq).decode())
        start = end


_SLOW_DOWN = msgspec.json.encode({
    "type": "slow_down", "detail": "the server is behind: frames are read again once the ones in flight are "
                                   "committed; send less often or in larger frames"}).decode()


async def _send_loop(ws: WebSocket, outbox: asyncio.Queue) -> None:
    try:
        while True:
            message = await outbox.get()
            await ws.send_text(message if isinstance(message, str) else _encoder.encode(message).decode())
    except asyncio.CancelledError:
        raise
    except Exception:  # the client went away; the receive loop notices and cleans up
        return
