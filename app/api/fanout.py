"""Open connections grouped by a key (a person, a tenant), so one change can reach all of them."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable, Iterable
from uuid import UUID

from app.core.channels import AlertChange, ConsentChange


class Subscribers:
    def __init__(self) -> None:
        self._by_key: dict[Hashable, set[asyncio.Queue]] = defaultdict(set)

    def add(self, key: Hashable, queue: asyncio.Queue) -> None:
        self._by_key[key].add(queue)

    def remove(self, key: Hashable, queue: asyncio.Queue) -> None:
        queues = self._by_key.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._by_key[key]

    def of(self, key: Hashable) -> Iterable[asyncio.Queue]:
        return self._by_key.get(key, ())

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())


class StreamRegistry(Subscribers):
    """Open ingest streams per person, so a consent change reaches every one of them at once (a stream is
    anything with ``put_nowait``: the stream's own outbox)."""

    def consent_changed(self, change: ConsentChange) -> None:
        message = {"type": "consent", "data_type": change.data_type, "purpose": change.purpose,
                   "granted": change.granted}
        for outbox in self.of(UUID(change.person_id)):
            outbox.put_nowait(message)


class CareFeed(Subscribers):
    """Open care-page connections per tenant."""

    def publish(self, change: AlertChange) -> None:
        # An alert whose monitoring consent is not in force is never named: the page only reloads its queue.
        message = ({"type": "alert", "alert_id": change.alert_id, "action": change.action} if change.shown
                   else {"type": "alert", "alert_id": None, "action": "hidden"})
        for queue in self.of(UUID(change.tenant_id)):
            if queue.qsize() < 1000:  # a stalled page must not grow memory; it reloads on reconnect
                queue.put_nowait(message)
