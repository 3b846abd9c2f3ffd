"""Guardians: the insurer links a policyholder to a person under 14, who then needs that guardian's grants.

Only a tenant_admin links or unlinks, from the insurer's own files (the minor's birth date comes with the
link). A guardian acts for a dependant only while the link is active and the dependant is under 14; from
14 the person decides, and the grants a guardian gave stay until the person changes them.
"""
from __future__ import annotations

from datetime import date
from uuid import UUID

import psycopg

from app.core.errors import Invalid, NotFound
from consent import people, profile, repository, service
from consent.catalog import AGE_OF_CONSENT, GUARDIAN_MIN_AGE


class InvalidGuardianship(Invalid, ValueError):
    """The link asked for cannot be made; the message says why."""


async def link(conn: psycopg.AsyncConnection, *, tenant_id: UUID, guardian_external_id: str,
               minor_external_id: str, minor_birth_date: date, staff_external_id: str) -> people.Guardianship:
    """Link a guardian to a person under 14, recording the minor's birth date from the insurer's files."""
    if guardian_external_id == minor_external_id:
        raise InvalidGuardianship("a person cannot be their own guardian")
    profile.check_birth_date(minor_birth_date, today=date.today())
    guardian_id = await people.provision(conn, tenant_id=tenant_id, external_id=guardian_external_id)
    minor_id = await people.provision(conn, tenant_id=tenant_id, external_id=minor_external_id)
    await repository.lock_person(conn, minor_id)
    guardian = await service.subject(conn, person_id=guardian_id)
    if guardian.age is not None and guardian.age < GUARDIAN_MIN_AGE:
        raise InvalidGuardianship(f"a guardian must be at least {GUARDIAN_MIN_AGE}")
    await service.subject(conn, person_id=minor_id)
    await people.update_profile(conn, minor_id, birth_date=minor_birth_date)
    minor = await service.subject(conn, person_id=minor_id)
    if not service.is_minor(minor):
        # Raising rolls the birth date back with everything else.
        raise InvalidGuardianship(f"only people under {AGE_OF_CONSENT} need a guardian; "
                                  f"{minor_external_id} is {minor.age}")
    result = await people.link_guardian(conn, tenant_id=tenant_id, guardian_id=guardian_id, minor_id=minor_id,
                                        created_by=staff_external_id)
    withdrawn = await service.withdraw_all(conn, tenant_id=tenant_id, person_id=minor_id,
                                           reason=profile.UNDER_AGE_REASON, only_actor=service.SELF)
    await people.audit(conn, tenant_id=tenant_id, actor_kind="staff", actor_id=staff_external_id,
                       action="guardianship.linked", subject_person_id=minor_id,
                       detail={"guardian": guardian_external_id, "minor": minor_external_id,
                               "minor_birth_date": minor_birth_date.isoformat(),
                               "own_grants_withdrawn": len(withdrawn)})
    return result


async def unlink(conn: psycopg.AsyncConnection, *, tenant_id: UUID, guardian_external_id: str,
                 minor_external_id: str, staff_external_id: str) -> people.Guardianship:
    """End an active link; the guardian can no longer see or change the dependant's consents."""
    guardian = await people.person_by_external_id(conn, guardian_external_id)
    minor = await people.person_by_external_id(conn, minor_external_id)
    if guardian is None or minor is None or not await people.end_guardianship(
            conn, guardian_id=guardian.id, minor_id=minor.id):
        raise NotFound("no active guardianship between these people")
    await people.audit(conn, tenant_id=tenant_id, actor_kind="staff", actor_id=staff_external_id,
                       action="guardianship.ended", subject_person_id=minor.id,
                       detail={"guardian": guardian_external_id, "minor": minor_external_id})
    return (await people.guardianships(conn, guardian_id=guardian.id, minor_id=minor.id))[0]


async def links(conn: psycopg.AsyncConnection, *, external_id: str | None = None) -> list[people.Guardianship]:
    """Every link of the tenant, or those where ``external_id`` is the guardian or the minor."""
    if external_id is None:
        return await people.guardianships(conn)
    person = await people.person_by_external_id(conn, external_id)
    if person is None:
        return []
    as_guardian = await people.guardianships(conn, guardian_id=person.id)
    as_minor = await people.guardianships(conn, minor_id=person.id)
    return sorted(as_guardian + as_minor, key=lambda g: g.created_at)


async def dependants(conn: psycopg.AsyncConnection, *, guardian_id: UUID) -> list[people.PersonFacts]:
    """The people the caller is an active guardian of (erased ones left out)."""
    return [p for p in await people.dependants(conn, guardian_id) if p.erased_at is None]
