"""SQL for the policyholder's own page. Every function runs in a transaction scoped to the person
(``beidou.person_id`` set), so row-level security narrows every query to their own rows as well."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

# time_bucket widths the page charts with (the care page's: hourly, or daily for totals such as steps).
BUCKETS = {"1h": "1 hour", "1d": "1 day"}


async def series(conn: psycopg.AsyncConnection, *, person_id: UUID, metric: str, bucket: str, start: datetime,
                 end: datetime) -> list[dict]:
    """The person's readings of ``metric`` per bucket: average, lowest, highest and how many (hot and packed
    history alike)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT time_bucket(%s::interval, time) AS time, sum(value * n) / sum(n) AS avg, min(lo) AS min,
                  max(hi) AS max, sum(n)::bigint AS count
             FROM beidou_readings_span(%s, ARRAY[%s], %s, %s)
            GROUP BY 1 ORDER BY 1""",
        (BUCKETS[bucket], person_id, metric, start, end),
    )
    return await cur.fetchall()


async def baselines(conn: psycopg.AsyncConnection, *, person_id: UUID, metric: str, start: datetime,
                    end: datetime) -> list[dict]:
    """The detector's findings about ``metric`` in the window: each with the personal baseline it compared
    with (the same evidence the care team sees on an alert)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, kind, feature, tier, start_time, end_time, value, baseline, reason
             FROM anomaly_events
            WHERE person_id = %s AND metric = %s AND end_time >= %s AND start_time < %s
            ORDER BY start_time, id""",
        (person_id, metric, start, end),
    )
    return await cur.fetchall()


async def alerts_about(conn: psycopg.AsyncConnection, *, person_id: UUID, metric: str, since: datetime) -> list[dict]:
    """The alerts raised about ``metric`` that were open at some point since ``since``, newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, kind, feature, severity, status, urgent, summary, reason_code, details, episode_start,
                  episode_end, opened_at, resolved_at, resolution
             FROM alerts
            WHERE person_id = %s AND metric = %s AND (resolved_at IS NULL OR resolved_at >= %s)
            ORDER BY opened_at DESC""",
        (person_id, metric, since),
    )
    return await cur.fetchall()


async def messages(conn: psycopg.AsyncConnection, *, person_id: UUID, limit: int,
                   before: tuple[datetime, UUID] | None) -> list[dict]:
    """The care team's messages to the person, newest first, with where the alert they were about stands."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT n.id, n.purpose, n.status, n.metric, n.created_at, n.opened_at, n.answer, n.answered_at,
                  n.alert_id, a.summary, a.reason_code, a.details, a.status AS alert_status, a.resolution, a.urgent, a.resolved_at,
                  a.updated_at AS alert_updated_at, p.language
             FROM notifications n JOIN people p ON p.id = n.person_id LEFT JOIN alerts a ON a.id = n.alert_id
            WHERE n.person_id = %s AND n.recipient_kind = 'person'
              AND n.status <> 'cancelled'
              AND (%s::timestamptz IS NULL OR (n.created_at, n.id) < (%s, %s))
            ORDER BY n.created_at DESC, n.id DESC LIMIT %s""",
        (person_id, before[0] if before else None, before[0] if before else None, before[1] if before else None,
         limit),
    )
    return await cur.fetchall()
