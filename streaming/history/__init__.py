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


async def pack_history(db: Database, *, hot_days: int, batch_people: int = 50,
                       max_chunks: int = 31, stop_before_drop: bool = False) -> PackResult:
    """Pack the (at most ``max_chunks``) oldest hot chunks older than ``hot_days``, then drop each. The
    scheduler runs this hourly, so a backlog is worked off a month of days at a time. ``stop_before_drop``
    leaves the emptied chunks in place (tests of a crash between packing and dropping)."""
    result = PackResult()
    async with db.transaction(tenant_id=None) as conn:
        await repo.unbounded(conn)
        chunks = await repo.packable_chunks(conn, hot_days, max_chunks)
    for (start, end), tenants in chunks.items():
        for tenant_id in tenants:
            last = None
            while True:   # one transaction per batch: list the next people, pack them
                async with db.transaction(tenant_id=tenant_id) as conn:
                    await repo.unbounded(conn)
                    people = await repo.people_in(conn, start, end, after=last, limit=batch_people)
                    if not people:
                        break
                    hot, before, after = await repo.pack(conn, people, start, end)
                    if after != hot + before:
                        raise PackingMismatch(f"{start:%Y-%m-%d} tenant {tenant_id}: took {hot} hot and {before} "
                                              f"packed readings, packed {after}")
                result.readings += hot
                if len(people) < batch_people:
                    break
                last = people[-1]
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
