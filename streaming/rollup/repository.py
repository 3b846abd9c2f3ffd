"""SQL of the chart roll-up (migration 0018): day rows of 24 hourly slots per person × metric × source, and
dirty hours.

Every function runs in a transaction scoped to one tenant (row-level security narrows each statement to it).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

from consent import repository as consent_repo

HOURLY_SPAN = "beidou_hourly_span(%s, ARRAY[%s], %s, %s)"
"""A person's hours of one metric, roll-up and raw tiers alike: ``FROM`` this with (person, metric, from, to);
aggregate with :data:`HOURLY_AGGREGATES`."""

STEPS_HOURLY = "beidou_steps_hourly(%s, %s, %s)"
"""Steps by the hour, one source per person and hour: ``FROM`` this with (person, from, to)."""

HOURLY_AGGREGATES = "sum(total) / sum(n), min(lo), max(hi), sum(n)::bigint"
"""Average, lowest, highest and count of rows of :data:`HOURLY_SPAN` / :data:`STEPS_HOURLY`."""

_MARK = """INSERT INTO readings_hourly_dirty AS d (tenant_id, person_id, metric, hour)
           SELECT beidou_tenant(), u.p, u.m, u.h FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[]) AS u(p, m, h)
            ORDER BY 2, 3, 4
           ON CONFLICT (person_id, metric, hour) DO UPDATE SET marked_at = now()"""

# Claimed marks are deleted first, in a statement of their own: the row lock waits for a writer that marked the
# hour and has not committed yet, so the roll-up computed by the NEXT statement (a new snapshot) sees its data.
_CLAIM = """DELETE FROM readings_hourly_dirty WHERE (person_id, metric, hour) IN (
              SELECT person_id, metric, hour FROM readings_hourly_dirty WHERE hour >= %s AND hour < %s
               ORDER BY person_id, metric, hour LIMIT %s FOR UPDATE)
            RETURNING person_id, metric, hour"""


def this_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


async def mark_past_hours(conn: psycopg.AsyncConnection, touched: Iterable[tuple[UUID, str, datetime]]) -> int:
    """Mark the hours before the current one that (person, metric, time) readings changed, for the roll-up to
    take again; no statement at all when every reading is of the current hour or later. Returns hours marked."""
    now = this_hour()
    hours = sorted({(p, m, t.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0))
                    for p, m, t in touched if t < now})
    if not hours:
        return 0
    await conn.execute(_MARK, ([p for p, _, _ in hours], [m for _, m, _ in hours], [h for _, _, h in hours]))
    return len(hours)


async def closed_hour(conn: psycopg.AsyncConnection, grace: timedelta) -> datetime:
    """The end of the last hour that closed at least ``grace`` ago (writers then have long committed)."""
    cur = await conn.execute("SELECT date_trunc('hour', now() - %s::interval, 'UTC')", (grace,))
    return (await cur.fetchone())[0]


async def state_for_update(conn: psycopg.AsyncConnection, tenant_id: UUID, start: datetime
                           ) -> tuple[datetime, datetime]:
    """The tenant's rolled range, locked; an empty range at ``start`` the first time."""
    await conn.execute(
        """INSERT INTO readings_hourly_state (tenant_id, rolled_from, rolled_to) VALUES (%s, %s, %s)
           ON CONFLICT (tenant_id) DO NOTHING""", (tenant_id, start, start))
    cur = await conn.execute("SELECT rolled_from, rolled_to FROM readings_hourly_state WHERE tenant_id = %s "
                             "FOR UPDATE", (tenant_id,))
    return await cur.fetchone()


async def set_state(conn: psycopg.AsyncConnection, tenant_id: UUID, rolled_from: datetime, rolled_to: datetime
                    ) -> None:
    await conn.execute("UPDATE readings_hourly_state SET rolled_from = %s, rolled_to = %s, updated_at = now() "
                       "WHERE tenant_id = %s", (rolled_from, rolled_to, tenant_id))


async def oldest_hour(conn: psycopg.AsyncConnection, hot_start: datetime) -> datetime:
    """Where the tenant's roll-up should start: its oldest packed day, its oldest dirty hour, or the start of
    the hot window, whichever is oldest."""
    cur = await conn.execute(
        """SELECT least((SELECT min(day) FROM readings_packed)::timestamp AT TIME ZONE 'UTC',
                        (SELECT min(hour) FROM readings_hourly_dirty), %s::timestamptz)""", (hot_start,))
    return (await cur.fetchone())[0]


# The hours beidou_raw_hours gives for (person, metrics, from, to) tuples ``c``, written into their day rows: a
# new row, or the empty slots of an existing one (slots outside the rolled range are empty, see migration 0018).
_PUT = """INSERT INTO readings_hourly AS h (tenant_id, person_id, day, metric, source, total, lo, hi, n)
          SELECT beidou_tenant(), c.p, (r.hour AT TIME ZONE 'UTC')::date, r.metric, r.source,
                 beidou_day_slots(array_agg(s.slot), array_agg(r.total), 0::float8),
                 beidou_day_slots(array_agg(s.slot), array_agg(r.lo::real), 0::real),
                 beidou_day_slots(array_agg(s.slot), array_agg(r.hi::real), 0::real),
                 beidou_day_slots(array_agg(s.slot), array_agg(r.n::integer), 0)
            FROM {tuples}
           CROSS JOIN LATERAL beidou_raw_hours(c.p, c.m, c.f, c.t) r
           CROSS JOIN LATERAL (SELECT extract(hour FROM r.hour AT TIME ZONE 'UTC')::integer AS slot) s
           GROUP BY 2, 3, 4, 5
          ON CONFLICT (person_id, metric, day, source) DO UPDATE SET
             total = beidou_day_slots_merge(excluded.n, excluded.total, h.total),
             lo = beidou_day_slots_merge(excluded.n, excluded.lo, h.lo),
             hi = beidou_day_slots_merge(excluded.n, excluded.hi, h.hi),
             n = beidou_day_slots_merge(excluded.n, excluded.n, h.n)"""


async def _share_everyone(conn: psycopg.AsyncConnection) -> None:
    """The tenant's people's consent locks, shared, as ingest holds them, taken before any mark or row is
    touched: an erasure (holding its person's exclusively) waits for the day rows written here to commit and
    then deletes them, or commits first, and the rows read here then hold nothing of that person."""
    cur = await conn.execute("SELECT coalesce(array_agg(id), '{}') FROM people WHERE erased_at IS NULL")
    await consent_repo.share_people(conn, (await cur.fetchone())[0])


async def roll_range(conn: psycopg.AsyncConnection, metrics: list[str], start: datetime, end: datetime) -> int:
    """Roll every person's hours in [start, end) into their day rows (hours outside the rolled range until now,
    so their slots are empty): marks in it are claimed first. Returns day rows written."""
    await _share_everyone(conn)
    await conn.execute(_CLAIM, (start, end, 2**31 - 1))
    cur = await conn.execute(_PUT.format(tuples="""(SELECT id AS p, %s::text[] AS m, %s::timestamptz AS f,
                                                           %s::timestamptz AS t
                                                      FROM people WHERE erased_at IS NULL) c"""),
                             (metrics, start, end))
    return cur.rowcount


async def roll_dirty(conn: psycopg.AsyncConnection, start: datetime, end: datetime, limit: int) -> int:
    """Roll up again (at most ``limit``) marked hours in [start, end): each one's whole day row, every source,
    within [start, end). Returns the hours taken."""
    await _share_everyone(conn)
    cur = await conn.execute(_CLAIM, (start, end, limit))
    claimed = await cur.fetchall()
    if not claimed:
        return 0
    days = sorted({(p, m, h.astimezone(timezone.utc).date()) for p, m, h in claimed})
    keys = ([p for p, _, _ in days], [m for _, m, _ in days], [d for _, _, d in days])
    await conn.execute(
        """DELETE FROM readings_hourly h USING unnest(%s::uuid[], %s::text[], %s::date[]) AS c(p, m, day)
            WHERE h.person_id = c.p AND h.metric = c.m AND h.day = c.day""", keys)
    await conn.execute(_PUT.format(tuples="""(SELECT u.p, ARRAY[u.m] AS m,
                                                     greatest(u.day::timestamp AT TIME ZONE 'UTC', %s) AS f,
                                                     least((u.day + 1)::timestamp AT TIME ZONE 'UTC', %s) AS t
                                                FROM unnest(%s::uuid[], %s::text[], %s::date[]) AS u(p, m, day)) c"""),
                       (start, end, *keys))
    return len(claimed)
