"""SQL of the detection worker. Every function runs inside a tenant-scoped transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from consent import repository as consent_repo
from consent.catalog import MONITORING
from streaming.events import AnomalyEvent

ANOMALY_CHANNEL = "beidou_anomaly"


@dataclass(frozen=True, slots=True)
class StoredState:
    state: bytes
    state_version: int
    cursor_time: datetime | None
    readings_seen: int


async def tenant_ids(conn: psycopg.AsyncConnection) -> list[UUID]:
    cur = await conn.execute("SELECT beidou_tenant_ids()")
    return [row[0] for row in await cur.fetchall()]


async def pending_people(conn: psycopg.AsyncConnection, limit: int) -> list[UUID]:
    """People of the current tenant with readings the detector has not seen, longest waiting first."""
    cur = await conn.execute(
        "SELECT person_id FROM detection_work GROUP BY person_id ORDER BY min(id) LIMIT %s", (limit,))
    return [row[0] for row in await cur.fetchall()]


async def idle_people(conn: psycopg.AsyncConnection, idle_since: datetime, limit: int) -> list[UUID]:
    """People whose detector has seen nothing new since ``idle_since`` (candidates for a data-gap check)."""
    cur = await conn.execute(
        "SELECT person_id FROM detector_state WHERE updated_at < %s ORDER BY updated_at LIMIT %s",
        (idle_since, limit),
    )
    return [row[0] for row in await cur.fetchall()]


async def try_lock_person(conn: psycopg.AsyncConnection, person_id: UUID) -> bool:
    """One worker at a time per person, across processes; released at the end of the transaction."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 7))", (str(person_id),))
    return (await cur.fetchone())[0]


async def work_ids(conn: psycopg.AsyncConnection, person_id: UUID, limit: int = 10_000) -> list[int]:
    """The person's work rows visible now. Read BEFORE the readings, so every reading they announce is seen."""
    cur = await conn.execute("SELECT id FROM detection_work WHERE person_id = %s ORDER BY id LIMIT %s",
                             (person_id, limit))
    return [row[0] for row in await cur.fetchall()]


async def done_work(conn: psycopg.AsyncConnection, ids: list[int]) -> None:
    """Remove exactly the rows that were read: a row committed meanwhile stays and brings the worker back."""
    if ids:
        await conn.execute("DELETE FROM detection_work WHERE id = ANY(%s)", (ids,))


async def person_zone(conn: psycopg.AsyncConnection, person_id: UUID) -> str | None:
    cur = await conn.execute("SELECT time_zone FROM people WHERE id = %s", (person_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def load_state(conn: psycopg.AsyncConnection, person_id: UUID) -> StoredState | None:
    cur = await conn.execute(
        """SELECT state, state_version, cursor_time, readings_seen
             FROM detector_state WHERE person_id = %s FOR UPDATE""",
        (person_id,),
    )
    row = await cur.fetchone()
    return StoredState(bytes(row[0]), *row[1:]) if row else None


async def monitored_metrics(conn: psycopg.AsyncConnection, person_id: UUID) -> set[str]:
    """The data types whose monitoring consent is in force for the person (the one consent check)."""
    return await consent_repo.types_in_force(conn, person_id, MONITORING)


async def readings_after(conn: psycopg.AsyncConnection, person_id: UUID, after: datetime | None, metrics: list[str],
                         limit: int) -> list[tuple[datetime, str, float, float | None, datetime]]:
    """The person's consented readings after ``after``, oldest first: (time, metric, value, value2, received_at)."""
    cur = await conn.execute(
        """SELECT time, metric, value, value2, received_at FROM readings
            WHERE person_id = %s AND metric = ANY(%s) AND (%s::timestamptz IS NULL OR time > %s)
            ORDER BY time, metric, source LIMIT %s""",
        (person_id, metrics, after, after, limit),
    )
    return await cur.fetchall()


async def save_state(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, state: bytes,
                     state_version: int, cursor_time: datetime | None, readings_seen: int) -> None:
    await conn.execute(
        """INSERT INTO detector_state AS s (person_id, tenant_id, state, state_version, cursor_time, readings_seen,
                                            updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (person_id) DO UPDATE SET state = EXCLUDED.state, state_version = EXCLUDED.state_version,
               cursor_time = EXCLUDED.cursor_time, readings_seen = EXCLUDED.readings_seen, updated_at = now()""",
        (person_id, tenant_id, state, state_version, cursor_time, readings_seen),
    )


async def touch_state(conn: psycopg.AsyncConnection, person_id: UUID) -> None:
    await conn.execute("UPDATE detector_state SET updated_at = now() WHERE person_id = %s", (person_id,))


async def delete_state(conn: psycopg.AsyncConnection, person_id: UUID) -> None:
    await conn.execute("DELETE FROM detector_state WHERE person_id = %s", (person_id,))


async def insert_events(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID,
                        events: list[AnomalyEvent], received_at: list[datetime | None] | None = None) -> int:
    """Store events (a repeat of an already stored one is ignored) and wake the alerting layer."""
    if not events:
        return 0
    inserted = 0
    async with conn.cursor() as cur:
        for i, e in enumerate(events):
            await cur.execute(
                """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                               value, baseline, reason, reason_code, details, source_received_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (person_id, feature, kind, tier, start_time) DO NOTHING""",
                (tenant_id, person_id, e.kind, e.feature, e.metric, e.tier, e.start, e.end, e.value, e.baseline,
                 e.reason, e.reason_code, Jsonb(e.details), received_at[i] if received_at else None),
            )
            inserted += cur.rowcount
        if inserted:
            await cur.execute("SELECT pg_notify(%s, %s)", (ANOMALY_CHANNEL, str(tenant_id)))
    return inserted


async def pending_feedback(conn: psycopg.AsyncConnection, person_id: UUID) -> list[tuple[int, str, str, datetime]]:
    """Care-team feedback not yet applied to the person's detector: (id, feature, kind, until)."""
    cur = await conn.execute(
        """SELECT id, feature, kind, until FROM detector_feedback
            WHERE person_id = %s AND applied_at IS NULL ORDER BY id FOR UPDATE""",
        (person_id,),
    )
    return await cur.fetchall()


async def mark_feedback_applied(conn: psycopg.AsyncConnection, ids: list[int]) -> None:
    await conn.execute("UPDATE detector_feedback SET applied_at = now() WHERE id = ANY(%s)", (ids,))
