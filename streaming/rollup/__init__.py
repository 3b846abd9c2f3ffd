"""Chart roll-up: per person × metric × UTC day × source, one row of 24 hourly slots holding the sum, lowest,
highest and count of each hour's readings (count 0 where an hour has nothing).

The scheduler runs :func:`roll_up` (lock-guarded). Per tenant, in transactions of at most one UTC day each:

1. forward: the hours that closed since the last run (at least ``grace`` ago, so every writer of them has
   committed) are rolled up and ``rolled_to`` moves past them, in one transaction;
2. backward: ``rolled_from`` moves back a day at a time, to the tenant's oldest packed day, oldest dirty hour or
   the start of the hot window (``max_days`` days per run: a year of history is worked off over a few runs);
   both only fill empty slots of day rows, since slots of hours outside the rolled range are always empty;
3. dirty: hours inside the rolled range that writers marked (a late reading, a record replaced or deleted, a
   repacked day, see :func:`repository.mark_past_hours`) have their day rows (every source) rolled up again.

A step's rows and its move of the range commit together, so a crash loses nothing and a rerun repeats
nothing. Readers never depend on how far this got: ``beidou_hourly_span`` (migration 0018) answers an hour
from the roll-up only when it is inside the rolled range and not marked, and from the raw tiers otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from app.core.datatypes import DATA_TYPES
from app.core.db import Database
from streaming.history import repository as history_repo
from streaming.rollup import repository as repo

DAY = timedelta(days=1)


@dataclass
class RollupResult:
    rows: int = 0      # day rows written (new or filled) by forward and backward steps
    dirty: int = 0     # marked hours rolled up again


def _day_start(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


async def roll_up(db: Database, tenants: list[UUID], *, hot_days: int, grace: timedelta = timedelta(minutes=10),
                  max_days: int = 31, dirty_batch: int = 2000) -> RollupResult:
    """Bring each tenant's roll-up up to the last closed hour, back towards its oldest data, and clean."""
    result = RollupResult()
    for tenant_id in tenants:
        await _roll_tenant(db, tenant_id, result, hot_days=hot_days, grace=grace, max_days=max_days,
                           dirty_batch=dirty_batch)
    return result


async def _roll_tenant(db: Database, tenant_id: UUID, result: RollupResult, *, hot_days: int, grace: timedelta,
                       max_days: int, dirty_batch: int) -> None:
    metrics = sorted(DATA_TYPES)
    for _ in range(max_days + 1):   # forward, a UTC day per transaction
        async with db.transaction(tenant_id=tenant_id) as conn:
            await history_repo.unbounded(conn)
            target = await repo.closed_hour(conn, grace)
            rolled_from, rolled_to = await repo.state_for_update(conn, tenant_id, target)
            if rolled_to >= target:
                break
            end = min(target, _day_start(rolled_to) + DAY)
            result.rows += await repo.roll_range(conn, metrics, rolled_to, end)
            await repo.set_state(conn, tenant_id, rolled_from, end)
    oldest = None
    for _ in range(max_days):       # backward, a UTC day per transaction
        async with db.transaction(tenant_id=tenant_id) as conn:
            await history_repo.unbounded(conn)
            rolled_from, rolled_to = await repo.state_for_update(conn, tenant_id, target)
            if oldest is None:
                oldest = await repo.oldest_hour(conn, _day_start(target) - hot_days * DAY)
            if rolled_from <= oldest:
                break
            start = max(oldest, _day_start(rolled_from - timedelta(microseconds=1)))
            result.rows += await repo.roll_range(conn, metrics, start, rolled_from)
            await repo.set_state(conn, tenant_id, start, rolled_to)
    while True:                     # dirty hours inside the rolled range
        async with db.transaction(tenant_id=tenant_id) as conn:
            await history_repo.unbounded(conn)
            rolled_from, rolled_to = await repo.state_for_update(conn, tenant_id, target)
            taken = await repo.roll_dirty(conn, rolled_from, rolled_to, dirty_batch)
        result.dirty += taken
        if taken < dirty_batch:
            break
