"""History tiers: hot readings for ``hot_days``, then one packed row per person × metric × UTC day × source.

The scheduler packs the hot table chunk by chunk (a chunk is one UTC day), oldest first. For each chunk and
tenant, people are packed in batches; each batch is ONE transaction that deletes the batch's hot rows,
merges them with any packed rows of the same days, writes the packed rows, and checks that the number of
readings packed equals the number taken — or rolls back. Once no tenant has rows left in the chunk, the chunk
is dropped (the database function refuses to drop a chunk that still holds a reading). So a crash at any
point loses and duplicates nothing: a batch is either packed and gone from the hot table, or untouched, and a
run after a crash carries on where the last one stopped. Running it twice does nothing the second time.

Readers span both tiers through ``beidou_readings_span`` (migration 0016).

Within the hot window, a day chunk's unique index is compacted once the day has closed
(``compact_hot_indexes``): readings of many people arriving together leave its pages about half full, and a
rebuild brings the index from about 60 to about 41 bytes per reading. It runs as the schema owner (REINDEX
INDEX CONCURRENTLY: reads and writes of the chunk go on meanwhile), from the scheduler when it has the owner's
URL or from ``beidou db compact``.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg

from app.core.db import Database, try_advisory_lock
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


# A day chunk's index is rebuilt once its day ended this long ago: most of a day's readings have arrived by then
# (phones sync every few hours); what comes later loosens it a little.
COMPACT_SETTLE = timedelta(hours=6)
# ... and rebuilt again when late readings have made it this much larger per row than its last rebuild left it.
LOOSENED = 1.2


# One compaction at a time, whoever runs it (the scheduler's job, `beidou db compact`): held by its session.
COMPACT_LOCK = zlib.crc32(b"beidou.history.compact_hot_indexes")


@dataclass
class CompactResult:
    running_elsewhere: bool = False
    indexes: int = 0          # indexes rebuilt
    bytes_before: int = 0
    bytes_after: int = 0
    leftovers: list[str] = field(default_factory=list)   # unfinished rebuilds dropped


async def compact_hot_indexes(owner_url: str, *, hot_days: int, settle: timedelta = COMPACT_SETTLE,
                              min_bytes: int = 1 << 20) -> CompactResult:
    """Rebuild the unique index of each closed hot day chunk that has not been rebuilt yet, or that late
    readings loosened since (``LOOSENED``), skipping indexes under ``min_bytes``. Idempotent; an interrupted
    rebuild leaves the old index in use and an invalid copy, which the next run drops."""
    result = CompactResult()
    async with await psycopg.AsyncConnection.connect(owner_url, autocommit=True,
                                                     application_name="beidou-compact") as conn:
        # A rebuild takes as long as it takes, but waits for older transactions at most this long: a session
        # left idle in a transaction then stops it (its invalid copy is dropped by the next run), not the job.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SET lock_timeout = '10min'")
        if not await try_advisory_lock(conn, COMPACT_LOCK):
            result.running_elsewhere = True
            return result
        result.leftovers = await repo.drop_unfinished_rebuilds(conn)
        await repo.forget_dropped_indexes(conn)
        for index in await repo.hot_indexes(conn, hot_days=hot_days, settle=settle):
            if index.bytes < min_bytes:
                continue
            rebuilt = index.bytes_after is not None and index.rows_at
            if rebuilt and index.bytes <= LOOSENED * index.bytes_after:
                continue   # not grown enough since its rebuild to be loosened by as much
            # The estimate autovacuum keeps may not have seen the latest readings: counted afresh (a sample).
            rows = await repo.analysed_rows(conn, index.chunk)
            if rows <= 0 or (rebuilt and index.bytes / rows <= LOOSENED * index.bytes_after / index.rows_at):
                continue
            try:
                after = await repo.rebuild(conn, index, rows)
            except psycopg.errors.LockNotAvailable:   # an older transaction would not end: the next run goes on
                log.warning("history.compaction_stopped index=%s reason=older_transaction_still_open",
                            index.qualified)
                break
            result.indexes += 1
            result.bytes_before += index.bytes
            result.bytes_after += after
            log.info("history.index_compacted index=%s day=%s bytes_before=%d bytes_after=%d", index.qualified,
                     index.range_start.date(), index.bytes, after)
    return result
