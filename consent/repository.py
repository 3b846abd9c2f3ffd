"""SQL for consent. Every function takes a connection inside a tenant-scoped transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    id: int
    person_id: UUID
    data_type: str
    purpose: str
    action: str
    notice_version: str | None
    app: str | None
    actor: str
    valid_until: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentState:
    data_type: str
    purpose: str
    granted: bool
    valid_until: datetime | None
    updated_at: datetime
    event_id: int


async def insert_event(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str,
                       purpose: str, action: str, notice_version: str | None, app: str | None, actor: str,
                       valid_until: datetime | None) -> ConsentEvent:
    cur = conn.cursor(row_factory=class_row(ConsentEvent))
    await cur.execute(
        """INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, notice_version, app,
                                       actor, valid_until)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           RETURNING id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until, created_at""",
        (tenant_id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until),
    )
    return await cur.fetchone()


async def current_for_person(conn: psycopg.AsyncConnection, person_id: UUID) -> list[ConsentState]:
    cur = conn.cursor(row_factory=class_row(ConsentState))
    await cur.execute(
        """SELECT data_type, purpose, granted AND (valid_until IS NULL OR valid_until > now()) AS granted,
                  valid_until, updated_at, event_id
             FROM consent_state WHERE person_id = %s ORDER BY data_type, purpose""",
        (person_id,),
    )
    return await cur.fetchall()


async def granted_pairs(conn: psycopg.AsyncConnection, person_ids: list[UUID], purpose: str
                        ) -> set[tuple[UUID, str]]:
    """(person, data_type) pairs with an active grant for ``purpose``, for many people in one query."""
    cur = await conn.execute(
        """SELECT person_id, data_type FROM consent_state
            WHERE person_id = ANY(%s) AND purpose = %s AND granted
              AND (valid_until IS NULL OR valid_until > now())""",
        (person_ids, purpose),
    )
    return {(row[0], row[1]) for row in await cur.fetchall()}


async def history(conn: psycopg.AsyncConnection, person_id: UUID) -> list[ConsentEvent]:
    cur = conn.cursor(row_factory=class_row(ConsentEvent))
    await cur.execute(
        """SELECT id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until, created_at
             FROM consent_events WHERE person_id = %s ORDER BY id""",
        (person_id,),
    )
    return await cur.fetchall()


async def notify_change(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str,
                        purpose: str, granted: bool) -> None:
    """Tell every process (open streams, workers) about the change; delivered when the transaction commits."""
    payload = f"{tenant_id}|{person_id}|{data_type}|{purpose}|{'1' if granted else '0'}"
    await conn.execute("SELECT pg_notify('beidou_consent', %s)", (payload,))
