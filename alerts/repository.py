"""SQL for alerts. Every function runs inside a tenant-scoped transaction."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from app.core import channels
from streaming.events import AnomalyEvent
from streaming.records import repository as records_repo
from streaming.rollup import repository as rollup_repo

ALERT_CHANNEL = channels.ALERTS.name

# Staff may see an alert's health data (summary, evidence, readings) only while the person's monitoring consent
# for its data type is in force; a request for help carries none.
_SHOWN = "(a.kind = 'help_request' OR beidou_consent_in_force(a.person_id, a.metric, 'monitoring'))"

ALERT_COLUMNS = """a.id, a.person_id, p.external_id AS person, a.kind, a.feature, a.metric, a.tier, a.severity,
    a.urgent, a.status, a.summary, a.reason_code, a.details, a.episode_start, a.episode_end, a.opened_at, a.updated_at, s.external_id AS assignee,
    a.claimed_at, a.resolved_at, a.resolution, a.resolution_note, a.next_escalation_at, a.escalations_done,
    NOT """ + _SHOWN + """ AS data_hidden"""


async def unhandled_events(conn: psycopg.AsyncConnection, limit: int) -> list[AnomalyEvent]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, person_id, kind, feature, metric, tier, start_time, end_time, value, baseline, reason,
                  reason_code, details
             FROM anomaly_events WHERE handled_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
        (limit,),
    )
    return [AnomalyEvent.from_row(row) for row in await cur.fetchall()]


async def mark_handled(conn: psycopg.AsyncConnection, event_id: int) -> None:
    await conn.execute("UPDATE anomaly_events SET handled_at = now() WHERE id = %s", (event_id,))


async def tenant_policy(conn: psycopg.AsyncConnection) -> dict | None:
    cur = await conn.execute("SELECT policy FROM escalation_policies WHERE tenant_id = beidou_tenant()")
    row = await cur.fetchone()
    return row[0] if row else None


async def save_policy(conn: psycopg.AsyncConnection, tenant_id: UUID, policy: dict, by: str) -> None:
    await conn.execute(
        """INSERT INTO escalation_policies (tenant_id, policy, updated_by) VALUES (%s, %s, %s)
           ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy, updated_by = EXCLUDED.updated_by,
                                                 updated_at = now()""",
        (tenant_id, Jsonb(policy), by),
    )


async def open_alert_for_update(conn: psycopg.AsyncConnection, person_id: UUID, kind: str, feature: str
                                ) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT * FROM alerts WHERE person_id = %s AND kind = %s AND feature = %s AND status <> 'resolved'
           FOR UPDATE""",
        (person_id, kind, feature),
    )
    return await cur.fetchone()


async def insert_alert(conn: psycopg.AsyncConnection, **fields) -> UUID:
    fields["policy"] = Jsonb(fields["policy"])
    if "details" in fields:
        fields["details"] = Jsonb(fields["details"])
    columns = ", ".join(fields)
    placeholders = ", ".join(["%s"] * len(fields))
    cur = await conn.execute(f"INSERT INTO alerts ({columns}) VALUES ({placeholders}) RETURNING id",
                             tuple(fields.values()))
    return (await cur.fetchone())[0]


async def update_alert(conn: psycopg.AsyncConnection, alert_id: UUID, **fields) -> None:
    if "details" in fields:
        fields["details"] = Jsonb(fields["details"])
    assignments = ", ".join(f"{name} = %s" for name in fields)
    await conn.execute(f"UPDATE alerts SET {assignments}, updated_at = now() WHERE id = %s",
                       (*fields.values(), alert_id))


async def alert_for_update(conn: psycopg.AsyncConnection, alert_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
    return await cur.fetchone()


async def add_evidence(conn: psycopg.AsyncConnection, *, alert_id: UUID, event_id: int, tenant_id: UUID,
                       person_id: UUID) -> None:
    await conn.execute(
        """INSERT INTO alert_evidence (alert_id, anomaly_event_id, tenant_id, person_id) VALUES (%s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (alert_id, event_id, tenant_id, person_id),
    )


async def add_timeline(conn: psycopg.AsyncConnection, *, alert_id: UUID, tenant_id: UUID, person_id: UUID,
                       actor_kind: str, actor_id: str, action: str, from_status: str | None = None,
                       to_status: str | None = None, detail: dict | None = None) -> None:
    await conn.execute(
        """INSERT INTO alert_timeline (alert_id, tenant_id, person_id, actor_kind, actor_id, action, from_status,
                                       to_status, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (alert_id, tenant_id, person_id, actor_kind, actor_id, action, from_status, to_status, Jsonb(detail or {})),
    )
    await notify_alert_change(conn, tenant_id=tenant_id, alert_id=alert_id, action=action)


async def notify_alert_change(conn: psycopg.AsyncConnection, *, tenant_id: UUID, alert_id: UUID, action: str) -> None:
    """Tell the care pages (at commit) that an alert changed: ``tenant|alert|action|shown`` — or ``hidden``
    when the person's monitoring consent for its data type is not in force, so the feed never names it."""
    await conn.execute(
        f"""SELECT pg_notify(%s, %s || CASE WHEN {_SHOWN} THEN '|shown' ELSE '|hidden' END)
              FROM alerts a WHERE a.id = %s""",
        (ALERT_CHANNEL, channels.AlertChange(str(tenant_id), str(alert_id), action).prefix(), alert_id))


async def queue(conn: psycopg.AsyncConnection, *, statuses: list[str], severities: list[str] | None,
                assignee: str | None, kinds: list[str], after: tuple | None, limit: int) -> list[dict]:
    """The tenant's queue: urgent first, then most severe, then oldest. ``after`` is the sort key of the
    previous page's last row. Alerts whose monitoring consent is gone are never shown, even in the moment
    before the worker closes them."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""SELECT {ALERT_COLUMNS}, a.severity_rank
              FROM alerts a JOIN people p ON p.id = a.person_id LEFT JOIN staff s ON s.id = a.assignee_id
             WHERE a.status = ANY(%(statuses)s) AND a.kind = ANY(%(kinds)s)
               AND (%(severities)s::text[] IS NULL OR a.severity = ANY(%(severities)s))
               AND (%(assignee)s::text IS NULL OR s.external_id = %(assignee)s)
               AND {_SHOWN}
               AND (%(has_after)s = false OR (-(a.urgent::int), -a.severity_rank, a.opened_at, a.id)
                                             > (%(u)s, %(r)s, %(o)s, %(i)s))
             ORDER BY a.urgent DESC, a.severity_rank DESC, a.opened_at ASC, a.id ASC
             LIMIT %(limit)s""",
        {"statuses": statuses, "kinds": kinds, "severities": severities, "assignee": assignee, "limit": limit,
         "has_after": after is not None,
         "u": -int(after[0]) if after else 0, "r": -int(after[1]) if after else 0,
         "o": after[2] if after else None, "i": after[3] if after else None},
    )
    return await cur.fetchall()


async def alert_view(conn: psycopg.AsyncConnection, alert_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""SELECT {ALERT_COLUMNS}, a.consent_event_id, a.policy
              FROM alerts a JOIN people p ON p.id = a.person_id LEFT JOIN staff s ON s.id = a.assignee_id
             WHERE a.id = %s""",
        (alert_id,),
    )
    return await cur.fetchone()


async def evidence(conn: psycopg.AsyncConnection, alert_id: UUID) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        # withdrawn: the person's app deleted the records behind this event and no reading of it is left.
        """SELECT e.id, e.kind, e.feature, e.metric, e.tier, e.start_time, e.end_time, e.value, e.baseline, e.reason,
                  e.created_at,
                  (EXISTS (SELECT FROM records d
                            WHERE d.person_id = e.person_id AND d.metric = e.metric AND d.state = 'deleted'
                              AND d.start_time <= e.end_time AND d.end_time >= e.start_time)
                   AND NOT EXISTS (SELECT FROM readings_hot r JOIN people p ON p.person_no = r.person_no
                                      JOIN data_types t ON t.code = r.metric_no
                                    WHERE p.id = e.person_id AND t.name = e.metric
                                      AND r.time >= e.start_time AND r.time <= e.end_time)) AS withdrawn
             FROM alert_evidence v JOIN anomaly_events e ON e.id = v.anomaly_event_id
            WHERE v.alert_id = %s ORDER BY e.id""",
        (alert_id,),
    )
    return await cur.fetchall()


async def timeline(conn: psycopg.AsyncConnection, alert_id: UUID) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT at, actor_kind, actor_id, action, from_status, to_status, detail
             FROM alert_timeline WHERE alert_id = %s ORDER BY id""",
        (alert_id,),
    )
    return await cur.fetchall()


async def notifications_for(conn: psycopg.AsyncConnection, alert_id: UUID) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT n.id, n.recipient_kind, coalesce(p.external_id, s.external_id) AS recipient, n.purpose, n.status,
                  n.status_detail, n.held_reason, n.not_before, n.attempts, n.created_at, n.updated_at
             FROM notifications n LEFT JOIN people p ON p.id = n.person_id LEFT JOIN staff s ON s.id = n.staff_id
            WHERE n.alert_id = %s ORDER BY n.created_at""",
        (alert_id,),
    )
    return await cur.fetchall()


async def staff_by_external(conn: psycopg.AsyncConnection, external_id: str) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, external_id, role FROM staff WHERE external_id = %s", (external_id,))
    return await cur.fetchone()


async def staff_to_notify(conn: psycopg.AsyncConnection, target: str, assignee_id: UUID | None) -> list[UUID]:
    if target == "assignee":
        return [assignee_id] if assignee_id else []
    if target == "supervisors":
        cur = await conn.execute("SELECT id FROM staff WHERE role IN ('care_supervisor', 'tenant_admin') ORDER BY id")
    else:
        cur = await conn.execute("SELECT id FROM staff WHERE on_duty ORDER BY id")
    return [row[0] for row in await cur.fetchall()]


async def queue_notification(conn: psycopg.AsyncConnection, *, tenant_id: UUID, alert_id: UUID | None,
                             purpose: str, person_id: UUID | None = None, staff_id: UUID | None = None,
                             metric: str | None = None, critical: bool = False,
                             not_before: datetime | None = None) -> UUID:
    cur = await conn.execute(
        """INSERT INTO notifications (tenant_id, recipient_kind, person_id, staff_id, alert_id, purpose, metric,
                                      critical, not_before)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) RETURNING id""",
        (tenant_id, "person" if person_id else "staff", person_id, staff_id, alert_id, purpose, metric, critical,
         not_before),
    )
    await channels.notify(conn, channels.OUTBOX, tenant_id)
    return (await cur.fetchone())[0]


async def due_escalations(conn: psycopg.AsyncConnection, limit: int) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT * FROM alerts WHERE next_escalation_at <= now() AND status <> 'resolved'
           ORDER BY next_escalation_at LIMIT %s FOR UPDATE SKIP LOCKED""",
        (limit,),
    )
    return await cur.fetchall()


async def open_alerts_for_metric(conn: psycopg.AsyncConnection, person_id: UUID, metric: str) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM alerts WHERE person_id = %s AND metric = %s AND status <> 'resolved' FOR UPDATE",
        (person_id, metric),
    )
    return await cur.fetchall()


async def cancel_pending_notifications(conn: psycopg.AsyncConnection, alert_id: UUID, why: str) -> int:
    """Pushes to the person about this alert that have not left yet. Webhook events stay: the insurer's
    systems receive every change, in order, including the ones just before a resolution."""
    cur = await conn.execute(
        """UPDATE notifications SET status = 'cancelled', status_detail = %s, updated_at = now()
            WHERE alert_id = %s AND status IN ('queued', 'held') AND recipient_kind <> 'webhook'""",
        (why, alert_id),
    )
    return cur.rowcount


async def add_feedback(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, feature: str,
                       until: datetime) -> None:
    await conn.execute(
        """INSERT INTO detector_feedback (tenant_id, person_id, feature, kind, until)
           VALUES (%s, %s, %s, 'false_alarm', %s)""",
        (tenant_id, person_id, feature, until),
    )
    await channels.notify(conn, channels.FEEDBACK, (tenant_id, person_id))


async def audit(conn: psycopg.AsyncConnection, *, tenant_id: UUID, actor_kind: str, actor_id: str, action: str,
                person_id: UUID | None, detail: dict) -> None:
    await conn.execute(
        """INSERT INTO audit_log (tenant_id, actor_kind, actor_id, action, subject_person_id, detail)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (tenant_id, actor_kind, actor_id, action, person_id, Jsonb(detail)),
    )


async def set_on_duty(conn: psycopg.AsyncConnection, staff_id: UUID, on_duty: bool) -> None:
    await conn.execute("UPDATE staff SET on_duty = %s WHERE id = %s", (on_duty, staff_id))


async def person_by_external(conn: psycopg.AsyncConnection, external_id: str) -> UUID | None:
    cur = await conn.execute("SELECT id FROM people WHERE external_id = %s", (external_id,))
    row = await cur.fetchone()
    return row[0] if row else None


# Chart buckets that hold whole UTC hours (time_bucket aligns them to UTC midnight): the roll-up answers them.
_WHOLE_HOURS = re.compile(r"\d+ (hour|day)s?")


async def reading_series(conn: psycopg.AsyncConnection, *, person_id: UUID, metric: str, bucket: str,
                         start: datetime, end: datetime) -> list[tuple]:
    """(bucket start, avg, min, max, count) of the person's ``metric`` readings in [start, end). Steps come one
    source per person and hour (``streaming.records.repository.STEPS_SPAN``): two apps' steps never add up.
    Hot and packed history alike (``beidou_readings_span``); buckets of whole hours or days read the hourly
    roll-up where it is up to date (``streaming.rollup``), with the same answer."""
    if _WHOLE_HOURS.fullmatch(bucket):
        span, args = ((rollup_repo.STEPS_HOURLY, (person_id, start, end)) if metric == "steps"
                      else (rollup_repo.HOURLY_SPAN, (person_id, metric, start, end)))
        cur = await conn.execute(
            f"""SELECT time_bucket(%s::interval, hour) AS t, {rollup_repo.HOURLY_AGGREGATES}
                  FROM {span} GROUP BY t ORDER BY t""", (bucket, *args))
        return await cur.fetchall()
    if metric == "steps":
        cur = await conn.execute(
            f"""SELECT time_bucket(%s::interval, time) AS t, {records_repo.SPAN_AGGREGATES}
                  FROM {records_repo.STEPS_SPAN} GROUP BY t ORDER BY t""",
            (bucket, person_id, start, end))
        return await cur.fetchall()
    cur = await conn.execute(
        f"""SELECT time_bucket(%s::interval, time) AS t, {records_repo.SPAN_AGGREGATES}
              FROM beidou_readings_span(%s, ARRAY[%s], %s, %s) GROUP BY t ORDER BY t""",
        (bucket, person_id, metric, start, end),
    )
    return await cur.fetchall()


async def alert_giving_reason(conn: psycopg.AsyncConnection, *, person_id: UUID, staff_id: UUID | None,
                              resolved_within: timedelta) -> UUID | None:
    """An alert of the person that gives this staff member a reason to look (need-to-know): open and theirs or
    unassigned (None: anyone's), or resolved within ``resolved_within``. Consent is checked apart: it hides
    the values, and the page says so."""
    cur = await conn.execute(
        """SELECT a.id FROM alerts a
             WHERE a.person_id = %s AND (%s::uuid IS NULL OR a.assignee_id IS NULL OR a.assignee_id = %s)
               AND a.kind <> 'help_request'
               AND (a.status <> 'resolved' OR a.resolved_at > now() - %s::interval)
             ORDER BY a.status <> 'resolved' DESC, a.opened_at DESC LIMIT 1""",
        (person_id, staff_id, staff_id, resolved_within),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def open_help_request_for_update(conn: psycopg.AsyncConnection, person_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT * FROM alerts WHERE person_id = %s AND kind = 'help_request' AND status <> 'resolved'
           FOR UPDATE""", (person_id,))
    return await cur.fetchone()


_AUDIT_ITEM = """SELECT l.id, l.at, l.actor_id AS staff, l.action, l.detail, p.external_id AS person
                   FROM audit_log l LEFT JOIN people p ON p.id = l.subject_person_id"""
LOOK_ACTIONS = ["readings.viewed", "alert.evidence_viewed"]


async def access_log(conn: psycopg.AsyncConnection, *, person_id: UUID, before: int | None, limit: int
                     ) -> tuple[list[dict], bool]:
    """Staff looks at the person's data, newest first (the person's own context may read exactly these), and
    whether the insurer names its staff in them."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT l.id, l.at, l.actor_id AS staff, l.action, l.detail FROM audit_log l
            WHERE l.subject_person_id = %s AND l.actor_kind = 'staff' AND l.action = ANY(%s)
              AND (%s::bigint IS NULL OR l.id < %s) ORDER BY l.id DESC LIMIT %s""",
        (person_id, LOOK_ACTIONS, before, before, limit),
    )
    rows = await cur.fetchall()
    cur2 = await conn.execute("SELECT access_log_names_staff FROM tenants WHERE id = beidou_tenant()")
    named = await cur2.fetchone()
    return rows, bool(named and named[0])


async def audit_view(conn: psycopg.AsyncConnection, *, person: str | None, staff: str | None,
                     break_glass: bool | None, start: datetime | None, end: datetime | None, before: int | None,
                     limit: int) -> list[dict]:
    """The insurer's audit log of staff looks, newest first, filtered; keyset-paged on the id."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _AUDIT_ITEM + """
            WHERE l.actor_kind = 'staff' AND l.action = ANY(%(actions)s)
              AND (%(person)s::text IS NULL OR p.external_id = %(person)s)
              AND (%(staff)s::text IS NULL OR l.actor_id = %(staff)s)
              AND (%(glass)s::boolean IS NULL OR coalesce((l.detail->>'break_glass')::boolean, false) = %(glass)s)
              AND (%(start)s::timestamptz IS NULL OR l.at >= %(start)s)
              AND (%(end)s::timestamptz IS NULL OR l.at < %(end)s)
              AND (%(before)s::bigint IS NULL OR l.id < %(before)s)
            ORDER BY l.id DESC LIMIT %(limit)s""",
        {"actions": LOOK_ACTIONS, "person": person, "staff": staff, "glass": break_glass, "start": start,
         "end": end, "before": before, "limit": limit},
    )
    return await cur.fetchall()


async def quiet_hours(conn: psycopg.AsyncConnection, person_id: UUID) -> tuple:
    cur = await conn.execute("SELECT quiet_start, quiet_end FROM people WHERE id = %s", (person_id,))
    return await cur.fetchone()


async def set_quiet_hours(conn: psycopg.AsyncConnection, person_id: UUID, start, end) -> None:
    await conn.execute("UPDATE people SET quiet_start = %s, quiet_end = %s WHERE id = %s", (start, end, person_id))


DIGEST_ACTION = "audit.break_glass_digest"


async def break_glass_digest_due(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> int | None:
    """Break-the-glass looks of the tenant in [start, end), or None when that day's digest was already sent."""
    cur = await conn.execute(
        "SELECT 1 FROM audit_log WHERE action = %s AND detail->>'from' = %s LIMIT 1",
        (DIGEST_ACTION, start.isoformat()))
    if await cur.fetchone():
        return None
    cur = await conn.execute(
        """SELECT count(*) FROM audit_log WHERE actor_kind = 'staff' AND action = ANY(%s)
              AND coalesce((detail->>'break_glass')::boolean, false) AND at >= %s AND at < %s""",
        (LOOK_ACTIONS, start, end))
    return (await cur.fetchone())[0]
