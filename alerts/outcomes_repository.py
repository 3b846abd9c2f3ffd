"""SQL for the outcomes report: what the care team's work achieved, from the database's own timelines.

Every query is per tenant and time range, and reads through an index on (tenant_id, time): alerts by opening
time (carrying the first contact, first answer and escalations fired, which a trigger keeps from the alert
timeline), consent events, and notifications (carrying a summary of their delivery attempts, which a trigger
keeps) by time. No query joins two large tables, so no misestimated row count can make a join quadratic.
Buckets are days, ISO weeks or months in the insurer's time zone.
"""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

BUCKETS = ("day", "week", "month")

_ALERTS = """
WITH b AS (
  -- Each bucket's first local day and the instant its local midnight falls on: the time zone is converted once
  -- per bucket, and each alert finds its bucket by a binary search over these instants.
  SELECT array_agg(d::date ORDER BY d) AS days, array_agg(d AT TIME ZONE %(tz)s ORDER BY d) AS edges
    FROM generate_series(date_trunc(%(bucket)s, %(start)s AT TIME ZONE %(tz)s), %(end)s AT TIME ZONE %(tz)s,
                         ('1 ' || %(bucket)s)::interval) d
), a AS (
  -- "C" collation: grouping by these codes needs no locale-aware comparison.
  SELECT a.feature COLLATE "C" AS feature, a.severity COLLATE "C" AS severity, a.opened_at, a.claimed_at,
         a.resolved_at, a.resolution, a.assignee_id,
         a.first_contact_at, a.first_answer_at, a.first_answer, a.escalations_fired,
         b.days[width_bucket(a.opened_at, b.edges)] AS bucket
    FROM alerts a CROSS JOIN b
   WHERE a.tenant_id = %(tenant)s AND a.opened_at >= %(start)s AND a.opened_at < %(end)s
)"""

_COUNTS = _ALERTS + """
SELECT GROUPING(a.bucket, a.feature, a.severity) = 0 AS per_bucket, a.bucket, a.feature, a.severity, a.assignee_id,
       count(*) AS opened,
       count(a.claimed_at) AS claimed,
       count(a.first_contact_at) AS contacted,
       count(a.first_answer_at) AS answered,
       count(*) FILTER (WHERE a.first_answer = 'fine') AS answered_fine,
       count(*) FILTER (WHERE a.first_answer = 'help') AS answered_help,
       count(*) FILTER (WHERE a.first_answer = 'call') AS answered_call,
       count(a.resolved_at) AS resolved,
       count(*) FILTER (WHERE a.resolution = 'needed_help') AS needed_help,
       count(*) FILTER (WHERE a.resolution = 'false_alarm') AS false_alarm,
       count(*) FILTER (WHERE a.resolution = 'member_fine') AS member_fine,
       count(*) FILTER (WHERE a.resolution = 'no_response') AS no_response,
       count(*) FILTER (WHERE a.resolution = 'consent_withdrawn') AS consent_withdrawn,
       coalesce(sum(a.escalations_fired), 0)::bigint AS escalations,
       count(*) FILTER (WHERE a.escalations_fired > 0) AS deadline_breaches
  FROM a
 GROUP BY GROUPING SETS ((a.bucket, a.feature, a.severity), (a.assignee_id))
"""

_TIMES = _ALERTS + """
SELECT GROUPING(a.feature, a.severity) = 0 AS per_feature, a.feature, a.severity,
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY date_part('epoch', a.claimed_at - a.opened_at))
         AS claim_q,
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY date_part('epoch', a.first_contact_at - a.opened_at))
         AS contact_q,
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY date_part('epoch', a.first_answer_at - a.opened_at))
         AS answer_q
  FROM a
 GROUP BY GROUPING SETS ((a.feature, a.severity), ())
"""


async def prepare(conn: psycopg.AsyncConnection) -> None:
    """The report sorts a year of alerts at once: room to do it in memory, for this transaction only. No
    parallel workers: on the API's database they would compete with every other request (and measured slower
    on a busy 2-core machine)."""
    await conn.execute("SET LOCAL work_mem = '64MB'")
    await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")


async def counts(conn: psycopg.AsyncConnection, *, tenant_id: UUID, start: datetime, end: datetime, bucket: str,
                 tz: str) -> list[dict]:
    """Alerts opened in [start, end) and what became of them, counted per (bucket, feature, severity) and per
    assignee (``per_bucket`` says which). Counts add up, so every other total is a sum of these rows."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_COUNTS, {"tenant": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz})
    return await cur.fetchall()


async def times(conn: psycopg.AsyncConnection, *, tenant_id: UUID, start: datetime, end: datetime, bucket: str,
                tz: str) -> list[dict]:
    """Median and 90th percentile (``[p50, p90]``, seconds) from opening to claim, first contact and the member's
    answer, per (feature, severity) and overall (``per_feature`` false)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_TIMES, {"tenant": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz})
    return await cur.fetchall()


async def monitored_changes(conn: psycopg.AsyncConnection, *, tenant_id: UUID, start: datetime, end: datetime,
                            bucket: str, tz: str) -> list[dict]:
    """How the number of people with monitoring consent (for at least one data type) changed: the net change
    before ``start`` (``bucket`` NULL), then per bucket. Replays the consent history in order."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """WITH e AS (
             SELECT id, person_id, created_at, action = 'grant' AS granted,
                    lag(action = 'grant', 1, false) OVER (PARTITION BY person_id, data_type ORDER BY id) AS was
               FROM consent_events
              WHERE tenant_id = %(tenant)s AND purpose = 'monitoring' AND created_at < %(end)s
           ), d AS (
             SELECT id, person_id, created_at,
                    sum(granted::int - was::int) OVER (PARTITION BY person_id ORDER BY id) AS types
               FROM e WHERE granted <> was
           ), p AS (
             SELECT created_at,
                    (types > 0)::int - (coalesce(lag(types) OVER (PARTITION BY person_id ORDER BY id), 0) > 0)::int
                      AS delta
               FROM d
           )
           SELECT CASE WHEN created_at < %(start)s THEN NULL
                       ELSE date_trunc(%(bucket)s, created_at AT TIME ZONE %(tz)s)::date END AS bucket,
                  sum(delta)::bigint AS delta
             FROM p GROUP BY 1 ORDER BY 1 NULLS FIRST""",
        {"tenant": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz})
    return await cur.fetchall()


async def consent_changes(conn: psycopg.AsyncConnection, *, tenant_id: UUID, start: datetime, end: datetime,
                          bucket: str, tz: str) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT date_trunc(%(bucket)s, created_at AT TIME ZONE %(tz)s)::date AS bucket, purpose, action,
                  count(*) AS changes
             FROM consent_events
            WHERE tenant_id = %(tenant)s AND created_at >= %(start)s AND created_at < %(end)s
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        {"tenant": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz})
    return await cur.fetchall()


async def active_people(conn: psycopg.AsyncConnection, *, tenant_id: UUID, at: datetime) -> int:
    """People whose devices sent data in the three days before ``at`` (as last seen now)."""
    cur = await conn.execute(
        """SELECT count(DISTINCT person_id) FROM sources
            WHERE tenant_id = %s AND last_seen >= %s - interval '3 days' AND last_seen < %s + interval '1 minute'""",
        (tenant_id, at, at))
    return (await cur.fetchone())[0]


async def pushes(conn: psycopg.AsyncConnection, *, tenant_id: UUID, start: datetime, end: datetime) -> list[dict]:
    """Outbox messages created in [start, end), by the provider that carried them (``webhook`` for events to
    the insurer's systems, ``none`` when no attempt was made): sent, delivered, opened, answered, dead letters.
    Each row's attempt summary is kept from its delivery attempts by a trigger (migration 0011)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT coalesce(delivery_provider, CASE WHEN recipient_kind = 'webhook' THEN 'webhook' ELSE 'none' END)
                    AS provider,
                  recipient_kind AS recipient,
                  count(*) AS queued,
                  count(*) FILTER (WHERE attempted) AS sent,
                  count(*) FILTER (WHERE delivered) AS delivered,
                  count(opened_at) AS opened,
                  count(answered_at) AS answered,
                  count(*) FILTER (WHERE status = 'failed') AS dead_letters
             FROM notifications
            WHERE tenant_id = %(tenant)s AND created_at >= %(start)s AND created_at < %(end)s
            GROUP BY 1, 2 ORDER BY 1, 2""",
        {"tenant": tenant_id, "start": start, "end": end})
    return await cur.fetchall()


async def staff_names(conn: psycopg.AsyncConnection, staff_ids: list[UUID]) -> dict[UUID, dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, external_id, role FROM staff WHERE id = ANY(%s)", (staff_ids,))
    return {row["id"]: row for row in await cur.fetchall()}


async def tenant_time_zone(conn: psycopg.AsyncConnection) -> str:
    cur = await conn.execute("SELECT time_zone FROM tenants WHERE id = beidou_tenant()")
    row = await cur.fetchone()
    return row[0] if row else "UTC"
