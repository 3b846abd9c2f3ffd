"""SQL for what the consent centre needs to know about people: profile, age, guardianships, erasure marks."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import class_row

# Age in whole years on today's date in the person's own time zone (NULL when the birth date is unknown).
_PERSON = """SELECT id, tenant_id, external_id, time_zone, language, birth_date, erased_at, created_at,
                    date_part('year', age((now() AT TIME ZONE time_zone)::date, birth_date))::int AS age
               FROM people"""


@dataclass(frozen=True, slots=True)
class PersonFacts:
    id: UUID
    tenant_id: UUID
    external_id: str
    time_zone: str
    language: str
    birth_date: date | None
    erased_at: datetime | None
    created_at: datetime
    age: int | None


@dataclass(frozen=True, slots=True)
class Guardianship:
    guardian_id: UUID
    guardian_external_id: str
    minor_id: UUID
    minor_external_id: str
    created_by: str
    created_at: datetime
    ended_at: datetime | None


async def person(conn: psycopg.AsyncConnection, person_id: UUID) -> PersonFacts | None:
    cur = conn.cursor(row_factory=class_row(PersonFacts))
    await cur.execute(f"{_PERSON} WHERE id = %s", (person_id,))
    return await cur.fetchone()


async def person_by_external_id(conn: psycopg.AsyncConnection, external_id: str) -> PersonFacts | None:
    """The tenant's person with this external id (staff context), or None."""
    cur = conn.cursor(row_factory=class_row(PersonFacts))
    await cur.execute(f"{_PERSON} WHERE external_id = %s", (external_id,))
    return await cur.fetchone()


async def provision(conn: psycopg.AsyncConnection, *, tenant_id: UUID, external_id: str) -> UUID:
    """The person with this external id, created if new (as a first valid token would)."""
    cur = await conn.execute(
        """INSERT INTO people (tenant_id, external_id) VALUES (%s, %s)
           ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id
           RETURNING id""",
        (tenant_id, external_id),
    )
    return (await cur.fetchone())[0]


async def update_profile(conn: psycopg.AsyncConnection, person_id: UUID, *, time_zone: str | None = None,
                         language: str | None = None, birth_date: date | None = None) -> None:
    """Set the given fields (None leaves a field as it is)."""
    await conn.execute(
        """UPDATE people SET time_zone = coalesce(%s, time_zone), language = coalesce(%s, language),
                             birth_date = coalesce(%s, birth_date)
            WHERE id = %s""",
        (time_zone, language, birth_date, person_id),
    )


async def time_zone_known(conn: psycopg.AsyncConnection, name: str) -> bool:
    """True if PostgreSQL itself knows the zone (ages are computed in the person's zone in SQL)."""
    cur = await conn.execute("SELECT 1 FROM pg_timezone_names WHERE name = %s", (name,))
    return await cur.fetchone() is not None


async def dependant(conn: psycopg.AsyncConnection, *, guardian_id: UUID, external_id: str) -> PersonFacts | None:
    """The person with ``external_id`` if ``guardian_id`` is their active guardian (guardian's context)."""
    cur = conn.cursor(row_factory=class_row(PersonFacts))
    await cur.execute(
        f"""{_PERSON} WHERE external_id = %s AND id IN (
               SELECT minor_id FROM guardianships WHERE guardian_id = %s AND ended_at IS NULL)""",
        (external_id, guardian_id),
    )
    return await cur.fetchone()


async def dependants(conn: psycopg.AsyncConnection, guardian_id: UUID) -> list[PersonFacts]:
    cur = conn.cursor(row_factory=class_row(PersonFacts))
    await cur.execute(
        f"""{_PERSON} WHERE id IN (SELECT minor_id FROM guardianships WHERE guardian_id = %s AND ended_at IS NULL)
            ORDER BY external_id""",
        (guardian_id,),
    )
    return await cur.fetchall()


async def birth_date_set_by_insurer(conn: psycopg.AsyncConnection, minor_id: UUID) -> bool:
    """The insurer recorded this person's birth date with a guardian link (active or ended)."""
    cur = await conn.execute("SELECT 1 FROM guardianships WHERE minor_id = %s LIMIT 1", (minor_id,))
    return await cur.fetchone() is not None


_GUARDIANSHIP = """SELECT g.guardian_id, gp.external_id AS guardian_external_id, g.minor_id,
                          mp.external_id AS minor_external_id, g.created_by, g.created_at, g.ended_at
                     FROM guardianships g JOIN people gp ON gp.id = g.guardian_id
                     JOIN people mp ON mp.id = g.minor_id"""


async def link_guardian(conn: psycopg.AsyncConnection, *, tenant_id: UUID, guardian_id: UUID, minor_id: UUID,
                        created_by: str) -> Guardianship:
    """Make ``guardian_id`` an active guardian of ``minor_id`` (a link that had ended starts again)."""
    await conn.execute(
        """INSERT INTO guardianships AS g (tenant_id, guardian_id, minor_id, created_by) VALUES (%s, %s, %s, %s)
           ON CONFLICT (guardian_id, minor_id) DO UPDATE
             SET created_by = EXCLUDED.created_by, created_at = now(), ended_at = NULL
           WHERE g.ended_at IS NOT NULL""",
        (tenant_id, guardian_id, minor_id, created_by),
    )
    return (await guardianships(conn, guardian_id=guardian_id, minor_id=minor_id))[0]


async def end_guardianship(conn: psycopg.AsyncConnection, *, guardian_id: UUID, minor_id: UUID) -> bool:
    cur = await conn.execute(
        "UPDATE guardianships SET ended_at = now() WHERE guardian_id = %s AND minor_id = %s AND ended_at IS NULL",
        (guardian_id, minor_id),
    )
    return cur.rowcount > 0


async def guardianships(conn: psycopg.AsyncConnection, *, guardian_id: UUID | None = None,
                        minor_id: UUID | None = None) -> list[Guardianship]:
    """Links (active and ended) visible in this context, optionally narrowed to one guardian and/or minor."""
    cur = conn.cursor(row_factory=class_row(Guardianship))
    await cur.execute(
        f"""{_GUARDIANSHIP} WHERE (%s::uuid IS NULL OR g.guardian_id = %s) AND (%s::uuid IS NULL OR g.minor_id = %s)
            ORDER BY g.created_at""",
        (guardian_id, guardian_id, minor_id, minor_id),
    )
    return await cur.fetchall()


# What a tombstone keeps of the people row; every other column (profile, preferences, and whatever later
# migrations add) goes back to its default, or NULL.
# person_no: the number the hot readings used (migration 0017) is never renumbered or given to anyone else.
TOMBSTONE_COLUMNS = ("id", "tenant_id", "external_id", "created_at", "erased_at", "person_no")


async def mark_erased(conn: psycopg.AsyncConnection, person_id: UUID) -> datetime:
    """Turn the person's row into a tombstone: erased_at set, every other personal column back to its default."""
    cur = await conn.execute(
        """SELECT column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'people' AND NOT (column_name = ANY(%s))
            ORDER BY ordinal_position""",
        (list(TOMBSTONE_COLUMNS),),
    )
    resets = [sql.SQL("{} = DEFAULT").format(sql.Identifier(name)) for (name,) in await cur.fetchall()]
    cur = await conn.execute(
        sql.SQL("UPDATE people SET {} WHERE id = %s AND erased_at IS NULL RETURNING erased_at").format(
            sql.SQL(", ").join([sql.SQL("erased_at = now()"), *resets])),
        (person_id,),
    )
    return (await cur.fetchone())[0]


async def audit(conn: psycopg.AsyncConnection, *, tenant_id: UUID, actor_kind: str, actor_id: str, action: str,
                subject_person_id: UUID | None, detail: dict) -> None:
    """Append to the audit log (insert only: a person context may write it but never read it)."""
    await conn.execute(
        """INSERT INTO audit_log (tenant_id, actor_kind, actor_id, action, subject_person_id, detail)
           VALUES (%s, %s, %s, %s, %s, %s::jsonb)""",
        (tenant_id, actor_kind, actor_id, action, subject_person_id, json.dumps(detail, default=str)),
    )
