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
growing memory or latency. Frames of all the process's streams are handed to the writer in groups
(:mod:`app.api.gathering`: a group starts 20 ms after its first frame, or once the previous group has
committed, whichever is later) and each group shares one transaction.

An idle stream holds no task and no queue of its own: answers go out through a sender task that exists only
while there is something to send, and the token's expiry is a timer. The stream is served before the routing
layers (:class:`StreamFirst`), so a frame and its ack pass through fewer layers and an open stream keeps fewer
of them alive.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable

import msgspec
from fastapi import APIRouter, WebSocket
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import TOKEN_EXPIRED_CLOSE, TOKEN_EXPIRED_REASON, Services, websocket_caller
from app.api.problems import error_frame
from app.core.errors import BeidouError, Internal, Invalid, RateLimited, TooLarge
from app.core.observability import WS_CONNECTIONS
from streaming import validation
from streaming.receive import all_accepted, receive, summary_json

log = logging.getLogger(__name__)
PATH = "/v1/stream"
_encoder = msgspec.json.Encoder()


class _SeqOnly(msgspec.Struct):
    seq: int | None = None


_seq_decoder = msgspec.json.Decoder(_SeqOnly)
# Stop reading a client that does not read its answers (a flood of bad frames) once this many wait to be sent.
_MAX_OUTBOX = 256


class FrameRate:
    """Token bucket per connection: ``rate`` frames per second on average, ``burst`` at once."""

    __slots__ = ("rate", "burst", "tokens", "at")

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


class StreamFirst:
    """ASGI middleware: a ``/v1/stream`` connection goes straight to :func:`serve_stream`.

    The routing layers (exception wrappers, exit stacks, router lookups: a dozen coroutines) would otherwise stay
    alive under every open stream (~10 KiB each) and handle each of its frames; the stream handles its own errors.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: it hands over the one it picks, so no frame of its own stays under a stream.
        if scope["type"] == "websocket" and scope["path"] == PATH:
            return serve_stream(scope, receive, send)
        return self.app(scope, receive, send)


class _Endpoint:
    """The route's ASGI app (an object, so the router hands it the raw ASGI calls)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return serve_stream(scope, receive, send)


router = APIRouter(tags=["readings"])
router.routes.append(WebSocketRoute(PATH, _Endpoint(), name="stream"))


async def serve_stream(scope: Scope, receive: Receive, send: Send) -> None:
    if (conn := await _open(scope, receive, send)) is None:
        return
    svc, until = conn.svc, conn.until
    rate = FrameRate(svc.settings.ws_max_frames_per_s, svc.settings.ws_frame_burst)
    WS_CONNECTIONS.inc()
    svc.streams.add(conn.who.person_id, conn)
    try:
        while True:
            while len(conn.out) > _MAX_OUTBOX and conn.sender is not None:  # a client not reading its answers
                await asyncio.sleep(0.01)
            while conn.full():
                await conn.store_ended()  # back-pressure: stop reading while too many frames await commit
            message = await receive()
            if message["type"] != "websocket.receive":  # websocket.disconnect
                return
            if time.time() >= until:  # nothing more is taken on an expired token
                await conn.close_expired()
                return
            if (frame := _frame_of(message, conn, rate)) is not None:
                conn.add(frame)
    finally:
        svc.streams.remove(conn.who.person_id, conn)
        # Frames already taken still commit; their acks just have nowhere to go.
        try:
            await conn.drain()
        finally:
            conn.stop()
            WS_CONNECTIONS.dec()


async def _open(scope: Scope, receive: Receive, send: Send) -> _Stream | None:
    """Authenticate and accept (or refuse) the handshake: the open stream, or None. Its own coroutine, so
    the handshake's objects are gone once the stream is open."""
    ws = WebSocket(scope, receive, send)
    if (caller := await websocket_caller(ws, staff=False, refusal="streaming is for policyholders")) is None:
        return None
    svc, who, until = caller
    await ws.accept()
    # From here on the ASGI calls themselves: one layer less per frame and per ack.
    return _Stream(svc, who, send, until)


def _frame_of(message: dict, conn: _Stream, rate: FrameRate):
    """A message's decoded frame, or None once its error frame is queued (nothing of it is stored)."""
    settings = conn.svc.settings
    data = message.get("text")
    if data is None:
        data = message.get("bytes") or b""
    if len(data) > settings.max_frame_bytes:
        conn.put_nowait(error_frame(TooLarge(
            f"frame larger than {settings.max_frame_bytes} bytes; nothing stored", code="frame_too_large")))
        return None
    wait = rate.take()
    if wait:
        conn.put_nowait(error_frame(RateLimited(
            f"more than {settings.ws_max_frames_per_s:g} frames per second on this connection; nothing stored, "
            "resend after retry_after seconds"), _seq_of(data), retry_after=math.ceil(wait * 10) / 10))
        return None
    try:
        frame = validation.decode_frame(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        conn.put_nowait(error_frame(Invalid(f"{exc}; nothing stored", code="malformed_frame")))
        return None
    if len(frame.readings) > settings.max_batch_readings:
        conn.put_nowait(error_frame(TooLarge(f"at most {settings.max_batch_readings} readings per frame",
                                             code="batch_too_large"), frame.seq))
        return None
    return frame


class _Stream:
    """One open stream: its answers on their way out, and its frames on their way to the database.

    One store per connection is in flight at a time; frames that arrive meanwhile wait and go to the writer
    together as ONE job (one validation pass, one future), each still acknowledged on its own, when the
    process's gathering window next closes (:class:`~app.api.gathering.FrameGathering`). At most
    BEIDOU_WS_MAX_INFLIGHT_FRAMES frames wait or are in flight; at that bound, and when the process's writer
    has more queued than it commits in a moment, the client is told ``slow_down`` (once per episode) and the
    server stops reading the socket until the store under way is done.

    Answers (acks, errors, consent changes) are sent in order by a task that exists only while some wait; the
    token's expiry is a timer, not a sleeping task. Slots, not a dict: ten thousand idle streams add up."""

    __slots__ = ("svc", "who", "send", "until", "out", "sender", "dead", "waiting", "storing", "busy", "task", "ended",
                 "told", "limit", "expiry", "closer", "closed")

    def __init__(self, svc: Services, who, send: Send, until: float):
        self.svc, self.who, self.send, self.until = svc, who, send, until
        self.out: list = []  # answers not yet sent: str (pre-encoded) or dict
        self.sender: asyncio.Task | None = None
        self.dead = False  # the client went away: answers are dropped
        self.waiting: list = []  # decoded frames not yet handed to the writer
        self.storing = 0  # frames handed to the writer, awaiting their commit
        self.busy = False  # a store is gathering or under way (its end makes room)
        self.task: asyncio.Task | None = None
        self.ended: asyncio.Future | None = None
        self.told = False
        self.limit = svc.settings.ws_max_inflight_frames
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_at(loop.time() + max(0.0, until - time.time()), self._expire)
        self.closer: asyncio.Task | None = None
        self.closed = False

    # -- answers

    def put_nowait(self, message: str | dict) -> None:
        """Queue an answer (the registry pushes consent changes here too)."""
        if self.dead:
            return
        self.out.append(message)
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_out())

    def qsize(self) -> int:
        return len(self.out)

    async def _send_out(self) -> None:
        try:
            while self.out:
                message = self.out.pop(0)
                text = message if isinstance(message, str) else _encoder.encode(message).decode()
                await self.send({"type": "websocket.send", "text": text})
        except Exception:  # the client went away (or the stream closed); the read loop notices and cleans up
            self.dead = True
            self.out.clear()
        finally:
            self.sender = None

    def _expire(self) -> None:
        self.closer = asyncio.create_task(self.close_expired())

    async def close_expired(self) -> None:
        """Close with 4401 ``token_expired`` (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.send({"type": "websocket.close", "code": TOKEN_EXPIRED_CLOSE, "reason": TOKEN_EXPIRED_REASON})
        except (RuntimeError, OSError):  # already closed
            pass

    def stop(self) -> None:
        self.expiry.cancel()
        if self.sender is not None:
            self.sender.cancel()

    # -- frames

    def full(self) -> bool:
        """Stop reading? Only while a store is gathering or under way (its end makes room again)."""
        busy = self.busy and (self.storing + len(self.waiting) >= self.limit
                              or (self.storing and self.waiting and self.svc.ingest.overloaded()))
        if busy and not self.told:
            self.told = True
            self.put_nowait(_SLOW_DOWN)
        elif not busy:
            self.told = False
        return bool(busy)

    def store_ended(self) -> asyncio.Future:
        """Resolves when the store gathering or under way ends."""
        if self.ended is None:
            self.ended = asyncio.get_running_loop().create_future()
        return self.ended

    def add(self, frame) -> None:
        self.waiting.append(frame)
        if not self.busy:
            self.busy = True
            self.svc.gathering.join(self)

    def start_store(self) -> None:
        frames, self.waiting = self.waiting, []
        self.storing = len(frames)
        self.task = asyncio.create_task(self._store(frames))

    async def _store(self, frames: list) -> None:
        try:
            answers = await _store_frames(self.svc, self.who, frames)
        finally:
            self.storing, self.task = 0, None
            self.svc.gathering.stored()  # before sending: a client slow to read must not hold up the next group
            if self.waiting:
                self.svc.gathering.join(self)
            else:
                self.busy = False
            if self.ended is not None:
                if not self.ended.done():  # a cancelled reader may have cancelled it
                    self.ended.set_result(None)
                self.ended = None
        if self.dead:
            return
        self.out.extend(answers)
        if self.sender is None:  # send from this task rather than start another one per ack
            self.sender = asyncio.current_task()
            await self._send_out()

    async def drain(self) -> None:
        while self.busy:
            await self.store_ended()


async def _store_frames(svc: Services, who, frames: list) -> list[str | dict]:
    """Store a stream's frames as one job; the answer to each frame (ack or error), in order, after the commit."""
    items = frames[0].readings if len(frames) == 1 else [item for f in frames for item in f.readings]
    try:
        results = await receive(svc.ingest, tenant_id=who.tenant_id, person_id=who.person_id,
                                items=items, limits=svc.limits)
    except BeidouError as exc:  # the database is away, too many sources...: said in each frame's answer
        return [error_frame(exc, frame.seq) for frame in frames]
    except Exception:
        log.exception("stream.frames_failed seqs=%s", [f.seq for f in frames])
        return [error_frame(Internal("not stored: internal error, please resend"), frame.seq) for frame in frames]
    if len(frames) == 1:
        return [summary_json(results, type="ack", seq=frames[0].seq).decode()]
    everything = all(r["status"] == "accepted" for r in results)
    answers: list[str | dict] = []
    start = 0
    for frame in frames:
        end = start + len(frame.readings)
        part = all_accepted(end - start) if everything else [dict(r, index=i) for i, r in enumerate(results[start:end])]
        answers.append(summary_json(part, type="ack", seq=frame.seq).decode())
        start = end
    return answers


_SLOW_DOWN = msgspec.json.encode({
    "type": "slow_down", "detail": "the server is behind: frames are read again once the ones in flight are "
                                   "committed; send less often or in larger frames"}).decode()
