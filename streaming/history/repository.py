"""SQL of the history tiers: packing hot readings into per-person-day rows (migration 0016), and compacting
closed hot day chunks' indexes (migration 0022).

Packing's functions run in a transaction scoped to one tenant (row-level security narrows each statement to
it). Compaction's run as the schema owner, outside a transaction (REINDEX INDEX CONCURRENTLY needs both).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg
from psycopg import sql

from streaming.rollup import repository as rollup_repo

_STAGE = """CREATE TEMP TABLE IF NOT EXISTS pack_points (
    tenant_id uuid, person_id uuid, metric text, day date, source text, at timestamptz, total double precision,
    lo double precision, hi double precision, n integer, value2 double precision, details jsonb, off smallint,
    record bigint, received_at timestamptz, by_minute boolean) ON COMMIT DELETE ROWS"""

# 1. the hot readings of the batch leave the hot tables (into the stage), with their names (and their record's
#    id) back
_TAKE_HOT = """
WITH who AS (SELECT id, person_no, tenant_id FROM people WHERE id = ANY(%(people)s)),
-- the batch's people with their sources, looked up once: joined per reading, the planner's guesses went to a
-- look-up per reading (or, in a small tenant, every source of the tenant per reading)
names AS MATERIALIZED (SELECT w.person_no, w.id, w.tenant_id, s.source_no, s.source
                         FROM who w JOIN sources s ON s.person_id = w.id),
extra AS (
  DELETE FROM readings_hot_extra WHERE person_no IN (SELECT person_no FROM who)
     AND time >= %(start)s AND time < %(end)s
  RETURNING person_no, metric_no, time, source_no, value2, details),
gone AS (
  DELETE FROM readings_hot WHERE person_no IN (SELECT person_no FROM who) AND time >= %(start)s AND time < %(end)s
  RETURNING tenant_no, person_no, metric_no, source_no, time, value::text::float8 AS value, utc_offset_min,
            received_at, record_no),
staged AS (
INSERT INTO pack_points
SELECT n.tenant_id, n.id, d.name, (g.time AT TIME ZONE 'UTC')::date, n.source, g.time, g.value, g.value, g.value, 1,
       x.value2, x.details, g.utc_offset_min, rec.id, g.received_at,
       beidou_packs_by_minute(d.name) AND x.value2 IS NULL AND x.details IS NULL AND g.record_no = 0
  FROM gone g JOIN names n ON n.person_no = g.person_no AND n.source_no = g.source_no
  JOIN data_types d ON d.code = g.metric_no
  LEFT JOIN extra x ON x.person_no = g.person_no AND x.metric_no = g.metric_no AND x.time = g.time
                   AND x.source_no = g.source_no
  LEFT JOIN records rec ON g.record_no <> 0 AND rec.person_id = n.id AND rec.record_no = g.record_no
  RETURNING 1)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM staged)"""

# 2. the days' packed rows (a late reading's day packed before) join them, unpacked
_TAKE_PACKED = """
WITH old AS (
  DELETE FROM readings_packed WHERE person_id = ANY(%(people)s) AND day = ANY(%(days)s) AND metric = ANY(%(metrics)s)
  RETURNING *),
minutes AS (
  INSERT INTO pack_points
  SELECT o.tenant_id, o.person_id, o.metric, o.day, o.source,
         (o.day::timestamp AT TIME ZONE 'UTC') + (m.slot - 1) * interval '1 minute', m.total,
         coalesce(m.lo, m.total / m.n), coalesce(m.hi, m.total / m.n), m.n, NULL,
         NULL, m.off, NULL, o.received_at, true
    FROM old o CROSS JOIN LATERAL unnest(o.total, o.lo, o.hi, o.n, o.offsets) WITH ORDINALITY
                                  AS m(total, lo, hi, n, off, slot)
   WHERE m.n > 0),
exact AS (
  INSERT INTO pack_points
  SELECT o.tenant_id, o.person_id, o.metric, o.day, o.source,
         (o.day::timestamp AT TIME ZONE 'UTC') + x.ms * interval '1 millisecond', x.value, x.value, x.value, 1,
         x.value2, x.details, x.off, x.record, o.received_at, false
    FROM old o CROSS JOIN LATERAL unnest(o.at_ms, o.x_value, o.x_value2, o.x_details, o.x_offset, o.x_record)
                                  AS x(ms, value, value2, details, off, record))
SELECT coalesce(sum(reading_count), 0) FROM old"""

# 3. one row per person × metric × day × source. A dense signal's 1,440 per-minute slots are spelled out as
#    array text from the minutes that hold readings — each preceded by as many '0,' as empty minutes before it —
#    and parsed once: no row per empty minute, no join to a series of slots, no sort of them. The arrays are the
#    same as a join to the 1,440 slots gives, about ten times faster for a day of a reading every 15 minutes and
#    twice as fast for a full one. Reals print exactly (_clear_stage sets extra_float_digits: lower, they round).
_PACK = """
WITH minute AS (
  SELECT tenant_id, person_id, metric, day, source,
         floor(extract(epoch FROM at - (day::timestamp AT TIME ZONE 'UTC')) / 60)::int AS minute,
         sum(total) AS total, min(lo) AS lo, max(hi) AS hi, sum(n)::int AS n,
         -- the offset of the minute's first reading (the smaller offset if two share its time)
         (min(ARRAY[date_part('epoch', at), off]))[2]::smallint AS off, max(received_at) AS received_at
    FROM pack_points WHERE by_minute GROUP BY 1, 2, 3, 4, 5, 6),
present AS (
  SELECT *, repeat('0,', minute - coalesce(lag(minute) OVER slots, -1) - 1) AS zeros, max(n) OVER packed_row AS most
    FROM minute WINDOW packed_row AS (PARTITION BY tenant_id, person_id, metric, day, source),
                       slots AS (packed_row ORDER BY minute)),
minutes AS (
  SELECT tenant_id, person_id, metric, day, source, sum(n)::int AS count, max(received_at) AS received_at,
         ('{' || string_agg(zeros || total::real, ',' ORDER BY minute) || repeat(',0', 1439 - max(minute)) || '}'
          )::real[] AS total,
         -- lowest and highest say nothing new when every minute holds at most one reading: left empty
         coalesce(('{' || string_agg(zeros || lo::real, ',' ORDER BY minute) FILTER (WHERE most > 1)
                   || repeat(',0', 1439 - max(minute)) || '}')::real[], '{}') AS lo,
         coalesce(('{' || string_agg(zeros || hi::real, ',' ORDER BY minute) FILTER (WHERE most > 1)
                   || repeat(',0', 1439 - max(minute)) || '}')::real[], '{}') AS hi,
         ('{' || string_agg(zeros || n, ',' ORDER BY minute) || repeat(',0', 1439 - max(minute)) || '}')::int[] AS n,
         ('{' || string_agg(zeros || off, ',' ORDER BY minute) || repeat(',0', 1439 - max(minute)) || '}'
          )::smallint[] AS offsets
    FROM present GROUP BY 1, 2, 3, 4, 5),
exact AS (
  SELECT tenant_id, person_id, metric, day, source, count(*)::int AS count, max(received_at) AS received_at,
         array_agg(floor(extract(epoch FROM at - (day::timestamp AT TIME ZONE 'UTC')) * 1000)::int
                   ORDER BY at, record)
           AS at_ms,
         array_agg(total ORDER BY at, record) AS x_value, array_agg(value2 ORDER BY at, record) AS x_value2,
         array_agg(details ORDER BY at, record) AS x_details, array_agg(off ORDER BY at, record) AS x_offset,
         array_agg(record ORDER BY at, record) AS x_record
    FROM pack_points WHERE NOT by_minute GROUP BY 1, 2, 3, 4, 5)
INSERT INTO readings_packed (tenant_id, person_id, metric, day, source, reading_count, received_at, total,
                             lo, hi, n, offsets, at_ms, x_value, x_value2, x_details, x_offset, x_record)
SELECT coalesce(m.tenant_id, e.tenant_id), coalesce(m.person_id, e.person_id), coalesce(m.metric, e.metric),
       coalesce(m.day, e.day), coalesce(m.source, e.source), coalesce(m.count, 0) + coalesce(e.count, 0),
       greatest(m.received_at, e.received_at),
       coalesce(m.total, '{}'), coalesce(m.lo, '{}'), coalesce(m.hi, '{}'),
       coalesce(m.n, '{}'), coalesce(m.offsets, '{}'), coalesce(e.at_ms, '{}'), coalesce(e.x_value, '{}'),
       coalesce(e.x_value2, '{}'), coalesce(e.x_details, '{}'), coalesce(e.x_offset, '{}'), coalesce(e.x_record, '{}')
  FROM minutes m FULL JOIN exact e USING (person_id, metric, day, source)
RETURNING reading_count"""


async def _pack_stage(conn: psycopg.AsyncConnection) -> int:
    """Pack what the stage holds (_PACK); returns the readings now packed."""
    cur = await conn.execute(_PACK)
    return sum(row[0] for row in await cur.fetchall())


async def _clear_stage(conn: psycopg.AsyncConnection) -> None:
    # Reals print exactly (their shortest form) for the rest of the transaction, whatever the role's setting:
    # taking hot values (value::text) and spelling out the per-minute arrays (_PACK) go through text.
    await conn.execute("SET LOCAL extra_float_digits = 1")
    await conn.execute(_STAGE)
    await conn.execute("DELETE FROM pack_points")


async def packable_chunks(conn: psycopg.AsyncConnection, hot_days: int, limit: int
                          ) -> dict[tuple[datetime, datetime], list[UUID]]:
    """The (at most ``limit``) oldest hot chunks wholly older than the hot window, oldest first, each with the
    tenants that have readings in it."""
    cur = await conn.execute("SELECT range_start, range_end, tenant_id FROM beidou_packable_chunks(%s, %s)",
                             (hot_days, limit))
    chunks: dict[tuple[datetime, datetime], list[UUID]] = {}
    for start, end, tenant_id in await cur.fetchall():
        tenants = chunks.setdefault((start, end), [])
        if tenant_id is not None:
            tenants.append(tenant_id)
    return chunks


async def people_in(conn: psycopg.AsyncConnection, start: datetime, end: datetime, *, after: UUID | None,
                    limit: int) -> list[UUID]:
    """The next ``limit`` of the tenant's people (by id, after ``after``) with hot readings in [start, end)."""
    cur = await conn.execute(
        """SELECT p.id FROM people p
            WHERE (%s::uuid IS NULL OR p.id > %s)
              AND EXISTS (SELECT FROM readings_hot r WHERE r.person_no = p.person_no AND r.time >= %s AND r.time < %s)
            ORDER BY 1 LIMIT %s""",
        (after, after, start, end, limit))
    return [row[0] for row in await cur.fetchall()]


async def pack(conn: psycopg.AsyncConnection, people: list[UUID], start: datetime, end: datetime
               ) -> tuple[int, int, int]:
    """Move ``people``'s hot readings in [start, end) into packed rows, merged with any packed rows of the same
    days (a late reading's day). Returns (hot readings taken, packed readings taken, readings now packed); the
    caller commits only when the last is the sum of the first two."""
    await _clear_stage(conn)
    params = {"people": people, "start": start, "end": end}
    cur = await conn.execute(_TAKE_HOT, params)
    hot, staged = await cur.fetchone()
    if hot != staged:
        raise RuntimeError(f"packing found {hot - staged} hot readings without their person, type or source")
    cur = await conn.execute("SELECT array_agg(DISTINCT day), array_agg(DISTINCT metric) FROM pack_points")
    days, metrics = await cur.fetchone()
    if not days:
        return 0, 0, 0
    cur = await conn.execute(_TAKE_PACKED, {**params, "days": days, "metrics": metrics})
    before = (await cur.fetchone())[0]
    after = await _pack_stage(conn)
    return hot, int(before), after


async def unbounded(conn: psycopg.AsyncConnection) -> None:
    """A packing batch is a background job's one transaction: not bound by the request-sized statement timeout."""
    await conn.execute("SET LOCAL statement_timeout = '10min'")


async def repack_packed_days(conn: psycopg.AsyncConnection, person_id: UUID, days: list) -> int:
    """Fold the person's hot readings of ``days`` (UTC dates) that are already packed into their packed rows
    at once: readings a record sync wrote for days past the hot window. Returns the readings folded in."""
    cur = await conn.execute("SELECT DISTINCT day FROM readings_packed WHERE person_id = %s AND day = ANY(%s)",
                             (person_id, days))
    folded = 0
    for (day,) in await cur.fetchall():
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        hot, before, after = await pack(conn, [person_id], start, start + timedelta(days=1))
        if after != hot + before:
            raise RuntimeError(f"repacking {day} lost readings: {hot} + {before} != {after}")
        folded += hot
    return folded


async def drop_chunk(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> int:
    """Drop the hot chunk [start, end) once it is empty (the function refuses otherwise)."""
    cur = await conn.execute("SELECT beidou_drop_packed_chunk(%s, %s)", (start, end))
    return (await cur.fetchone())[0]


async def delete_packed_record(conn: psycopg.AsyncConnection, person_id: UUID, metric: str, record_id: int,
                               start: datetime, end: datetime) -> int:
    """Remove a platform record's readings from the packed days in [start, end] (they are kept exactly, with the
    record's id): each touched day is unpacked to the stage and packed again without them."""
    await _clear_stage(conn)
    cur = await conn.execute(
        """SELECT array_agg(day) FROM readings_packed
            WHERE person_id = %s AND metric = %s AND day >= (%s AT TIME ZONE 'UTC')::date
              AND day <= (%s AT TIME ZONE 'UTC')::date AND %s = ANY(x_record)""",
        (person_id, metric, start, end, record_id))
    days = (await cur.fetchone())[0]
    if not days:
        return 0
    cur = await conn.execute(_TAKE_PACKED, {"people": [person_id], "days": days, "metrics": [metric]})
    before = (await cur.fetchone())[0]
    cur = await conn.execute("DELETE FROM pack_points WHERE record = %s RETURNING at", (record_id,))
    removed = cur.rowcount
    await rollup_repo.mark_past_hours(conn, ((person_id, metric, at) for (at,) in await cur.fetchall()))
    after = await _pack_stage(conn)
    if after != before - removed:
        raise RuntimeError(f"repacking lost readings: {before} - {removed} != {after}")
    return removed


# --- compacting closed hot day chunks' indexes (the owner's session, autocommit) ---------------------------

@dataclass(frozen=True)
class HotIndex:
    """A unique index of one hot day chunk, with what its last rebuild (if any) left."""
    schema: str
    name: str
    qualified: str             # schema-qualified and quoted: the key of its rebuilds
    chunk: str                 # the chunk table, schema-qualified and quoted
    range_start: datetime
    range_end: datetime
    bytes: int
    bytes_after: int | None    # its size right after its last rebuild
    rows_at: float | None      # the chunk's row estimate then


_HOT_INDEXES = """
SELECT n.nspname, ic.relname, format('%%I.%%I', n.nspname, ic.relname),
       format('%%I.%%I', ch.chunk_schema, ch.chunk_name), ch.range_start, ch.range_end,
       pg_relation_size(i.indexrelid), h.bytes_after, h.rows_at
  FROM timescaledb_information.chunks ch
  -- to_regclass: a chunk packing drops meanwhile is left out, not an error
  JOIN pg_index i ON i.indrelid = to_regclass(format('%%I.%%I', ch.chunk_schema, ch.chunk_name)) AND i.indisvalid
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  LEFT JOIN beidou_meta.hot_index_compactions h ON h.index_name = format('%%I.%%I', n.nspname, ic.relname)
 WHERE ch.hypertable_schema = 'public' AND ch.hypertable_name = 'readings_hot'
   AND ch.range_end <= now() - %(settle)s
   AND ch.range_end > now() - make_interval(days => %(hot_days)s) + interval '1 day'
 ORDER BY ch.range_start, ic.relname"""


async def hot_indexes(conn: psycopg.AsyncConnection, *, hot_days: int, settle: timedelta) -> list[HotIndex]:
    """The indexes of the hot chunks whose day ended at least ``settle`` ago and that packing will not take
    within a day (it takes chunks past ``hot_days``), oldest first."""
    cur = await conn.execute(_HOT_INDEXES, {"settle": settle, "hot_days": hot_days})
    return [HotIndex(*row) for row in await cur.fetchall()]


async def analysed_rows(conn: psycopg.AsyncConnection, chunk: str) -> float:
    """ANALYZE a chunk (a sample of its rows) and return its row estimate."""
    await conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(chunk)))
    cur = await conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (chunk,))
    return (await cur.fetchone())[0]


async def rebuild(conn: psycopg.AsyncConnection, index: HotIndex, rows: float) -> int:
    """Rebuild ``index`` without blocking reads or writes of its chunk (REINDEX INDEX CONCURRENTLY keeps its
    name), note it in beidou_meta.hot_index_compactions, and return its new size."""
    await conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(index.schema, index.name)))
    cur = await conn.execute(
        """INSERT INTO beidou_meta.hot_index_compactions AS h
                  (index_name, range_start, range_end, bytes_before, bytes_after, rows_at)
           VALUES (%(name)s::text, %(start)s, %(end)s, %(before)s, pg_relation_size(%(name)s::text::regclass), %(rows)s)
           ON CONFLICT (index_name) DO UPDATE
              SET bytes_before = EXCLUDED.bytes_before, bytes_after = EXCLUDED.bytes_after,
                  rows_at = EXCLUDED.rows_at, rebuilds = h.rebuilds + 1, compacted_at = now()
           RETURNING bytes_after""",
        {"name": index.qualified, "start": index.range_start, "end": index.range_end, "before": index.bytes,
         "rows": rows})
    return (await cur.fetchone())[0]


async def drop_unfinished_rebuilds(conn: psycopg.AsyncConnection) -> list[str]:
    """Drop what an interrupted REINDEX CONCURRENTLY left on hot chunks: an invalid ``…_ccnew`` (the copy being
    built) or ``…_ccold`` (the original, swapped out but not yet dropped). Returns their names."""
    cur = await conn.execute(
        """SELECT n.nspname, ic.relname
             FROM timescaledb_information.chunks ch
             JOIN pg_index i ON i.indrelid = to_regclass(format('%I.%I', ch.chunk_schema, ch.chunk_name))
                            AND NOT i.indisvalid
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = ic.relnamespace
            WHERE ch.hypertable_schema = 'public' AND ch.hypertable_name = 'readings_hot'
              AND ic.relname ~ '_cc(new|old)[0-9]*$'""")
    dropped = []
    for schema, name in await cur.fetchall():
        await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name)))
        dropped.append(f"{schema}.{name}")
    return dropped


async def forget_dropped_indexes(conn: psycopg.AsyncConnection) -> int:
    """Forget the rebuilds of indexes whose chunk was packed and dropped since."""
    cur = await conn.execute("DELETE FROM beidou_meta.hot_index_compactions WHERE to_regclass(index_name) IS NULL")
    return cur.rowcount
