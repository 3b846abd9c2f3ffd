"""SQL for the notification outbox: pushes to people and staff, and webhooks to the insurer's systems.

Every function runs inside a tenant-scoped transaction (a person-scoped one where the name says so). Rows are
written in the same transaction as the change that causes them; the sender claims them with a lease.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts import repository as alert_repo
from app.core import channels

OUTBOX_CHANNEL = channels.OUTBOX.name
PENDING = ("queued", "held", "sending")


# --- claiming and settling (the sender) ---------------------------------------------------------------------

async def claim_due(conn: psycopg.AsyncConnection, limit: int) -> list[dict]:
    """Due rows, locked. A webhook row waits while an earlier row for the same endpoint and subject (an alert,
    or a person for consent changes) is still pending: deliveries are ordered per alert."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT n.*, a.status AS alert_status, a.severity
             FROM notifications n LEFT JOIN alerts a ON a.id = n.alert_id
            WHERE n.status IN ('queued', 'held', 'sending') AND n.not_before <= now()
              AND (n.recipient_kind <> 'webhook' OR NOT EXISTS (
                    SELECT 1 FROM notifications e
                     WHERE e.endpoint_id = n.endpoint_id AND e.order_key = n.order_key AND e.seq < n.seq
                       AND e.status IN ('queued', 'held', 'sending')))
            ORDER BY n.critical DESC, n.not_before, n.seq LIMIT %s FOR UPDATE OF n SKIP LOCKED""",
        (limit,),
    )
    return await cur.fetchall()


async def mark_sending(conn: psycopg.AsyncConnection, notification_id: UUID, lease_until: datetime) -> None:
    await conn.execute(
        """UPDATE notifications SET status = 'sending', attempts = attempts + 1, not_before = %s,
                  updated_at = now() WHERE id = %s""", (lease_until, notification_id))


async def set_status(conn: psycopg.AsyncConnection, n: dict, *, status: str, status_detail: str | None,
                     not_before: datetime | None = None, held_reason: str | None = None) -> None:
    await conn.execute(
        """UPDATE notifications SET status = %s, status_detail = %s, not_before = coalesce(%s, not_before),
                  held_reason = %s, updated_at = now() WHERE id = %s""",
        (status, status_detail, not_before, held_reason, n["id"]))
    if n["alert_id"] and n["recipient_kind"] != "webhook":
        await alert_repo.notify_alert_change(conn, tenant_id=n["tenant_id"], alert_id=n["alert_id"],
                                             action=f"notification_{status}")


async def record_delivery(conn: psycopg.AsyncConnection, *, notification_id: UUID, device_id: UUID | None,
                          tenant_id: UUID, person_id: UUID | None, attempt: int, ok: bool,
                          provider_message_id: str | None, error_code: str | None, detail: str | None,
                          provider: str | None) -> None:
    await conn.execute(
        """INSERT INTO notification_deliveries (notification_id, device_id, tenant_id, person_id, attempt, ok,
                                                provider_message_id, error_code, detail, provider)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (notification_id, device_id, tenant_id, person_id, attempt, ok, provider_message_id, error_code, detail,
         provider))


async def disable_device(conn: psycopg.AsyncConnection, device_id: UUID, reason: str | None) -> None:
    await conn.execute("UPDATE devices SET disabled_at = now(), disabled_reason = %s WHERE id = %s",
                       (reason, device_id))


async def devices_for(conn: psycopg.AsyncConnection, n: dict) -> list[dict]:
    """The recipient's live devices, most recently seen first."""
    cur = conn.cursor(row_factory=dict_row)
    column = "person_id" if n["recipient_kind"] == "person" else "staff_id"
    await cur.execute(f"""SELECT id, provider, token, token_kind, platform, language FROM devices
                           WHERE {column} = %s AND disabled_at IS NULL ORDER BY last_seen DESC LIMIT 10""",
                      (n[column],))
    return await cur.fetchall()


async def person_for_outreach(conn: psycopg.AsyncConnection, person_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, external_id, time_zone, language, quiet_start, quiet_end FROM people WHERE id = %s",
                      (person_id,))
    return await cur.fetchone()


async def current_tenant(conn: psycopg.AsyncConnection) -> UUID:
    cur = await conn.execute("SELECT beidou_tenant()")
    return (await cur.fetchone())[0]


# --- outreach (queueing, the weekly cap, the person's answers) ----------------------------------------------

async def sent_to_person_since(conn: psycopg.AsyncConnection, person_id: UUID, since: datetime
                               ) -> tuple[int, datetime | None]:
    """How many messages went to the person since ``since``, and the oldest of them (the weekly cap)."""
    cur = await conn.execute(
        """SELECT count(*), min(created_at) FROM notifications
            WHERE person_id = %s AND recipient_kind = 'person' AND status NOT IN ('cancelled', 'held', 'queued')
              AND created_at > %s""",
        (person_id, since),
    )
    count, oldest = await cur.fetchone()
    return count, oldest


async def recent_check_in(conn: psycopg.AsyncConnection, alert_id: UUID, now: datetime) -> UUID | None:
    """A check-in for the alert still pending, or sent in the last ten minutes."""
    cur = await conn.execute(
        """SELECT id FROM notifications WHERE alert_id = %s AND recipient_kind = 'person'
              AND (status = ANY(%s) OR (status IN ('sent', 'opened') AND created_at > %s - interval '10 minutes'))
            ORDER BY created_at DESC LIMIT 1""",
        (alert_id, list(PENDING), now),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def hold(conn: psycopg.AsyncConnection, notification_id: UUID, reason: str) -> None:
    await conn.execute("UPDATE notifications SET status = 'held', held_reason = %s WHERE id = %s",
                       (reason, notification_id))


async def message_for_person(conn: psycopg.AsyncConnection, person_id: UUID, notification_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT n.id, n.purpose, n.status, n.created_at, n.opened_at, n.answer, n.answered_at, n.alert_id,
                  a.summary, a.status AS alert_status, p.language
             FROM notifications n JOIN people p ON p.id = n.person_id LEFT JOIN alerts a ON a.id = n.alert_id
            WHERE n.id = %s AND n.person_id = %s AND n.recipient_kind = 'person'""",
        (notification_id, person_id),
    )
    return await cur.fetchone()


async def mark_opened(conn: psycopg.AsyncConnection, notification_id: UUID) -> None:
    await conn.execute(
        """UPDATE notifications SET opened_at = now(), updated_at = now(),
                  status = CASE WHEN status = 'sent' THEN 'opened' ELSE status END WHERE id = %s""",
        (notification_id,))


async def mark_answered(conn: psycopg.AsyncConnection, notification_id: UUID, answer: str) -> None:
    await conn.execute(
        """UPDATE notifications SET answer = %s, answered_at = now(), status = 'answered', updated_at = now()
            WHERE id = %s""", (answer, notification_id))


# --- devices ------------------------------------------------------------------------------------------------

async def register_device(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID | None,
                          staff_id: UUID | None, provider: str, token: str, token_kind: str, platform: str,
                          app_version: str | None, language: str | None) -> dict | None:
    """Register a push token for its owner; None when the token belongs to someone else and may not move.

    A token moves to another person only once the push service confirmed the old owner's device gone (the row
    was disabled as unregistered); a staff member's token never moves, and no person's token moves to staff."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """INSERT INTO devices AS d (tenant_id, person_id, staff_id, provider, token, token_kind, platform,
                                     app_version, language)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (tenant_id, provider, token) DO UPDATE SET person_id = EXCLUDED.person_id,
               staff_id = EXCLUDED.staff_id, token_kind = EXCLUDED.token_kind, platform = EXCLUDED.platform,
               app_version = EXCLUDED.app_version, language = EXCLUDED.language, last_seen = now(),
               disabled_at = NULL, disabled_reason = NULL
            WHERE (d.person_id IS NOT DISTINCT FROM EXCLUDED.person_id
                   AND d.staff_id IS NOT DISTINCT FROM EXCLUDED.staff_id)
               OR (d.disabled_at IS NOT NULL AND d.staff_id IS NULL AND EXCLUDED.staff_id IS NULL)
           RETURNING id, provider, platform, app_version, created_at""",
        (tenant_id, person_id, staff_id, provider, token, token_kind, platform, app_version, language))
    return await cur.fetchone()


async def remove_device(conn: psycopg.AsyncConnection, *, token: str, person_id: UUID | None,
                        staff_id: UUID | None) -> None:
    column, owner = ("staff_id", staff_id) if staff_id else ("person_id", person_id)
    await conn.execute(f"DELETE FROM devices WHERE token = %s AND {column} = %s", (token, owner))


# --- webhooks -----------------------------------------------------------------------------------------------

async def endpoints_for_event(conn: psycopg.AsyncConnection, event: str) -> list[dict]:
    """The tenant's enabled endpoints subscribed to ``event``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, include_health_values FROM webhook_endpoints
            WHERE enabled AND %s = ANY(events) ORDER BY id""", (event,))
    return await cur.fetchall()


async def queue_webhook(conn: psycopg.AsyncConnection, *, tenant_id: UUID, endpoint_id: UUID, event: str,
                        order_key: str, alert_id: UUID | None, payload: dict) -> UUID:
    cur = await conn.execute(
        """INSERT INTO notifications (tenant_id, recipient_kind, endpoint_id, alert_id, purpose, order_key, payload)
           VALUES (%s, 'webhook', %s, %s, %s, %s, %s) RETURNING id""",
        (tenant_id, endpoint_id, alert_id, event, order_key, Jsonb(payload)))
    await conn.execute("SELECT pg_notify(%s, %s)", (OUTBOX_CHANNEL, str(tenant_id)))
    return (await cur.fetchone())[0]


async def endpoint_for_delivery(conn: psycopg.AsyncConnection, endpoint_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, url, enabled, secret, previous_secret, previous_secret_until FROM webhook_endpoints
            WHERE id = %s""", (endpoint_id,))
    return await cur.fetchone()


_ENDPOINT_COLUMNS = """id, url, events, description, include_health_values, enabled, created_at, updated_at,
    previous_secret_until"""


async def list_endpoints(conn: psycopg.AsyncConnection) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id")
    return await cur.fetchall()


async def get_endpoint(conn: psycopg.AsyncConnection, endpoint_id: UUID) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
    return await cur.fetchone()


async def create_endpoint(conn: psycopg.AsyncConnection, *, tenant_id: UUID, url: str, events: list[str],
                          description: str | None, include_health_values: bool, secret: str, enabled: bool,
                          by: str) -> dict:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""INSERT INTO webhook_endpoints (tenant_id, url, events, description, include_health_values, secret,
                                           enabled, created_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}""",
        (tenant_id, url, events, description, include_health_values, secret, enabled, by))
    return await cur.fetchone()


async def update_endpoint(conn: psycopg.AsyncConnection, endpoint_id: UUID, **fields) -> dict | None:
    cur = conn.cursor(row_factory=dict_row)
    assignments = ", ".join(f"{name} = %s" for name in fields)
    await cur.execute(
        f"""UPDATE webhook_endpoints SET {assignments}, updated_at = now() WHERE id = %s
            RETURNING {_ENDPOINT_COLUMNS}""", (*fields.values(), endpoint_id))
    return await cur.fetchone()


async def rotate_secret(conn: psycopg.AsyncConnection, endpoint_id: UUID, new_secret: str,
                        overlap: timedelta) -> dict | None:
    """The new secret signs from now on; the old one signs too (a second signature) until the overlap ends."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = now() + %s,
                   secret = %s, updated_at = now() WHERE id = %s RETURNING {_ENDPOINT_COLUMNS}""",
        (overlap, new_secret, endpoint_id))
    return await cur.fetchone()


async def delete_endpoint(conn: psycopg.AsyncConnection, endpoint_id: UUID) -> bool:
    cur = await conn.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
    return cur.rowcount > 0


async def webhook_deliveries(conn: psycopg.AsyncConnection, endpoint_id: UUID, *, status: str | None,
                             limit: int) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, purpose AS event, alert_id, status, status_detail, attempts, not_before, created_at, updated_at,
                  payload
             FROM notifications WHERE endpoint_id = %s AND (%s::text IS NULL OR status = %s)
            ORDER BY seq DESC LIMIT %s""",
        (endpoint_id, status, status, limit))
    return await cur.fetchall()


async def replay_delivery(conn: psycopg.AsyncConnection, endpoint_id: UUID, notification_id: UUID) -> bool:
    """Send a delivered or dead-lettered webhook again, with the same id (receivers deduplicate on it)."""
    cur = await conn.execute(
        """UPDATE notifications SET status = 'queued', attempts = 0, not_before = now(), updated_at = now(),
                  status_detail = 'replay requested'
            WHERE id = %s AND endpoint_id = %s AND status IN ('sent', 'failed', 'cancelled')""",
        (notification_id, endpoint_id))
    if cur.rowcount:
        await conn.execute("SELECT pg_notify(%s, beidou_tenant()::text)", (OUTBOX_CHANNEL,))
    return cur.rowcount > 0


async def webhook_delivery_exists(conn: psycopg.AsyncConnection, endpoint_id: UUID, notification_id: UUID) -> bool:
    cur = await conn.execute("SELECT 1 FROM notifications WHERE id = %s AND endpoint_id = %s",
                             (notification_id, endpoint_id))
    return await cur.fetchone() is not None
