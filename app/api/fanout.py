"""Open connections grouped by a key (a person, a tenant), so one change can reach all of them."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable, Iterable


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
