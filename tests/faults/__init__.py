"""Fault tests: kill processes, stop PostgreSQL, make FCM misbehave, push every limit — and prove nothing is lost.

This package also holds the clients the fault tests drive the service with. They behave as the protocol asks of a
phone: every frame/batch carries readings with a natural key, a frame stays "unacknowledged" until its ack
arrives, ``unavailable`` and ``rate_limited`` errors are resent after ``retry_after``, and a dropped connection is
reopened and every unacknowledged frame resent. What each client saw is counted, so the tests can compare it with
what the database holds.
"""
from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

# Readings are placed an hour back and spaced a second apart per person: unique natural keys, all plausible.
BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)


def reading(index: int, value: float | None = None) -> dict:
    """The ``index``-th heart-rate reading of a person (its time is its natural key)."""
    return {"metric": "heart_rate", "time": (BASE + timedelta(seconds=index)).isoformat(),
            "value": value if value is not None else 55 + index % 40, "source": "watch"}


def key_of(item: dict) -> int:
    """A reading's natural key within one person and metric: epoch milliseconds of its time."""
    return int(datetime.fromisoformat(item["time"]).timestamp() * 1000)


@dataclass
class Tally:
    """What one client saw."""

    sent: int = 0               # frames/batches sent, resends included
    resent: int = 0             # of which resends
    acked: int = 0              # frames/batches acknowledged (first ack only)
    extra_acks: int = 0         # a second ack for a frame resent while its first was in flight
    accepted: int = 0           # readings acknowledged as accepted
    duplicate: int = 0          # readings acknowledged as duplicate (already stored: a resend of a committed frame)
    errors: collections.Counter = field(default_factory=collections.Counter)        # error code → count
    http_status: collections.Counter = field(default_factory=collections.Counter)   # HTTP status → count
    closes: collections.Counter = field(default_factory=collections.Counter)        # why a stream had to reconnect
    retry_after: set = field(default_factory=set)     # every retry_after / Retry-After value seen
    reconnects: int = 0

    def add(self, other: Tally) -> None:
        for name in ("sent", "resent", "acked", "extra_acks", "accepted", "duplicate", "reconnects"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("errors", "http_status", "closes"):
            getattr(self, name).update(getattr(other, name))
        self.retry_after |= other.retry_after


class Phone:
    """One person's stream (WebSocket) or batch poster (HTTP), resending until every reading is acknowledged.

    ``frames`` readings per frame/batch, ``per_frame`` readings each; frame ``seq`` holds readings
    ``seq*per_frame ...``. With ``frames=None`` the phone sends until :meth:`finish` is called.
    """

    def __init__(self, service, token: str, person: str, *, http: bool = False, frames: int | None = None,
                 per_frame: int = 4, period: float = 0.2, window: int = 8, max_retry_wait: float | None = None):
        self.service, self.token, self.person, self.http = service, token, person, http
        self.frames, self.per_frame, self.period, self.window = frames, per_frame, period, window
        self.max_retry_wait = max_retry_wait
        self.next_seq = 0
        self.unacked: dict[int, list[dict]] = {}
        self.acked: dict[int, float] = {}          # seq → monotonic time of its first ack
        self.sent_keys: set[int] = set()
        self.acked_keys: set[int] = set()
        self.attempted: set[int] = set()          # seqs sent at least once (a later send is a resend)
        self.tally = Tally()
        self.last_error_at: float | None = None
        self._finish = asyncio.Event()
        self._progress = asyncio.Event()

    # --- what was sent and acknowledged --------------------------------------------------------------
    def frame_keys(self, seq: int) -> list[int]:
        return [key_of(reading(seq * self.per_frame + i)) for i in range(self.per_frame)]

    def _new_frame(self) -> tuple[int, list[dict]]:
        seq = self.next_seq
        self.next_seq += 1
        items = [reading(seq * self.per_frame + i) for i in range(self.per_frame)]
        self.unacked[seq] = items
        self.sent_keys.update(key_of(r) for r in items)
        return seq, items

    def _ack(self, seq: int, accepted: int, duplicate: int, rejected: int) -> None:
        items = self.unacked.pop(seq, None)
        if items is None:
            self.tally.extra_acks += 1
            return
        assert rejected == 0, f"{self.person} frame {seq}: {rejected} readings rejected"
        self.acked[seq] = time.monotonic()
        self.acked_keys.update(key_of(r) for r in items)
        self.tally.acked += 1
        self.tally.accepted += accepted
        self.tally.duplicate += duplicate
        self._progress.set()

    def _more_to_send(self) -> bool:
        if self._finish.is_set():
            return False
        return self.frames is None or self.next_seq < self.frames

    @property
    def done(self) -> bool:
        return not self._more_to_send() and not self.unacked

    def finish(self) -> None:
        """Send no new frames; keep resending until everything sent is acknowledged."""
        self._finish.set()
        self._progress.set()

    def _retry_wait(self, seconds: float) -> float:
        self.tally.retry_after.add(seconds)
        return min(seconds, self.max_retry_wait) if self.max_retry_wait is not None else seconds

    # --- WebSocket ------------------------------------------------------------------------------------
    async def run(self, deadline: float) -> None:
        if self.http:
            return await self._run_http(deadline)
        delay = 0.1
        first = True
        while not self.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.person}: {len(self.unacked)} frames never acknowledged")
            try:
                async with connect(self.service.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"},
                                   open_timeout=10, close_timeout=2, max_queue=256) as ws:
                    if not first:
                        self.tally.reconnects += 1
                    first = False
                    delay = 0.1
                    for seq in sorted(self.unacked):  # resend whatever was never acknowledged
                        await self._send(ws, seq)
                    await self._converse(ws, deadline)
            except InvalidStatus as exc:
                status = exc.response.status_code
                self.tally.closes[f"handshake_{status}"] += 1
                retry = exc.response.headers.get("Retry-After")
                await asyncio.sleep(self._retry_wait(float(retry)) if retry else delay)
            except ConnectionClosed as exc:
                self.tally.closes[f"closed_{exc.rcvd.code if exc.rcvd else 'abnormal'}"] += 1
                await asyncio.sleep(delay)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise
                self.tally.closes[type(exc).__name__] += 1
                await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _count_send(self, seq: int) -> None:
        self.tally.sent += 1
        if seq in self.attempted:
            self.tally.resent += 1
        self.attempted.add(seq)

    async def _send(self, ws, seq: int) -> None:
        items = self.unacked.get(seq)
        if items is None:
            return
        await ws.send(json.dumps({"seq": seq, "readings": items}))
        self._count_send(seq)

    async def _converse(self, ws, deadline: float) -> None:
        """Send new frames (at most ``window`` unacknowledged) and resend refused ones, until all are acknowledged.

        An ``unavailable`` or ``rate_limited`` error means "slow down": the stream sends nothing for
        ``retry_after`` seconds, then resends the refused frames first, in order, each after the answer to the
        one before."""
        retry: collections.deque[int] = collections.deque()
        hold_until = 0.0

        async def reader() -> None:
            nonlocal hold_until
            async for message in ws:
                m = json.loads(message)
                if m["type"] == "ack":
                    self._ack(m["seq"], m["accepted"], m["duplicate"], m["rejected"])
                elif m["type"] == "error":
                    self.tally.errors[m["code"]] += 1
                    self.last_error_at = time.monotonic()
                    if m["code"] not in ("unavailable", "rate_limited"):
                        raise AssertionError(f"{self.person}: unexpected error frame {m}")
                    if m["seq"] in self.unacked:
                        retry.append(m["seq"])
                    hold_until = max(hold_until, time.monotonic() + self._retry_wait(m["retry_after"]))
                    self._progress.set()

        async def writer() -> None:
            while not self.done:
                now = time.monotonic()
                if hold_until > now:
                    await asyncio.sleep(hold_until - now)
                elif retry:  # one at a time: wait for its answer before resending the next
                    self._progress.clear()
                    await self._send(ws, retry.popleft())
                    await self._progress.wait()
                elif self._more_to_send() and len(self.unacked) < self.window:
                    seq, _ = self._new_frame()
                    await self._send(ws, seq)
                    await asyncio.sleep(self.period * random.uniform(0.7, 1.3))
                else:
                    self._progress.clear()
                    await self._progress.wait()

        tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
        try:
            done, _ = await asyncio.wait(tasks, timeout=max(0.1, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise ConnectionClosed and assertion failures
            if not done:
                raise TimeoutError(f"{self.person}: stream did not finish in time")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- HTTP -----------------------------------------------------------------------------------------
    async def _run_http(self, deadline: float) -> None:
        async with httpx.AsyncClient(base_url=self.service.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {self.token}"}) as client:
            while not self.done:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.person}: {len(self.unacked)} batches never acknowledged")
                seq = min(self.unacked) if self.unacked else self._new_frame()[0]
                self._count_send(seq)
                try:
                    response = await client.post("/v1/readings", json={"readings": self.unacked[seq]})
                except httpx.HTTPError as exc:
                    self.tally.closes[type(exc).__name__] += 1
                    await asyncio.sleep(0.5)
                    continue
                self.tally.http_status[response.status_code] += 1
                if response.status_code == 200:
                    body = response.json()
                    self._ack(seq, body["accepted"], body["duplicate"], body["rejected"])
                    await asyncio.sleep(self.period * random.uniform(0.7, 1.3))
                elif response.status_code == 503:
                    self.last_error_at = time.monotonic()
                    assert "Retry-After" in response.headers, response.headers
                    assert response.json()["code"] == "unavailable", response.text
                    self.tally.errors["http_503"] += 1
                    await asyncio.sleep(self._retry_wait(float(response.headers["Retry-After"])))
                else:
                    raise AssertionError(f"{self.person}: unexpected {response.status_code} {response.text}")


async def run_phones(phones: list[Phone], deadline: float) -> None:
    await asyncio.gather(*(p.run(deadline) for p in phones))


def total(phones: list[Phone]) -> Tally:
    t = Tally()
    for p in phones:
        t.add(p.tally)
    return t


def stored_keys(admin_url: str, tenant_id) -> tuple[dict[str, list[int]], int]:
    """Per person (external id): the natural keys of their stored heart-rate readings, and the total row count."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT p.external_id, (extract(epoch FROM r.time) * 1000)::bigint FROM readings r
                 JOIN people p ON p.id = r.person_id WHERE r.tenant_id = %s AND r.metric = 'heart_rate'""",
            (tenant_id,)).fetchall()
    by_person: dict[str, list[int]] = collections.defaultdict(list)
    for person, key in rows:
        by_person[person].append(key)
    return by_person, len(rows)


def check_exactly_once(phones: list[Phone], admin_url: str, tenant_id) -> dict:
    """Every acknowledged reading is stored; every reading sent is stored exactly once; nothing else is."""
    by_person, _ = stored_keys(admin_url, tenant_id)
    lost_acked = lost = duplicates = unexpected = rows = 0
    for p in phones:
        stored = by_person.get(p.person, [])
        rows += len(stored)
        stored_set = set(stored)
        duplicates += len(stored) - len(stored_set)
        lost_acked += len(p.acked_keys - stored_set)
        lost += len(p.sent_keys - stored_set)
        unexpected += len(stored_set - p.sent_keys)
    return {"rows": rows, "sent": sum(len(p.sent_keys) for p in phones), "lost_acked": lost_acked, "lost": lost,
            "duplicates": duplicates, "unexpected": unexpected}


def check_all_or_nothing(phones: list[Phone], acked_before: dict[str, set[int]], admin_url: str, tenant_id) -> dict:
    """One consistent snapshot of the database: every frame is either wholly stored or not at all, and every
    frame acknowledged before the snapshot was taken is stored."""
    by_person, _ = stored_keys(admin_url, tenant_id)
    partial = missing_acked = whole = absent = 0
    for p in phones:
        stored = set(by_person.get(p.person, []))
        for seq in range(p.next_seq):
            keys = p.frame_keys(seq)
            present = sum(k in stored for k in keys)
            if present == len(keys):
                whole += 1
            elif present == 0:
                absent += 1
                if seq in acked_before[p.person]:
                    missing_acked += 1
            else:
                partial += 1
    return {"frames_whole": whole, "frames_absent": absent, "frames_partial": partial,
            "acked_missing": missing_acked}
