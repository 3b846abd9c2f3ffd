"""SQL of platform records. Every function runs inside a transaction scoped to the tenant and the person."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from streaming.history import repository as history_repo
from streaming.rollup import repository as rollup_repo

if TYPE_CHECKING:
    from streaming.records import _Prepared



@dataclass(slots=True)
class StoredRecord:
    id: int
    platform: str
    source_app: str
    native_id: str
    alias_id: str | None
    metric: str
    version_time: datetime | None
    version_seq: int
    content_hash: str
    state: str
    start_time: datetime
    end_time: datetime
    record_type: str = ""
    utc_offset_min: int | None = None
    record_no: int = 0     # the person's number of the record, in each of its hot readings (0: not stored yet)


_COLUMNS = ("id, platform, source_app, native_id, alias_id, metric, version_time, version_seq, content_hash, state, "
            "start_time, end_time, record_type, utc_offset_min, record_no")


async def person_time_zone(conn: psycopg.AsyncConnection, person_id: UUID) -> str | None:
    cur = await conn.execute("SELECT time_zone FROM people WHERE id = %s", (person_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def find_records(conn: psycopg.AsyncConnection, person_id: UUID, identities: list[tuple[str, str]]
                       ) -> dict[tuple[str, str], list[StoredRecord]]:
    """The person's records named by (platform, native id or alias), keyed by both."""
    if not identities:
        return {}
    platforms = [p for p, _ in identities]
    ids = [i for _, i in identities]
    cur = conn.cursor(row_factory=class_row(StoredRecord))
    await cur.execute(
        # Two index lookups (identity, alias) per key rather than one OR the planner can only answer by
        # scanning all of the person's records.
        f"""SELECT {_COLUMNS} FROM records r
             WHERE r.id IN (SELECT x.id FROM unnest(%s::text[], %s::text[]) AS k(kp, kid)
                              JOIN records x ON x.person_id = %s AND x.platform = k.kp AND x.native_id = k.kid
                            UNION
                            SELECT x.id FROM unnest(%s::text[], %s::text[]) AS k(kp, kid)
                              JOIN records x ON x.person_id = %s AND x.platform = k.kp AND x.alias_id = k.kid)
             ORDER BY r.id FOR UPDATE""",
        (platforms, ids, person_id, platforms, ids, person_id))
    found: dict[tuple[str, str], list[StoredRecord]] = {}
    for record in await cur.fetchall():
        keys = {(record.platform, record.native_id)}
        if record.alias_id:
            keys.add((record.platform, record.alias_id))
        for key in keys:
            if all(r.id != record.id for r in found.get(key, [])):
                found.setdefault(key, []).append(record)
    return found


async def insert_records(conn: psycopg.AsyncConnection, tenant_id: UUID, person_id: UUID,
                         new: list[tuple[_Prepared, StoredRecord]]) -> dict[int, int]:
    """The records a request created, in one statement; placeholder id -> the id the database gave."""
    columns = [[] for _ in range(15)]
    for p, record in new:
        op = p.op
        for column, value in zip(columns, (
                op.platform, op.source_app, op.native_id, op.alias_id, op.record_type, op.metric, op.version_time,
                op.version_seq, p.content_hash, record.state, p.start, p.end, p.offset_min, p.inferred,
                len(p.rows) if record.state == "live" else 0)):
            column.append(value)
    cur = await conn.execute(
        """INSERT INTO records (tenant_id, person_id, platform, source_app, native_id, alias_id, record_type, metric,
                                version_time, version_seq, content_hash, state, start_time, end_time,
                                utc_offset_min, offset_inferred, reading_count, deleted_at)
           SELECT %s, %s, u.*, CASE WHEN u.state = 'deleted' THEN now() END
             FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
                         %s::int8[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::int2[],
                         %s::bool[], %s::int4[])
                  AS u(platform, source_app, native_id, alias_id, record_type, metric, version_time, version_seq,
                       content_hash, state, start_time, end_time, utc_offset_min, offset_inferred, reading_count)
           RETURNING id, platform, native_id, source_app""",
        (tenant_id, person_id, *columns))
    given = {(platform, native_id, app): rid for rid, platform, native_id, app in await cur.fetchall()}
    return {record.id: given[(record.platform, record.native_id, record.source_app)] for _, record in new}


async def update_record(conn: psycopg.AsyncConnection, record_id: int, p: _Prepared) -> StoredRecord:
    """A newer version: the record becomes live with its new times and content."""
    op = p.op
    cur = conn.cursor(row_factory=class_row(StoredRecord))
    await cur.execute(
        f"""UPDATE records SET alias_id = coalesce(%s, alias_id), record_type = %s, metric = %s, version_time = %s,
                   version_seq = %s, content_hash = %s, state = 'live', start_time = %s, end_time = %s,
                   utc_offset_min = %s, offset_inferred = %s, reading_count = %s, updated_at = now(),
                   deleted_at = NULL
             WHERE id = %s RETURNING {_COLUMNS}""",
        (op.alias_id, op.record_type, op.metric, op.version_time, op.version_seq, p.content_hash, p.start, p.end,
         p.offset_min, p.inferred, len(p.rows), record_id))
    return await cur.fetchone()


async def delete_readings(conn: psycopg.AsyncConnection, person_id: UUID, record: StoredRecord) -> int:
    """Remove the readings a record owns, in the hot table and in packed history (a packed day is repacked
    without them). The hot rows are found by the person's record number among the person's readings of the
    record's type in its time range (the key's index bounds the search to them: no index of its own)."""
    if record.record_no <= 0:  # 0 is what every reading no record owns carries: never a key to delete by
        raise ValueError(f"record {record.id} has no record number")
    cur = await conn.execute(
        """WITH gone AS (
             DELETE FROM readings_hot
              WHERE person_no = (SELECT person_no FROM people WHERE id = %(person)s)
                AND metric_no = (SELECT code FROM data_types WHERE name = %(metric)s)
                AND time >= %(start)s AND time <= %(end)s AND record_no = %(record_no)s
             RETURNING person_no, metric_no, time, source_no),
           extra AS (
             DELETE FROM readings_hot_extra x USING gone g
              WHERE x.person_no = g.person_no AND x.metric_no = g.metric_no AND x.time = g.time
                AND x.source_no = g.source_no AND x.time >= %(start)s AND x.time <= %(end)s)
           SELECT count(*), array_agg(DISTINCT date_trunc('hour', time, 'UTC')) FROM gone""",
        {"person": person_id, "metric": record.metric, "start": record.start_time, "end": record.end_time,
         "record_no": record.record_no})
    removed, hours = await cur.fetchone()
    await rollup_repo.mark_past_hours(conn, ((person_id, record.metric, h) for h in hours or ()))
    return removed + await history_repo.delete_packed_record(conn, person_id, record.metric, record.id,
                                                              record.start_time, record.end_time)


async def withdraw(conn: psycopg.AsyncConnection, person_id: UUID, record: StoredRecord) -> None:
    """A deleted record: its readings go, the record stays as a tombstone."""
    await delete_readings(conn, person_id, record)
    await conn.execute(
        "UPDATE records SET state = 'deleted', deleted_at = now(), updated_at = now(), reading_count = 0 "
        "WHERE id = %s", (record.id,))
    record.state = "deleted"


async def live_in_window(conn: psycopg.AsyncConnection, person_id: UUID, platform: str, source_app: str, metric: str,
                         start: datetime, end: datetime) -> list[StoredRecord]:
    """Live records of one source and type that start inside [start, end)."""
    cur = conn.cursor(row_factory=class_row(StoredRecord))
    await cur.execute(
        f"""SELECT {_COLUMNS} FROM records
             WHERE person_id = %s AND platform = %s AND source_app = %s AND metric = %s
               AND start_time >= %s AND start_time < %s AND state = 'live'
             ORDER BY start_time FOR UPDATE""",
        (person_id, platform, source_app, metric, start, end))
    return await cur.fetchall()


async def live_of_type(conn: psycopg.AsyncConnection, person_id: UUID, platform: str, source_app: str,
                       type_prefix: str, start: datetime, end: datetime) -> list[StoredRecord]:
    """Live records of one source whose record type starts with ``type_prefix`` and that start in [start, end)
    (e.g. the sleep stage samples of one night)."""
    cur = conn.cursor(row_factory=class_row(StoredRecord))
    await cur.execute(
        f"""SELECT {_COLUMNS} FROM records
             WHERE person_id = %s AND platform = %s AND source_app = %s AND metric = 'sleep'
               AND start_time >= %s AND start_time < %s AND state = 'live' AND starts_with(record_type, %s)
             ORDER BY start_time""",
        (person_id, platform, source_app, start, end, type_prefix))
    return await cur.fetchall()


_STAGE = """CREATE TEMP TABLE IF NOT EXISTS record_stage (
    time timestamptz, metric text, value double precision, value2 double precision, details jsonb, source text,
    utc_offset_min smallint, record_id bigint) ON COMMIT DELETE ROWS"""
_COPY = "COPY record_stage (time, metric, value, value2, details, source, utc_offset_min, record_id) FROM STDIN " \
        "(FORMAT BINARY)"
_COPY_TYPES = ["timestamptz", "text", "float8", "float8", "jsonb", "text", "int2", "int8"]


async def insert_readings(conn: psycopg.AsyncConnection, tenant_id: UUID, person_id: UUID,
                          pending: dict[int, tuple[str, list[tuple]]]) -> int:
    """Store the readings of the records written by this transaction: binary COPY into a stage, then one
    INSERT … SELECT under row-level security (COPY cannot write a table with RLS, as in ingest).

    A reading whose natural key another live record of the same app already holds is kept once. Readings for a
    day already packed into compact history are packed into it in the same transaction."""
    await note_sources(conn, tenant_id, person_id, sorted({source for source, _ in pending.values()}))
    await conn.execute(_STAGE)
    async with conn.cursor() as cur:
        async with cur.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for record_id, (source, rows) in pending.items():
                for time, metric, value, value2, detail, offset in rows:
                    await copy.write_row((time, metric, value, value2, None if detail is None else Jsonb(detail),
                                          source, offset, record_id))
        # One row per natural key (two records of the app holding the same key: the older record keeps it), with
        # its numbers and its record's; a diastolic or stages go beside the rows stored now.
        await cur.execute(
            """WITH staged AS (
                 SELECT DISTINCT ON (d.code, r.time, so.source_no) r.*, p.person_no, d.code AS metric_no, so.source_no,
                        rec.record_no
                   FROM record_stage r CROSS JOIN (SELECT person_no FROM people WHERE id = %(person)s) p
                   JOIN records rec ON rec.id = r.record_id
                   LEFT JOIN data_types d ON d.name = r.metric
                   LEFT JOIN sources so ON so.person_id = %(person)s AND so.source = r.source
                  ORDER BY d.code, r.time, so.source_no, r.record_id),
               stored AS (
                 INSERT INTO readings_hot (time, person_no, value, tenant_no, metric_no, source_no, utc_offset_min,
                                           record_no)
                 SELECT time, person_no, value, (SELECT beidou_tenant_no()), metric_no, source_no, utc_offset_min,
                        record_no
                   FROM staged ON CONFLICT DO NOTHING
                 RETURNING person_no, tenant_no, metric_no, time, source_no),
               extra AS (
                 INSERT INTO readings_hot_extra (time, person_no, tenant_no, metric_no, source_no, value2, details)
                 SELECT s.time, s.person_no, s.tenant_no, s.metric_no, s.source_no, g.value2, g.details
                   FROM stored s JOIN staged g ON g.metric_no = s.metric_no AND g.time = s.time
                                              AND g.source_no = s.source_no
                  WHERE g.value2 IS NOT NULL OR g.details IS NOT NULL)
               SELECT count(*) FROM stored""", {"person": person_id})
        stored = (await cur.fetchone())[0]
        await rollup_repo.mark_past_hours(conn, ((person_id, metric, time) for _, rows in pending.values()
                                                 for time, metric, *_ in rows))
        # Days already packed (past the hot window) take their new readings in at once.
        await cur.execute("SELECT array_agg(DISTINCT (time AT TIME ZONE 'UTC')::date) FROM record_stage")
        days = (await cur.fetchone())[0] or []
    await history_repo.repack_packed_days(conn, person_id, days)
    return stored


async def note_sources(conn: psycopg.AsyncConnection, tenant_id: UUID, person_id: UUID, sources: list[str]) -> None:
    await conn.execute(
        """INSERT INTO sources AS s (tenant_id, person_id, source) SELECT %s, %s, unnest(%s::text[])
           ON CONFLICT (person_id, source) DO UPDATE SET last_seen = now()
           WHERE s.last_seen < now() - interval '1 minute'""",
        (tenant_id, person_id, sources))


async def records_of(conn: psycopg.AsyncConnection, person_id: UUID) -> list[dict]:
    """The person's records (live and tombstones), oldest first: for export and tests of the audit trail."""
    cur = await conn.execute(
        """SELECT platform, source_app, native_id, record_type, metric, state, start_time, end_time, utc_offset_min,
                  offset_inferred, reading_count, version_time, version_seq, updated_at, deleted_at
             FROM records WHERE person_id = %s ORDER BY start_time, id""", (person_id,))
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in await cur.fetchall()]


async def source_priorities(conn: psycopg.AsyncConnection, person_id: UUID) -> dict[str, list[str]]:
    cur = await conn.execute("SELECT metric, sources FROM source_priority WHERE person_id = %s ORDER BY metric",
                             (person_id,))
    return {metric: sources for metric, sources in await cur.fetchall()}


async def set_source_priority(conn: psycopg.AsyncConnection, tenant_id: UUID, person_id: UUID, metric: str,
                              sources: list[str]) -> None:
    await conn.execute(
        """INSERT INTO source_priority (tenant_id, person_id, metric, sources) VALUES (%s, %s, %s, %s)
           ON CONFLICT (person_id, metric) DO UPDATE SET sources = EXCLUDED.sources, updated_at = now()""",
        (tenant_id, person_id, metric, sources))


STEPS_SPAN = "beidou_steps_span(%s, %s, %s)"
"""Steps as readers must see them (one source per person and hour), hot and packed history alike: ``FROM``
this with (person, from, to); aggregate with :data:`SPAN_AGGREGATES`."""

SPAN_AGGREGATES = "sum(value * n) / sum(n), min(lo), max(hi), sum(n)::bigint"
"""Average, lowest, highest and count of rows of ``beidou_readings_span`` / ``beidou_steps_span`` (a packed
minute weighs as many readings as it holds)."""
