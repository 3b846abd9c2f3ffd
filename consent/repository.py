"""SQL for consent. Every function takes a connection inside a tenant-scoped transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from app.core import channels

# Consent changes and ingest meet on advisory locks in their own namespace (the two-key form never clashes
# with the single-key locks of migrations and scheduler jobs). People are spread over a fixed number of
# buckets so an ingest commit for thousands of people takes at most that many locks.
_LOCK_SPACE = 0x636E73  # "cns"
_LOCK_BUCKETS = 64

_EVENT_COLUMNS = ("id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until, created_at, "
                  "tenant_id, actor_person_id, reason")


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
    tenant_id: UUID | None = None
    actor_person_id: UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentState:
    data_type: str
    purpose: str
    granted: bool
    valid_until: datetime | None
    updated_at: datetime
    event_id: int


@dataclass(frozen=True, slots=True)
class CurrentConsent:
    """A person's current consent for one data type and purpose, with the event that set it."""

    data_type: str
    purpose: str
    granted: bool          # the person's decision, not past valid_until (the FHIR status; see in_force)
    recorded_granted: bool  # what the latest event said, expiry aside
    valid_until: datetime | None
    updated_at: datetime
    event_id: int
    notice_version: str | None
    app: str | None
    actor: str
    actor_person_id: UUID | None
    in_force: bool = False  # beidou_consent_in_force: granted, not expired, and every purpose it needs too


@dataclass(frozen=True, slots=True)
class DueExpiry:
    tenant_id: UUID
    person_id: UUID
    data_type: str
    purpose: str
    event_id: int


async def lock_person(conn: psycopg.AsyncConnection, person_id: UUID) -> None:
    """Hold the person's consent lock exclusively until the transaction ends (grant, withdrawal, expiry, erasure).

    It waits for ingest commits that already read this person's consent, and makes later ones wait for us."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s::text) & %s)",
                       (_LOCK_SPACE, person_id, _LOCK_BUCKETS - 1))


async def share_people(conn: psycopg.AsyncConnection, person_ids: list[UUID]) -> None:
    """Hold these people's consent locks shared until the transaction ends (ingest; never blocks other ingest)."""
    await conn.execute(
        """SELECT pg_advisory_xact_lock_shared(%s, b)
             FROM (SELECT DISTINCT hashtext(p::text) & %s AS b FROM unnest(%s::uuid[]) AS p ORDER BY b) AS buckets""",
        (_LOCK_SPACE, _LOCK_BUCKETS - 1, person_ids),
    )


async def insert_event(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str,
                       purpose: str, action: str, notice_version: str | None, app: str | None, actor: str,
                       valid_until: datetime | None, actor_person_id: UUID | None = None,
                       reason: str | None = None) -> ConsentEvent:
    cur = conn.cursor(row_factory=class_row(ConsentEvent))
    await cur.execute(
        f"""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, notice_version, app,
                                        actor, valid_until, actor_person_id, reason)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            RETURNING {_EVENT_COLUMNS}""",
        (tenant_id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until,
         actor_person_id, reason),
    )
    return await cur.fetchone()


async def current_with_events(conn: psycopg.AsyncConnection, person_id: UUID) -> list[CurrentConsent]:
    """Every data type × purpose the person has ever decided on, with the deciding event's details."""
    cur = conn.cursor(row_factory=class_row(CurrentConsent))
    await cur.execute(
        """SELECT s.data_type, s.purpose, s.granted AND (s.valid_until IS NULL OR s.valid_until > now()) AS granted,
                  s.granted AS recorded_granted, s.valid_until, s.updated_at, s.event_id,
                  e.notice_version, e.app, e.actor, e.actor_person_id,
                  beidou_consent_in_force(s.person_id, s.data_type, s.purpose) AS in_force
             FROM consent_state s JOIN consent_events e ON e.id = s.event_id
            WHERE s.person_id = %s ORDER BY s.data_type, s.purpose""",
        (person_id,),
    )
    return await cur.fetchall()


async def state_of(conn: psycopg.AsyncConnection, person_id: UUID, data_type: str, purpose: str
                   ) -> ConsentState | None:
    cur = conn.cursor(row_factory=class_row(ConsentState))
    await cur.execute(
        """SELECT data_type, purpose, granted, valid_until, updated_at, event_id FROM consent_state
            WHERE person_id = %s AND data_type = %s AND purpose = %s""",
        (person_id, data_type, purpose),
    )
    return await cur.fetchone()


async def in_force(conn: psycopg.AsyncConnection, person_id: UUID, data_type: str, purpose: str) -> bool:
    """THE consent check: ``purpose`` for ``data_type`` is granted, not withdrawn, not expired, every purpose it
    needs is too, and the person's data was not erased (SQL ``beidou_consent_in_force``)."""
    cur = await conn.execute("SELECT beidou_consent_in_force(%s, %s, %s)", (person_id, data_type, purpose))
    return bool((await cur.fetchone())[0])


async def types_in_force(conn: psycopg.AsyncConnection, person_id: UUID, purpose: str) -> set[str]:
    """The data types for which ``purpose`` is in force for the person."""
    return (await types_in_force_of(conn, [person_id], purpose)).get(person_id, set())


# (person, data type) pairs in force for many people: the rule's set form (migration 0021), inlined by PostgreSQL.
_IN_FORCE_OF = "SELECT person_id, data_type FROM beidou_consents_in_force(%s, %s)"


async def types_in_force_of(conn: psycopg.AsyncConnection, people: list[UUID], purpose: str
                            ) -> dict[UUID, set[str]]:
    """:func:`types_in_force` for several people in one statement (those with none are left out)."""
    cur = await conn.execute(_IN_FORCE_OF, (people, purpose))
    out: dict[UUID, set[str]] = {}
    for person_id, data_type in await cur.fetchall():
        out.setdefault(person_id, set()).add(data_type)
    return out


async def in_force_event(conn: psycopg.AsyncConnection, person_id: UUID, data_type: str, purpose: str) -> int | None:
    """The consent event that currently permits ``purpose`` for ``data_type`` (None: not in force)."""
    cur = await conn.execute(
        """SELECT event_id FROM consent_state WHERE person_id = %s AND data_type = %s AND purpose = %s
              AND beidou_consent_in_force(person_id, data_type, purpose)""",
        (person_id, data_type, purpose),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def consent_standing(conn: psycopg.AsyncConnection, person_id: UUID, data_type: str, purpose: str) -> str:
    """Why consent is or is not in force, in one word staff may see: ``in_force``, ``withdrawn``, ``expired``
    (past its valid_until, whether or not the expiry sweep recorded it yet), ``never`` (no decision recorded),
    ``needs_monitoring`` (granted, but monitoring is not in force) or ``erased``."""
    cur = await conn.execute(
        """SELECT p.erased_at IS NOT NULL, s.granted,
                  (s.granted AND s.valid_until <= now()) OR (NOT s.granted AND e.reason = 'expired'),
                  beidou_consent_in_force(p.id, %s, %s)
             FROM people p LEFT JOIN consent_state s ON s.person_id = p.id AND s.data_type = %s AND s.purpose = %s
             LEFT JOIN consent_events e ON e.id = s.event_id
            WHERE p.id = %s""",
        (data_type, purpose, data_type, purpose, person_id),
    )
    row = await cur.fetchone()
    if row is None or row[0]:
        return "erased"
    _, granted, expired, ok = row
    if ok:
        return "in_force"
    if granted is None:
        return "never"
    if expired:
        return "expired"
    if not granted:
        return "withdrawn"
    return "needs_monitoring"


async def granted_pairs(conn: psycopg.AsyncConnection, person_ids: list[UUID], purpose: str
                        ) -> set[tuple[UUID, str]]:
    """(person, data_type) pairs with ``purpose`` in force, for many people in one query.

    Called by ingest inside its write transaction: it first takes the people's consent locks shared, so a
    withdrawal or erasure committing meanwhile either waits for this transaction's readings (and erases them)
    or is seen by the read below; a reading is never stored after a withdrawal was acknowledged. A person
    whose data was erased has no consent in force, whatever an older process may still believe about them."""
    async with conn.pipeline():  # both statements in one round trip; the read still starts after the locks
        await share_people(conn, person_ids)
        cur = await conn.execute(_IN_FORCE_OF, (person_ids, purpose))
        return {(row[0], row[1]) for row in await cur.fetchall()}


async def history(conn: psycopg.AsyncConnection, person_id: UUID) -> list[ConsentEvent]:
    cur = conn.cursor(row_factory=class_row(ConsentEvent))
    await cur.execute(f"SELECT {_EVENT_COLUMNS} FROM consent_events WHERE person_id = %s ORDER BY id", (person_id,))
    return await cur.fetchall()


async def active_grants(conn: psycopg.AsyncConnection, person_id: UUID, *, actor: str | None = None
                        ) -> list[tuple[str, str]]:
    """(data_type, purpose) the person currently has granted (as recorded; optionally only ``actor``'s)."""
    cur = await conn.execute(
        """SELECT s.data_type, s.purpose FROM consent_state s JOIN consent_events e ON e.id = s.event_id
            WHERE s.person_id = %s AND s.granted AND (%s::text IS NULL OR e.actor = %s)
            ORDER BY s.data_type, s.purpose""",
        (person_id, actor, actor),
    )
    return [(row[0], row[1]) for row in await cur.fetchall()]


async def due_expiries(conn: psycopg.AsyncConnection, limit: int) -> list[DueExpiry]:
    """Grants past their valid_until in every tenant (ids only, through a narrow SECURITY DEFINER function)."""
    cur = conn.cursor(row_factory=class_row(DueExpiry))
    await cur.execute("SELECT tenant_id, person_id, data_type, purpose, event_id FROM consent_due_expiries(%s)",
                      (limit,))
    return await cur.fetchall()


async def notify_change(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str,
                        purpose: str, granted: bool) -> None:
    """Tell every process (open streams, workers) about the change; delivered when the transaction commits."""
    await channels.notify(conn, channels.CONSENT,
                          channels.ConsentChange(str(tenant_id), str(person_id), data_type, purpose, granted))


async def own_readings(conn: psycopg.AsyncConnection, person_id: UUID, *, start: datetime, end: datetime,
                       metric: str | None, limit: int) -> list[tuple]:
    """The person's own readings in [start, end), newest first: (time, metric, value, value2, source). Past the
    hot window a dense signal's reading is a minute's average (``beidou_readings_span``)."""
    cur = await conn.execute(
        """SELECT time, metric, value, value2, source
             FROM beidou_readings_span(%s, CASE WHEN %s::text IS NULL THEN (SELECT array_agg(name) FROM data_types)
                                                ELSE ARRAY[%s::text] END, %s, %s)
            ORDER BY time DESC, metric, source LIMIT %s""",
        (person_id, metric, metric, start, end, limit),
    )
    return await cur.fetchall()
