"""Tenants, people and staff: who exists, provisioned on first use of a valid token."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import psycopg


@dataclass(frozen=True, slots=True)
class Person:
    id: UUID
    tenant_id: UUID
    external_id: str
    time_zone: str
    language: str


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: UUID
    tenant_id: UUID
    external_id: str
    role: str


async def tenant_exists(conn: psycopg.AsyncConnection, tenant_id: UUID) -> bool:
    """True if the tenant is known (row-level security shows a tenant only its own row)."""
    cur = await conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant_id,))
    return await cur.fetchone() is not None


async def provision_person(conn: psycopg.AsyncConnection, tenant_id: UUID, external_id: str) -> Person:
    cur = await conn.execute(
        """INSERT INTO people (tenant_id, external_id) VALUES (%s, %s)
           ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id
           RETURNING id, tenant_id, external_id, time_zone, language""",
        (tenant_id, external_id),
    )
    return Person(*await cur.fetchone())


async def provision_staff(conn: psycopg.AsyncConnection, tenant_id: UUID, external_id: str, role: str) -> StaffMember:
    """The identity provider is the source of truth for the role: a changed role is updated here."""
    cur = await conn.execute(
        """INSERT INTO staff (tenant_id, external_id, role) VALUES (%s, %s, %s)
           ON CONFLICT (tenant_id, external_id) DO UPDATE SET role = EXCLUDED.role
           RETURNING id, tenant_id, external_id, role""",
        (tenant_id, external_id, role),
    )
    return StaffMember(*await cur.fetchone())


def add_tenant(admin_url: str, name: str, time_zone: str | None = None) -> UUID:
    """Operators add insurers (runs as the schema owner). ``time_zone`` (IANA) is the insurer's own, in which
    its outcomes are reported; given for an existing insurer, it is changed."""
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            """INSERT INTO tenants (name, time_zone) VALUES (%s, coalesce(%s, 'UTC'))
               ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name,
                   time_zone = coalesce(%s, tenants.time_zone) RETURNING id""",
            (name, time_zone, time_zone),
        ).fetchone()
        return row[0]


def list_tenants(admin_url: str) -> list[tuple[UUID, str]]:
    with psycopg.connect(admin_url) as conn:
        return conn.execute("SELECT id, name FROM tenants ORDER BY created_at").fetchall()
