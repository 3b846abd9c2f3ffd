"""Group commit across WebSocket streams: frames that arrive within a few milliseconds of each other, on any
stream of this process, are handed to the ingest writer at the same moment, so they share one transaction.

Without it each frame reached the writer as it arrived and an idle writer committed it nearly alone: at a
thousand streams that was ~10 SQL statements per 1.4 frames, and the API spent most of its CPU on statement
round trips rather than on readings. Waiting ``wait_s`` (20 ms), and for the previous group's commit, before
handing over lets a hundred streams' frames share those statements; the wait is far below the ack latency a
client can notice.
"""
from __future__ import annotations

import asyncio
from typing import Protocol


class Gathered(Protocol):
    def start_store(self) -> None:
        """Hand the frames waiting on this stream to the writer now (without awaiting the commit); the stream
        calls :meth:`FrameGathering.stored` once that store has ended."""


class FrameGathering:
    """Streams with frames ready to store, started together (one timer per process).

    A gathering window closes ``wait_s`` after its first frame, or when the previous group has committed,
    whichever is later: under load the groups grow to what arrives during one commit (the writer commits
    fewer, larger transactions instead of queueing more of them), and a light load waits only ``wait_s``."""

    __slots__ = ("wait_s", "_ready", "_timer", "_in_flight", "_due")

    def __init__(self, wait_s: float = 0.02) -> None:
        self.wait_s = wait_s
        self._ready: list[Gathered] = []
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0  # stores of the group started last that have not ended
        self._due = False  # the window has closed; the group starts when the previous one has committed

    def join(self, stream: Gathered) -> None:
        """``stream`` has frames to store: start it with the others when this gathering window closes."""
        self._ready.append(stream)
        if self._timer is None and not self._due:
            self._timer = asyncio.get_running_loop().call_later(self.wait_s, self._window_closed)

    def stored(self) -> None:
        """One store of the group in flight has ended (committed or failed)."""
        self._in_flight -= 1
        if self._in_flight <= 0 and self._due:
            self._start_all()

    def _window_closed(self) -> None:
        self._timer = None
        if self._in_flight > 0:
            self._due = True
        else:
            self._start_all()

    def _start_all(self) -> None:
        # Every store's first step (validate, enqueue its job) runs before the writer wakes, so the writer
        # takes all of them at once: one transaction per tenant.
        ready, self._ready, self._due = self._ready, [], False
        self._in_flight = len(ready)
        for stream in ready:
            stream.start_store()
