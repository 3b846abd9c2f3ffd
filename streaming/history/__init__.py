"""History tiers: hot readings for ``hot_days``, then one packed row per person × metric × UTC day × source.

The scheduler packs the hot table chunk by chunk (a chunk is one UTC day), oldest first. For each chunk and
tenant, people are packed in batches; each batch is ONE transaction that deletes the batch's hot rows,
merges them with any packed rows of the same days, writes the packed rows, and checks that the number of
readings packed equals the number taken — or rolls back. Once no tenant has rows left in the chunk, the chunk
is dropped (the database function refuses to drop a chunk that still holds a reading). So a crash at any
point loses and duplicates nothing: a batch is either packed and gone from the hot table, or untouched, and a
run after a crash carries on where the last one stopped. Running it twice does nothing the second time.

Readers span both tiers through ``beidou_readings_span`` (migration 0016).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

import psycopg

from app.core.db import Database
from streaming.history import repository as repo

log = logging.getLogger(__name__)


class PackingMismatch(RuntimeError):
    """The packed count is not the count taken: the batch was rolled back."""


@dataclass
class PackResult:
    chunks: int = 0       # hot chunks dropped
    readings: int = 0     # hot readings packed


async def pack_history(db: Database, tenants: list[UUID], *, hot_days: int, batch_people: int = 50,
                       stop_before_drop: bool = False) -> PackResult:
    """Pack every hot chunk older than ``hot_days``, then drop it. ``stop_before_drop`` leaves the emptied
    chunks in place (tests of a crash between packing and dropping)."""
    result = PackResult()
    async with db.transaction(tenant_id=None) as conn:
        chunks = await repo.packable_chunks(conn, hot_days)
    for start, end in chunks:
        for tenant_id in tenants:
            async with db.transaction(tenant_id=tenant_id) as conn:
                await repo.unbounded(conn)
                everyone = await repo.people_in(conn, start, end)
            for i in range(0, len(everyone), batch_people):
                async with db.transaction(tenant_id=tenant_id) as conn:
                    await repo.unbounded(conn)
                    hot, before, after = await repo.pack(conn, everyone[i:i + batch_people], start, end)
                    if after != hot + before:
                        raise PackingMismatch(f"{start:%Y-%m-%d} tenant {tenant_id}: took {hot} hot and {before} "
                                              f"packed readings, packed {after}")
                result.readings += hot
        if stop_before_drop:
            continue
        try:
            async with db.transaction(tenant_id=None) as conn:
                result.chunks += await repo.drop_chunk(conn, start, end)
        except psycopg.errors.RaiseException as exc:  # a reading arrived meanwhile: the next run packs it
            log.warning("history.chunk_kept chunk=%s reason=%s", start.date(), str(exc).strip()[:200])
            continue
        log.info("history.packed chunk=%s readings=%d", start.date(), result.readings)
    return result
